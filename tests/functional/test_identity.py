"""Identity strategies: noauth headers, the unauthenticated context, and tokens."""
import subprocess

import pytest
import requests

from tests.support.server import BIN, run_manage, running_server, write_config


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tokens_server(request, database_url_factory, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tokens")
    tokens_file = directory / "tokens.ini"
    config, _port = write_config(directory, "sqlite://", {"DEFAULT": {"tokens_file": str(tokens_file)}})
    made = {}
    for name, project, roles in (("alice", "demo", "member,reader"), ("root", "ops", "Admin")):
        result = run_manage(config, "token", "create", "--project", project, "--roles", roles,
                            "--user", name)
        assert result.returncode == 0, result.stderr
        made[name] = result.stdout.strip()
    assert "only time it is shown" in result.stderr
    assert made["alice"] not in tokens_file.read_text()
    assert oct(tokens_file.stat().st_mode & 0o777) == "0o600"
    overrides = {"DEFAULT": {"auth_strategy": "tokens", "tokens_file": str(tokens_file)}}
    with running_server(directory, database_url_factory(request.param), overrides) as base:
        yield base, made


def get(base, path, **headers):
    return requests.get(base + path, headers={"Accept": "application/json", **headers}, timeout=30)


def test_token_identifies_user_project_and_roles(tokens_server):
    base, made = tokens_server
    response = requests.post(f"{base}/v2/images", json={"name": "t"},
                             headers={"X-Auth-Token": made["alice"]}, timeout=30)
    assert response.status_code == 201
    assert response.json()["owner"] == "demo"
    public = requests.post(f"{base}/v2/images", json={"visibility": "public"},
                           headers={"X-Auth-Token": made["alice"], "Accept": "application/json"},
                           timeout=30)
    assert public.status_code == 403
    as_admin = requests.post(f"{base}/v2/images", json={"visibility": "public"},
                             headers={"X-Auth-Token": made["root"]}, timeout=30)
    assert as_admin.status_code == 201 and as_admin.json()["owner"] == "ops"


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "wrong"}, {"X-Auth-Token": ""}])
def test_missing_or_unknown_token_is_401(tokens_server, headers):
    base, _made = tokens_server
    response = get(base, "/v2/images", **headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Token")
    assert "could not verify that you are authorized" in response.json()["message"]


def test_identity_headers_are_ignored_with_tokens(tokens_server):
    base, made = tokens_server
    spoofed = get(base, "/v2/images", **{"X-Identity-Status": "Confirmed", "X-Roles": "admin",
                                         "X-Project-Id": "ops"})
    assert spoofed.status_code == 401
    response = requests.post(f"{base}/v2/images", json={"name": "x"}, timeout=30,
                             headers={"X-Auth-Token": made["alice"], "X-Project-Id": "ops",
                                      "X-Roles": "admin", "X-Identity-Status": "Confirmed"})
    assert response.json()["owner"] == "demo"


def test_versions_need_no_token(tokens_server):
    base, _made = tokens_server
    assert requests.get(f"{base}/versions", timeout=30).status_code == 200


def start(config):
    return subprocess.run([str(BIN / "glancelite-api"), "--config-file", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_noauth_refuses_a_public_address(tmp_path):
    config, _port = write_config(tmp_path, f"sqlite:///{tmp_path}/db.sqlite",
                                 {"DEFAULT": {"bind_host": "0.0.0.0"}})
    assert run_manage(config, "db", "sync").returncode == 0
    result = start(config)
    assert result.returncode != 0
    assert "allow_insecure_noauth" in result.stderr and "0.0.0.0" in result.stderr


@pytest.mark.parametrize("content, message", [
    (None, "cannot read tokens file"),
    ("[not-a-digest]\nproject = p\nroles = member\n", "is not the SHA-256"),
    ("[" + "a" * 64 + "]\nproject = p\n", "lacks roles"),
])
def test_bad_tokens_file_stops_the_service(tmp_path, content, message):
    tokens_file = tmp_path / "tokens.ini"
    if content is not None:
        tokens_file.write_text(content)
    config, _port = write_config(tmp_path, f"sqlite:///{tmp_path}/db.sqlite",
                                 {"DEFAULT": {"auth_strategy": "tokens",
                                              "tokens_file": str(tokens_file)}})
    assert run_manage(config, "db", "sync").returncode == 0
    result = start(config)
    assert result.returncode != 0
    assert message in result.stderr and str(tokens_file) in result.stderr
