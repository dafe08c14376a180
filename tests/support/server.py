"""Start glancelite-api (gunicorn) on a free loopback port, and a small HTTP client."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(directory, database_url, overrides=None, port=None):
    """A glancelite.conf for a test server: the sample's defaults plus overrides."""
    sections = {
        "DEFAULT": {"bind_host": "127.0.0.1", "bind_port": port or free_port(), "workers": 2},
        "database": {"connection": database_url},
        "glance_store": {"filesystem_store_datadir": str(Path(directory) / "images")},
        "oslo_policy": {"policy_file": str(REPO / "policies" / "policy.json")},
    }
    for section, options in (overrides or {}).items():
        sections.setdefault(section, {}).update(options)
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        for key, value in options.items():
            if isinstance(value, (list, tuple)):
                value = ", ".join(value)
            lines.append(f"{key} = {value}")
    path = Path(directory) / "glancelite.conf"
    path.write_text("\n".join(lines) + "\n")
    return path, sections["DEFAULT"]["bind_port"]


def run_manage(config_path, *args):
    return subprocess.run([str(BIN / "glancelite-manage"), "--config-file", str(config_path), *args],
                          capture_output=True, text=True, timeout=120)


def wait_until_up(base_url, process, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"glancelite-api exited with {process.returncode}:\n"
                               f"{Path(log_path).read_text()}")
        try:
            requests.get(f"{base_url}/versions", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"glancelite-api did not answer within {timeout}s:\n"
                       f"{Path(log_path).read_text()}")


class ServerURL(str):
    """A running server's base URL that also knows its store directory and process group."""
    datadir: Path
    pgid: int
    log_path: Path


@contextlib.contextmanager
def running_server(directory, database_url, overrides=None, env=None):
    """Sync the schema, run glancelite-api in its own process group (with `env` as its
    environment, if given), yield its ServerURL."""
    config_path, port = write_config(directory, database_url, overrides)
    synced = run_manage(config_path, "db", "sync")
    if synced.returncode != 0:
        raise RuntimeError(f"db sync failed: {synced.stderr}")
    log_path = Path(directory) / "api.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(BIN / "glancelite-api"), "--config-file", str(config_path)],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=directory,
                                   env=env, start_new_session=True)
    base_url = ServerURL(f"http://127.0.0.1:{port}")
    base_url.datadir = Path(directory) / "images"
    base_url.pgid = process.pid
    base_url.log_path = log_path
    try:
        wait_until_up(base_url, process, log_path)
        yield base_url
    finally:
        stop_server(process)


def stop_server(process):
    """Stop a glancelite-api started in its own process group, quickly: tests need no grace."""
    with contextlib.suppress(ProcessLookupError):
        # To the master only, which passes it on: a gthread worker that gets a second
        # SIGQUIT while handling the first can deadlock in its pool's shutdown.
        os.kill(process.pid, signal.SIGQUIT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        # A worker still booting when the signal came never sees it (gunicorn), and the
        # master would wait its graceful_timeout for it.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"


class ApiClient:
    """requests.Session preset with a base URL and keystonemiddleware-style identity."""

    def __init__(self, base_url, project=None, roles=("member",), user=None, accept="application/json"):
        self.base_url = base_url
        self.project = project
        self.session = requests.Session()
        if accept:
            self.session.headers["Accept"] = accept
        if project is not None:
            self.session.headers.update({
                "X-Identity-Status": "Confirmed",
                "X-Project-Id": project,
                "X-User-Id": user or f"user-of-{project}",
                "X-Roles": ",".join(roles),
            })

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 60)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def patch(self, path, changes, media_type=PATCH_V21, **kw):
        headers = {"Content-Type": media_type, **kw.pop("headers", {})}
        return self.request("PATCH", path, json=changes, headers=headers, **kw)

    def create_image(self, **body):
        """POST /v2/images and return the image document (asserting 201)."""
        response = self.post("/v2/images", json=body)
        assert response.status_code == 201, response.text
        return response.json()
