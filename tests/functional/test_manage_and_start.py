"""glancelite-manage db sync/version and glancelite-api start-up failures, as an operator sees them."""
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from glancelite.db import migrate
from tests.support.server import (
    BIN,
    REPO,
    run_manage,
    running_server,
    stop_server,
    wait_until_up,
    write_config,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, database_url_factory):
    return database_url_factory(request.param)


def test_db_sync_and_version(tmp_path, fresh_database):
    config, _port = write_config(tmp_path, fresh_database)
    before = run_manage(config, "db", "version")
    assert before.returncode == 0 and before.stdout.strip() == "none"
    synced = run_manage(config, "db", "sync")
    assert synced.returncode == 0, synced.stderr
    after = run_manage(config, "db", "version")
    assert after.stdout.strip() == newest_revision()
    assert run_manage(config, "db", "sync").returncode == 0  # idempotent


def newest_revision():
    versions = Path(migrate.__file__).parent / "migrations" / "versions"
    return max(path.name.split("_")[0] for path in versions.glob("[0-9]*.py"))


def start_api(config, env=None):
    return subprocess.run([str(BIN / "glancelite-api"), "--config-file", str(config)],
                          capture_output=True, text=True, timeout=60, env=env)


def test_api_refuses_an_unmigrated_database(tmp_path, fresh_database):
    config, _port = write_config(tmp_path, fresh_database)
    result = start_api(config)
    assert result.returncode != 0
    assert "glancelite-manage db sync" in result.stderr


def test_api_refuses_invalid_config_naming_option_and_file(tmp_path):
    config = tmp_path / "bad.conf"
    config.write_text("[DEFAULT]\nbind_port = http\n")
    result = start_api(config)
    assert result.returncode != 0
    assert str(config) in result.stderr and "bind_port" in result.stderr


def test_api_refuses_missing_config_file(tmp_path):
    result = start_api(tmp_path / "absent.conf")
    assert result.returncode != 0
    assert "absent.conf: cannot read configuration file" in result.stderr


def test_manage_reports_unreachable_database(tmp_path):
    config, _port = write_config(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = run_manage(config, "db", "sync")
    assert result.returncode != 0
    assert "database error" in result.stderr and "Traceback" not in result.stderr


def test_config_file_from_environment(tmp_path, database_url_factory):
    config, port = write_config(tmp_path, database_url_factory("sqlite"))
    assert run_manage(config, "db", "sync").returncode == 0
    env = {**os.environ, "GLANCELITE_CONFIG": str(config)}
    process = subprocess.Popen([str(BIN / "glancelite-api")], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=(tmp_path / "log").open("w"),
                               start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, tmp_path / "log")
        assert requests.get(f"http://127.0.0.1:{port}/versions").status_code == 200
    finally:
        stop_server(process)


def test_no_control_socket_in_the_shared_home_directory(tmp_path, database_url_factory):
    """gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl):
    a second instance, or any other gunicorn app of the same user, would take it over."""
    home = tmp_path / "home"
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if name != "XDG_RUNTIME_DIR"}
    with running_server(tmp_path, database_url_factory("sqlite"), {"DEFAULT": {"workers": 1}},
                        env={**env, "HOME": str(home)}) as server:
        # gunicorn opens the socket from a thread once its workers are spawned: give it time
        deadline = time.monotonic() + 10
        while "Booting worker" not in server.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        assert not (home / ".gunicorn").exists()
        assert "Control socket" not in server.log_path.read_text()
