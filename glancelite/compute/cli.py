"""Command line: `glancelite-compute ...`, also mounted as `glancelite compute ...`.

    fetch IMAGE_ID [--verify] [--json]            into instances_path/_base/sha1(id)
    cache list [--json]                            sha1 -> image id, size, age, in use
    cache prune [--max-size SIZE] [--dry-run]      nova's age rules plus an LRU size cap
    cache verify [IMAGE_ID...] [--remove-bad]      re-hash against the registry
    cache precache IMAGE_ID... [--concurrency N] [--jitter S]

Exit codes (reference §2.4): 0 ok, 1 failed, 2 usage or configuration, 3 hash mismatch on
every source, 4 image not found / not active / no data, 5 forbidden or deactivated,
6 registry or store unreachable, 7 (glancelite) rejected by format inspection,
130 interrupted.

The glancelite CLI mounts these with `register(subparsers)`: it adds a `compute` parser
whose namespace carries `func`, a callable that takes the parsed namespace and returns
the exit code.
"""
import argparse
import json
import logging
import sys
import time

from glancelite.compute import cache as caching
from glancelite.compute import config as configuration
from glancelite.compute import fetch as fetching
from glancelite.compute.registry import Registry

LOG = logging.getLogger("glancelite.compute")
PROG = "glancelite-compute"


# -- parser ----------------------------------------------------------------------------------

def _common(parser, suppress):
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config-file", action="append", metavar="PATH", default=default,
                        dest="compute_config_file",
                        help="nova.conf-style file (repeatable; later files win). Default: "
                             f"${configuration.CONFIG_ENV_VAR}, else "
                             f"{' or '.join(configuration.DEFAULT_PATHS)}")
    parser.add_argument("-v", "--verbose", action="count", dest="compute_verbose",
                        default=argparse.SUPPRESS if suppress else 0,
                        help="log more (-v: what is tried and why, -vv: debug)")


def _output(parser):
    parser.add_argument("--json", dest="compute_format", action="store_const", const="json",
                        default="text", help="print JSON instead of text")
    parser.add_argument("--format", dest="compute_format", choices=("text", "json"),
                        help="output format (same as --json for json)")


def _fetch_options(parser):
    parser.add_argument("--allow-legacy-paths", action="store_true",
                        help="without [image_file_url] filesystems, use file:// paths as they "
                             "are (nova's legacy mode; off by default)")
    parser.add_argument("--require-hash", action="store_true",
                        help="fail when the registry has no hash to verify against")
    parser.add_argument("--allow-md5-fallback", action="store_true",
                        help="verify the md5 checksum when os_hash_algo is unavailable here")
    parser.add_argument("--check-md5", action="store_true",
                        help="also verify the md5 checksum when os_hash_value is checked (a "
                             "second hash thread; costs CPU, adds little)")
    parser.add_argument("--trust-store", action="store_true",
                        help="do not hash direct-file copies (the share is trusted; the copy "
                             "runs at cp speed); HTTP downloads are still verified")
    parser.add_argument("--no-inspect", dest="inspect", action="store_false",
                        help="skip the format checks and the raw conversion")
    parser.add_argument("--http-only", action="store_true",
                        help="do not try direct file locations")
    parser.add_argument("--lock-timeout", type=float, metavar="SECONDS",
                        help="give up (exit 1) when another fetch holds the image's lock longer")


def add_commands(parser):
    """Add `fetch` and `cache ...` to a parser (the top level, or `compute`)."""
    commands = parser.add_subparsers(dest="compute_command", metavar="COMMAND")

    fetch = commands.add_parser("fetch", help="fetch an image into the _base cache",
                                description="Fetch an image into instances_path/_base/"
                                            "sha1(IMAGE_ID): direct file copy when a file:// "
                                            "location maps onto a local mount, else HTTP; "
                                            "verified either way.")
    _common(fetch, suppress=True)
    fetch.add_argument("image_id", metavar="IMAGE_ID")
    fetch.add_argument("--verify", action="store_true",
                       help="on a cache hit, re-hash the cached file against the registry "
                            "(a bad one is fetched again)")
    _fetch_options(fetch)
    _output(fetch)
    fetch.set_defaults(compute_handler=_cmd_fetch)

    cache = commands.add_parser("cache", help="list, prune, verify or pre-fill the _base cache")
    _common(cache, suppress=True)
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="COMMAND")

    listing = cache_commands.add_parser("list", help="cached images with size, age and use")
    _common(listing, suppress=True)
    listing.add_argument("--in-use", action="append", default=[], metavar="IMAGE_ID",
                         help="count this image as in use (repeatable)")
    listing.add_argument("--no-registry", action="store_true",
                         help="do not ask the registry for image ids the files do not carry")
    _output(listing)
    listing.set_defaults(compute_handler=_cmd_list)

    prune = cache_commands.add_parser("prune", help="remove unused old files; cap the size")
    _common(prune, suppress=True)
    prune.add_argument("--max-size", type=configuration.parse_size, metavar="SIZE",
                       help="LRU cap on the cache's disk usage, e.g. 200G "
                            "(default [image_cache] max_size; 0 = none)")
    prune.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    prune.add_argument("--in-use", action="append", default=[], metavar="IMAGE_ID",
                       help="count this image as in use (repeatable)")
    _output(prune)
    prune.set_defaults(compute_handler=_cmd_prune)

    verify = cache_commands.add_parser("verify", help="re-hash cached images against the registry")
    _common(verify, suppress=True)
    verify.add_argument("image_ids", nargs="*", metavar="IMAGE_ID",
                        help="only these images (default: every cached original)")
    verify.add_argument("--remove-bad", action="store_true",
                        help="delete files that do not match (unless in use)")
    verify.add_argument("--allow-md5-fallback", action="store_true",
                        help="verify the md5 checksum when os_hash_algo is unavailable here")
    _output(verify)
    verify.set_defaults(compute_handler=_cmd_verify)

    pre = cache_commands.add_parser("precache", help="fetch several images, N at a time")
    _common(pre, suppress=True)
    pre.add_argument("image_ids", nargs="+", metavar="IMAGE_ID")
    pre.add_argument("--concurrency", type=int, metavar="N",
                     help="parallel fetches (default [image_cache] precache_concurrency, "
                          "at most [compute] max_concurrent_disk_ops when set)")
    pre.add_argument("--jitter", type=float, default=0.0, metavar="SECONDS",
                     help="wait a random 0..SECONDS before each fetch (spreads a fleet)")
    _fetch_options(pre)
    _output(pre)
    pre.set_defaults(compute_handler=_cmd_precache)
    return commands


DESCRIPTION = ("Fetch images into nova's _base cache - by direct file copy from a shared "
               "store mount, else by HTTP download - verified either way, and manage that "
               "cache.")
EPILOG = ("exit codes: 0 ok, 1 failed, 2 usage or configuration, 3 hash mismatch on every "
          "source, 4 image not found / not active / no data, 5 forbidden or deactivated, "
          "6 registry or store unreachable, 7 rejected by format inspection, 130 interrupted")


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG)
    _common(parser, suppress=False)
    add_commands(parser)
    return parser


def register(subparsers):
    """Mount as `compute` on the glancelite CLI's subparsers; returns the new parser."""
    parser = subparsers.add_parser("compute", help="compute-node fetcher and _base cache",
                                   description=DESCRIPTION, epilog=EPILOG)
    _common(parser, suppress=False)
    add_commands(parser)
    parser.set_defaults(func=run, compute_parser=parser)
    return parser


# -- running ---------------------------------------------------------------------------------

def _setup_logging(verbosity):
    level = logging.WARNING if not verbosity else logging.INFO if verbosity == 1 else logging.DEBUG
    LOG.setLevel(level)
    if not any(getattr(handler, "_glancelite_compute", False) for handler in LOG.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
        handler._glancelite_compute = True
        LOG.addHandler(handler)
        LOG.propagate = False


def _registry(conf):
    if not conf.api_servers:
        raise configuration.ConfigError("[glance] api_servers is not set")
    return Registry(conf.api_servers, conf.auth_headers(), conf.timeout, conf.num_retries,
                    conf.tls)


def _fetcher(conf, args):
    return fetching.Fetcher(conf, _registry(conf), allow_legacy=args.allow_legacy_paths,
                            require_hash=args.require_hash,
                            allow_md5_fallback=args.allow_md5_fallback, inspect=args.inspect,
                            lock_timeout=args.lock_timeout, http_only=args.http_only,
                            all_hashes=args.check_md5, trust_store=args.trust_store)


def _emit(args, document, text):
    if args.compute_format == "json":
        print(json.dumps(document, indent=2, sort_keys=True))
    elif text:
        print(text)


def _cmd_fetch(conf, args):
    try:
        result = _fetcher(conf, args).fetch(args.image_id, verify_cached=args.verify)
    except fetching.FetchError as exc:
        if args.compute_format == "json":
            _emit(args, {"image_id": args.image_id, "error": str(exc),
                         "exit_code": exc.exit_code, "skipped": exc.skipped}, None)
        for skip in exc.skipped:
            LOG.info("not used: %s: %s", skip["url"], skip["reason"])
        raise
    _emit(args, result.as_dict(), result.line())
    return fetching.EXIT_OK


def _human(size):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _age(seconds):
    seconds = int(max(seconds, 0))
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def _table(headers, rows):
    widths = [max(len(str(value)) for value in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


def _cmd_list(conf, args):
    registry = None if args.no_registry or not conf.api_servers else _registry(conf)
    entries = caching.list_entries(conf, registry, args.in_use)
    now = time.time()
    rows = [(entry.name, entry.image_id or "-", entry.kind, _human(entry.bytes),
             _human(entry.allocated), _age(entry.age(now)), "yes" if entry.in_use else "no")
            for entry in entries]
    total = sum(entry.allocated for entry in entries)
    text = _table(("NAME", "IMAGE_ID", "KIND", "SIZE", "ON_DISK", "AGE", "IN_USE"), rows)
    text += f"\n{len(entries)} file(s), {_human(total)} on disk in {conf.base_dir}"
    _emit(args, {"base_dir": conf.base_dir, "total_allocated": total,
                 "entries": [entry.as_dict(now) for entry in entries]}, text)
    return fetching.EXIT_OK


def _cmd_prune(conf, args):
    removed, kept, warnings = caching.prune(conf, args.max_size, args.dry_run, args.in_use)
    for warning in warnings:
        LOG.warning("%s", warning)
    verb, done = ("would remove", "would be removed") if args.dry_run else ("removed", "removed")
    lines = [f"{verb} {item.name} ({item.image_id or '-'}, {_human(item.bytes)}): {item.reason}"
             for item in removed]
    total = sum(entry.allocated for entry in kept)
    lines.append(f"{len(removed)} file(s) {done}, {_human(sum(i.bytes for i in removed))}; "
                 f"{len(kept)} kept, {_human(total)} on disk")
    _emit(args, {"dry_run": args.dry_run, "removed": [vars(item) for item in removed],
                 "kept": [entry.name for entry in kept], "kept_allocated": total,
                 "warnings": warnings}, "\n".join(lines))
    return fetching.EXIT_OK


def _cmd_verify(conf, args):
    checks = caching.verify(conf, _registry(conf), args.image_ids, args.remove_bad,
                            args.allow_md5_fallback)
    rows = [(check.name, check.image_id or "-", check.status, check.detail) for check in checks]
    _emit(args, {"checks": [vars(check) for check in checks]},
          _table(("NAME", "IMAGE_ID", "STATUS", "DETAIL"), rows) if rows else "cache is empty")
    return fetching.EXIT_HASH_MISMATCH if any(c.status == "MISMATCH" for c in checks) else 0


def _cmd_precache(conf, args):
    concurrency = args.concurrency or conf.cache["precache_concurrency"]
    if conf.max_concurrent_disk_ops:
        concurrency = min(concurrency, conf.max_concurrent_disk_ops)
    if concurrency < 1:
        raise configuration.ConfigError("--concurrency must be at least 1")
    outcomes = caching.precache(_fetcher(conf, args), args.image_ids, concurrency, args.jitter)
    lines = [f"{item.image_id} {item.status}" + (f" ({item.detail})" if item.detail else "")
             for item in outcomes]
    _emit(args, {"images": [vars(item) for item in outcomes]}, "\n".join(lines))
    codes = {item.exit_code for item in outcomes if item.exit_code}
    return 0 if not codes else codes.pop() if len(codes) == 1 else fetching.EXIT_FAILED


def run(args):
    """Run a parsed compute command; returns the exit code."""
    parser = getattr(args, "compute_parser", None)
    prog = parser.prog if parser is not None else PROG
    _setup_logging(getattr(args, "compute_verbose", 0) or 0)
    handler = getattr(args, "compute_handler", None)
    if handler is None:
        if parser is not None:
            parser.print_usage(sys.stderr)
        print(f"{prog}: error: a command is required (fetch, cache list|prune|verify|precache)",
              file=sys.stderr)
        return fetching.EXIT_USAGE
    try:
        conf = configuration.load(args.compute_config_file)
        return handler(conf, args)
    except configuration.ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return fetching.EXIT_USAGE
    except fetching.FetchError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return fetching.EXIT_INTERRUPTED
    except (OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return fetching.EXIT_FAILED


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.compute_parser = parser
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
