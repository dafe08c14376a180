"""`glancelite-api`: serve the API under gunicorn with gthread workers.

bind_host, bind_port and workers come from the glancelite config file; the rest of
the gunicorn tuning lives in conf/gunicorn.conf.py (found next to the config file).
"""
import argparse
import logging
import logging.handlers
import os
import runpy
import sys

from gunicorn.app.base import BaseApplication

from glancelite.app import DatabaseNotReady, create_app, start_housekeeping
from glancelite.config import ConfigError, default_config_path, load_config
from glancelite.context import IdentityConfigError
from glancelite.housekeeping import Housekeeping

# gunicorn settings glancelite-api starts from; a gunicorn.conf.py next to the config file
# may override any of them (see conf/gunicorn.conf.py).
GUNICORN_DEFAULTS = {
    "worker_class": "gthread",
    # threads per worker: a long upload or download must not block other requests
    "threads": 8,
    # a worker is only killed when it stops heartbeating, not for a long transfer
    "timeout": 120,
    "graceful_timeout": 30,
    "keepalive": 5,
    # glancelite logs one line per request itself, with the request id
    "accesslog": None,
    "errorlog": "-",
    # gunicorn >= 25.1 opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl),
    # which a second instance, or any other gunicorn app of the same user, takes over
    "control_socket_disable": True,
}


# A worker writes its log lines in batches, about once a second and at once for a warning or
# worse: writing the request line on its own cost about a tenth of a show request's CPU (the
# write gives up the GIL, and winning it back from busy request threads is the dear part).
LOG_FLUSH_SECONDS = 1.0
LOG_BUFFER_RECORDS = 1000


class GlanceliteServer(BaseApplication):
    def __init__(self, conf, gunicorn_file):
        self.conf = conf
        self.gunicorn_file = gunicorn_file
        super().__init__()

    def load_config(self):
        for name, value in GUNICORN_DEFAULTS.items():
            if name in self.cfg.settings:  # older gunicorns lack some settings
                self.cfg.set(name, value)
        if self.gunicorn_file and os.path.exists(self.gunicorn_file):
            for name, value in runpy.run_path(self.gunicorn_file).items():
                if name in self.cfg.settings and value is not None:
                    self.cfg.set(name, value)
        defaults = self.conf["DEFAULT"]
        self.cfg.set("bind", [f"{defaults['bind_host']}:{defaults['bind_port']}"])
        self.cfg.set("workers", defaults["workers"])
        self.cfg.set("limit_request_field_size", defaults["max_header_line"])

    def load(self):  # in the worker, after the fork
        _batch_log_writes()
        return start_housekeeping(create_app(self.conf))


def _batch_log_writes():
    """Put a MemoryHandler in front of this process's log handlers, flushed periodically."""
    root = logging.getLogger()
    targets = [handler for handler in root.handlers
               if not isinstance(handler, logging.handlers.MemoryHandler)]
    if not targets:
        return
    batches = []
    for target in targets:
        root.removeHandler(target)
        batch = logging.handlers.MemoryHandler(LOG_BUFFER_RECORDS, logging.WARNING, target)
        root.addHandler(batch)
        batches.append(batch)

    def flush():
        for batch in batches:
            batch.flush()
    flusher = Housekeeping()
    flusher.every("log flush", LOG_FLUSH_SECONDS, flush)
    flusher.start()


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="glancelite-api", description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default=default_config_path(),
                        help="glancelite ini file (default: $GLANCELITE_CONFIG, then "
                             "conf/glancelite.conf)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s "
                                                   "%(name)s %(message)s")
    try:
        conf = load_config(args.config_file)
        create_app(conf)  # fail here, with a clear message, rather than in every worker
    except (ConfigError, DatabaseNotReady, IdentityConfigError) as exc:
        sys.exit(f"glancelite-api: {exc}")
    gunicorn_file = os.path.join(os.path.dirname(os.path.abspath(args.config_file)),
                                 "gunicorn.conf.py")
    GlanceliteServer(conf, gunicorn_file).run()


if __name__ == "__main__":
    main()
