"""The `glancelite` command-line client, run as a subprocess against a real server.

Like glance, the CLI is given only an image URL and a token, so on the default (noauth)
server it runs as the unauthenticated admin context; the multi-project checks (403s,
members answering offers, 401) use a server with `auth_strategy = tokens` and a token per
project, which is how a glance user meets those errors too.
"""
import ast
import hashlib
import json
import os
import platform
import pty
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from glancelite.server import LOG_FLUSH_SECONDS
from tests.support.server import BIN, ApiClient, running_server

CLI = str(BIN / "glancelite")
OCTET = {"Content-Type": "application/octet-stream"}


def environment(home, url, token="x", **extra):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCELITE_CLIENT"))}
    env.update(HOME=str(home), OS_IMAGE_URL=url, OS_AUTH_TOKEN=token, COLUMNS="120", **extra)
    if url is None:
        del env["OS_IMAGE_URL"]
    return env


def make_runner(url, home, token="x"):
    def run(*args, input=None, binary=False, token=token, url=url, env=None):
        kwargs = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        result = subprocess.run([CLI, *args], capture_output=True, text=not binary, timeout=120,
                                env=env or environment(home, url, token), **kwargs)
        return result
    return run


@pytest.fixture
def cli(server, tmp_path):
    return make_runner(server, tmp_path)


@pytest.fixture
def api(server):
    return ApiClient(server)


@pytest.fixture
def cli_once(request, server, tmp_path):
    """`cli` for checks that do not depend on the database: run on SQLite only."""
    if request.node.callspec.params.get("server") != "sqlite":
        pytest.skip("output and argument handling do not depend on the database")
    return make_runner(server, tmp_path)


@pytest.fixture
def offline(tmp_path):
    """`cli` pointed at a closed port: for what must fail before any request is sent."""
    return make_runner("http://127.0.0.1:9", tmp_path)


def table(output):
    """Property/Value rows of a table as a dict (continuation lines joined)."""
    rows, key = {}, None
    for line in output.splitlines():
        if not line.startswith("|"):
            continue
        name, value = (cell.strip() for cell in line.strip().strip("|").split("|", 1))
        if name:
            key = name
            rows[key] = value
        elif key:
            rows[key] += value
    rows.pop("Property", None)
    return rows


def rows(output):
    """Body rows of a list table (the header row dropped)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in output.splitlines() if line.startswith("|")][1:]


def header(output):
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in output.splitlines() if line.startswith("|")][0]


def ok(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result


def failed(result, code=1):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result.stderr.strip()


def new_image(api, data=None, **fields):
    body = {"disk_format": "raw", "container_format": "bare", **fields}
    image = api.create_image(**body)
    if data is not None:
        response = api.put(f"/v2/images/{image['id']}/file", data=data, headers=OCTET)
        assert response.status_code == 204, response.text
    return image["id"]


def server_log_lines(server, needle, settle=3.0):
    """Lines of the server log holding `needle`; workers write their log about once a
    second, so the log is read again until it stops growing or `settle` seconds pass."""
    deadline, seen = time.monotonic() + settle, None
    while True:
        text = server.log_path.read_text()
        if text == seen or time.monotonic() > deadline:
            return [line for line in text.splitlines() if needle in line]
        seen = text
        time.sleep(LOG_FLUSH_SECONDS * 1.6)


# -- metadata ---------------------------------------------------------------------------------

def test_create_show_update_delete(cli):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    created = ok(cli("image-create", "--name", name, "--disk-format", "qcow2",
                     "--container-format", "bare", "--visibility", "private", "--protected",
                     "False", "--min-ram", "256", "--property", "hw_firmware_type=uefi",
                     "--property", "foo=bar", "--tags", "a", "b", "--os-distro", "cirros"))
    image = table(created.stdout)
    image_id = image["id"]
    assert image["name"] == name and image["status"] == "queued"
    assert image["min_ram"] == "256" and image["protected"] == "False"
    assert image["hw_firmware_type"] == "uefi" and image["os_distro"] == "cirros"
    assert json.loads(image["tags"]) in (["a", "b"], ["b", "a"])
    assert image["virtual_size"] == "Not available" and image["size"] == "None"
    assert "self" not in image and "schema" not in image and "file" not in image
    assert list(image) == sorted(image)

    shown = json.loads(ok(cli("image-show", image_id, "-f", "json")).stdout)
    assert shown["id"] == image_id and shown["foo"] == "bar" and shown["self"].endswith(image_id)
    assert ok(cli("image-show", image_id, "-f", "value", "-c", "status", "-c", "name")).stdout \
        == f"queued\n{name}\n"

    updated = table(ok(cli("image-update", "--property", "os_version=0.6",
                           "--remove-property", "hw_firmware_type", "--remove-property", "absent",
                           "--min-ram", "512", "--name", name + "-2", image_id)).stdout)
    assert updated["os_version"] == "0.6" and updated["min_ram"] == "512"
    assert updated["name"] == name + "-2" and "hw_firmware_type" not in updated

    ok(cli("image-delete", image_id))
    assert failed(cli("image-show", image_id)) == f"HTTP 404 Not Found: No image found with ID {image_id}"
    assert failed(cli("image-update", "--name", "x", image_id)) == \
        f"HTTP 404 Not Found: No image found with ID {image_id}"


def test_server_side_errors_read_like_glance(cli_once, api):
    cli = cli_once
    assert failed(cli("image-create", "--visibility", "bogus")).startswith(
        "HTTP 400 Bad Request: Provided object does not match schema 'image'")
    assert failed(cli("image-create", "--property", "os_glance_x=1")) == (
        "HTTP 403 Forbidden: Access was denied to this resource.: Attribute 'os_glance_x' is "
        "reserved.")
    image_id = new_image(api)
    assert failed(cli("image-update", "--remove-property", "name", image_id)) == (
        "HTTP 403 Forbidden: Access was denied to this resource.: Property name may not be "
        "removed.")


def test_list_filters_sorting_paging_and_formats(cli, api, server):
    batch = uuid.uuid4().hex[:8]
    ids = {name: new_image(api, name=f"{batch}-{name}", disk_format=disk, batch=batch)
           for name, disk in (("b", "raw"), ("a", "qcow2"), ("c", "raw"))}
    mine = ("--property-filter", f"batch={batch}")

    listed = ok(cli("image-list", *mine))
    assert header(listed.stdout) == ["ID", "Name"]
    assert rows(listed.stdout) == [[ids[n], f"{batch}-{n}"] for n in "abc"]  # glance: name asc

    verbose = ok(cli("-v", "image-list", *mine, "--sort", "name:desc"))
    assert header(verbose.stdout) == ["ID", "Name", "Disk_format", "Container_format", "Size",
                                      "Status", "Owner"]
    assert rows(verbose.stdout)[0] == [ids["c"], f"{batch}-c", "raw", "bare", "", "queued", ""]

    by_keys = ok(cli("image-list", *mine, "--property-filter", "disk_format=raw",
                     "--sort-key", "name", "--sort-dir", "desc", "-f", "value", "-c", "ID"))
    assert by_keys.stdout.split() == [ids["c"], ids["b"]]

    paged = ok(cli("image-list", *mine, "--page-size", "1", "-f", "json"))
    assert [image["id"] for image in json.loads(paged.stdout)] == [ids[n] for n in "abc"]
    assert len(server_log_lines(server, f"batch={batch}&sort_key=name&sort_dir=asc&limit=1")) == 4
    limited = ok(cli("image-list", *mine, "--limit", "2", "--page-size", "1", "-f", "value"))
    assert limited.stdout.splitlines() == [f"{ids['a']} {batch}-a", f"{ids['b']} {batch}-b"]

    assert failed(cli("image-list", "--sort", "name", "--sort-key", "name")) == \
        "The 'sort' argument is not supported with 'sort_key' or 'sort_dir'."
    assert failed(cli("image-list", "--visibility", "bogus")) == \
        "HTTP 400 Bad Request: Invalid visibility value: bogus"
    assert "invalid choice" in failed(cli("image-list", "--sort-key", "min_ram"), code=2)
    assert "No column named 'Bogus'" in failed(cli("image-list", "-c", "Bogus"), code=2)


def test_nova_style_list(cli, api):
    batch = uuid.uuid4().hex[:8]
    server_uuid = str(uuid.uuid4())
    active = new_image(api, b"snapshot", name=f"{batch}-1-snap", instance_uuid=server_uuid, batch=batch)
    queued = new_image(api, name=f"{batch}-2-queued", batch=batch)
    deactivated = new_image(api, b"x", name=f"{batch}-3-off", batch=batch)
    assert api.post(f"/v2/images/{deactivated}/actions/deactivate").status_code == 204
    listed = ok(cli("image-list", "--nova-style", "--property-filter", f"batch={batch}"))
    assert header(listed.stdout) == ["ID", "Name", "Status", "Server"]
    assert rows(listed.stdout) == [[active, f"{batch}-1-snap", "ACTIVE", server_uuid],
                                   [queued, f"{batch}-2-queued", "SAVING", ""],
                                   [deactivated, f"{batch}-3-off", "UNKNOWN", ""]]
    as_json = json.loads(ok(cli("image-list", "--nova-style", "--property-filter",
                                f"batch={batch}", "-f", "json")).stdout)
    assert as_json[0] == {"id": active, "name": f"{batch}-1-snap", "status": "ACTIVE",
                          "instance_uuid": server_uuid}


# -- data -------------------------------------------------------------------------------------

def test_upload_and_download_with_progress(cli, tmp_path):
    source = tmp_path / "cirros.raw"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    created = ok(cli("image-create", "--name", "with-data", "--disk-format", "raw",
                     "--container-format", "bare", "--file", str(source), "--progress"))
    image = table(created.stdout)
    assert image["status"] == "active" and image["size"] == str(source.stat().st_size)
    assert "100%" in created.stderr and "B/s" in created.stderr and "3.00M" in created.stderr
    assert table(ok(cli("image-show", "--human-readable", image["id"])).stdout)["size"] == "3MB"

    target = tmp_path / "out.raw"
    downloaded = ok(cli("image-download", "--file", str(target), "--progress", image["id"]))
    assert "100%" in downloaded.stderr and "B/s" in downloaded.stderr
    assert target.read_bytes() == source.read_bytes()
    assert not (tmp_path / "out.raw.part").exists()

    to_stdout = ok(cli("image-download", image["id"], binary=True))
    assert to_stdout.stdout == source.read_bytes()

    assert failed(cli("image-upload", "--file", str(source), image["id"])) == \
        "HTTP 409 Conflict: Image status transition from active to saving is not allowed"


def test_stdin_data_and_empty_stdin(cli, api, tmp_path):
    piped = table(ok(cli("image-create", "--name", "piped", "--disk-format", "raw",
                         "--container-format", "bare", input=b"x" * 5000, binary=True)
                     ).stdout.decode())
    assert piped["status"] == "active" and piped["size"] == "5000"

    # stdin is /dev/null here: not image data, so the image stays queued (glance would
    # upload 0 bytes and make it active)
    empty = table(ok(cli("image-create", "--name", "no-data", "--disk-format", "raw",
                         "--container-format", "bare")).stdout)
    assert empty["status"] == "queued"
    assert failed(cli("image-upload", empty["id"])) == \
        "No image data: give --file FILE or send the data on standard input."
    assert failed(cli("image-download", "--file", str(tmp_path / "q"), empty["id"])) == \
        f"Image {empty['id']} has no data."
    ok(cli("image-upload", "--size", "3", empty["id"], input=b"abc", binary=True))
    assert api.get(f"/v2/images/{empty['id']}").json()["size"] == 3
    assert failed(cli("image-download", "--file", str(tmp_path / "o"), empty["id"] + "x")) == (
        f"Unable to download image '{empty['id']}x'. (HTTP 404 Not Found: No image found with ID "
        f"{empty['id']}x)")
    assert not list(tmp_path.glob("o*")) and not list(tmp_path.glob("q*"))


def test_data_argument_errors(offline, tmp_path):
    cli = offline
    assert failed(cli("image-create", "--name", "x", "--file", str(tmp_path / "missing"))) \
        .startswith("Unable to open")
    source = tmp_path / "img"
    source.write_bytes(b"data")
    assert failed(cli("image-create", "--name", "x", "--file", str(source))) == \
        "error: Must provide --disk-format, --container-format when using --file."
    assert failed(cli("image-create", "--name", "x", "--disk-format", "raw", input=b"data",
                      binary=True)).decode() == \
        "error: Must provide --container-format when using image data on stdin."
    assert "--resume needs --file" in failed(cli("image-download", "--resume", "some-id"), code=2)
    assert failed(cli("image-upload", "some-id", input=b"", binary=True)).decode() == \
        "No image data: give --file FILE or send the data on standard input."


def test_corrupt_store_file_leaves_no_file_and_exits_3(cli, api, server, tmp_path):
    data = os.urandom(200_000)
    image_id = new_image(api, data)
    stored = server.datadir / image_id
    corrupt = bytearray(stored.read_bytes())
    corrupt[500] ^= 0xFF
    stored.write_bytes(bytes(corrupt))
    target = tmp_path / "bad.raw"
    message = failed(cli("image-download", "--file", str(target), image_id), code=3)
    assert message.startswith("[Errno 32] Corrupt image download. Hash was ")
    assert message.endswith("expected " + api.get(f"/v2/images/{image_id}").json()["os_hash_value"])
    assert not target.exists() and not (tmp_path / "bad.raw.part").exists()
    stored.write_bytes(data)  # the session's server is shared: put the bytes back


def test_resume_fetches_only_the_rest(cli, api, server, tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 5)
    image_id = new_image(api, data)
    target = tmp_path / "resumed.raw"
    part = tmp_path / "resumed.raw.part"
    part.write_bytes(data[:1_000_000])
    resumed = ok(cli("image-download", "--file", str(target), "--resume", "--progress", image_id))
    assert target.read_bytes() == data and not part.exists()
    assert server_log_lines(server, f"GET /v2/images/{image_id}/file 206")
    assert "100%" in resumed.stderr

    # A wrong prefix is kept and hashed with the rest, so the result fails verification:
    # proof that only the remainder came over the wire. Nothing is left behind.
    part.write_bytes(b"\0" * 1_000_000)
    target.unlink()
    failed(cli("image-download", "--file", str(target), "--resume", image_id), code=3)
    assert not target.exists() and not part.exists()

    # Without --resume a stale part file is overwritten from the start.
    part.write_bytes(b"\0" * 10)
    ok(cli("image-download", "--file", str(target), image_id))
    assert target.read_bytes() == data


# -- actions, tags, delete --------------------------------------------------------------------

def test_deactivate_reactivate_and_tags(cli, api):
    queued = new_image(api)
    assert failed(cli("image-deactivate", queued)) == \
        "HTTP 403 Forbidden: Not allowed to deactivate image in status 'queued'"
    active = new_image(api, b"bytes")
    status = lambda: api.get(f"/v2/images/{active}").json()["status"]  # noqa: E731
    ok(cli("image-deactivate", active))
    assert status() == "deactivated"
    ok(cli("image-reactivate", active))
    assert status() == "active"

    tagged = ok(cli("image-tag-update", active, "gold"))
    assert header(tagged.stdout) == ["ID", "Tags"]
    assert rows(tagged.stdout) == [[active, "['gold']"]]
    ok(cli("image-tag-delete", active, "gold"))
    assert api.get(f"/v2/images/{active}").json()["tags"] == []
    assert failed(cli("image-tag-delete", active, "gold")) == \
        "HTTP 404 Not Found: The resource could not be found."
    assert failed(cli("image-tag-update", "nope", "x")) == "HTTP 404 Not Found: Image nope not found."


def test_delete_several_reports_each_failure(cli, api):
    protected = new_image(api, protected=True)
    doomed = new_image(api)
    missing = str(uuid.uuid4())
    message = failed(cli("image-delete", protected, missing, doomed))
    assert message.splitlines() == [f"You are not permitted to delete the image '{protected}'.",
                                    f"No image with an ID of '{missing}' exists."]
    assert api.get(f"/v2/images/{doomed}").status_code == 404
    assert api.get(f"/v2/images/{protected}").status_code == 200


# -- members ----------------------------------------------------------------------------------

def test_members(cli, api):
    image_id = new_image(api, visibility="shared")
    created = ok(cli("member-create", image_id, "tenant-a"))
    assert header(created.stdout) == ["Image ID", "Member ID", "Status"]
    assert rows(created.stdout) == [[image_id, "tenant-a", "pending"]]
    assert failed(cli("member-create", image_id, "tenant-a")) == \
        f"HTTP 409 Conflict: Member tenant-a is duplicated for image {image_id}"
    api.post(f"/v2/images/{image_id}/members", json={"member": "tenant-b"})
    assert rows(ok(cli("member-list", "--image-id", image_id)).stdout) == \
        [[image_id, "tenant-a", "pending"], [image_id, "tenant-b", "pending"]]
    got = json.loads(ok(cli("member-get", image_id, "tenant-a", "-f", "json")).stdout)
    assert got["member_id"] == "tenant-a" and got["status"] == "pending"
    assert rows(ok(cli("member-update", image_id, "tenant-a", "accepted")).stdout) == \
        [[image_id, "tenant-a", "accepted"]]
    assert "invalid choice" in failed(cli("member-update", image_id, "tenant-a", "maybe"), code=2)
    ok(cli("member-delete", image_id, "tenant-b"))
    assert failed(cli("member-get", image_id, "tenant-b")) == (
        f"HTTP 404 Not Found: tenant-b not found in the member list of the image {image_id}.")
    private = new_image(api, visibility="private")
    assert failed(cli("member-create", private, "x")) == \
        f"HTTP 403 Forbidden: Not allowed to create members for image {private}."


# -- info, usage and settings -----------------------------------------------------------------

def test_features_the_server_lacks(cli_once, api):
    cli = cli_once
    assert failed(cli("stores-info")) == "Multi Backend support is not enabled"
    assert failed(cli("cache-list")) == "Glance does not support image caching API (v2.14)"
    image_id = new_image(api, b"data")
    assert failed(cli("location-add", image_id, "--url", "file:///etc/passwd")) == \
        "HTTP 403 Forbidden: It's not allowed to add locations if locations are invisible."
    assert failed(cli("image-upload", "--store", "fast", "--file", "/dev/null", image_id)) == \
        "Multi Backend support is not enabled"


def test_usage_errors_exit_2(offline):
    cli = offline
    assert "the following arguments are required: <IMAGE_ID>" in failed(cli("image-show"), code=2)
    assert "invalid choice" in failed(cli("image-bogus"), code=2)
    assert "a subcommand is required" in failed(cli(), code=2)
    assert "expected key=value" in failed(cli("image-create", "--property", "novalue"), code=2)
    assert "invalid boolean" in failed(cli("image-create", "--protected", "maybe"), code=2)
    helped = ok(cli("help", "image-download"))
    assert "--resume" in helped.stdout


def test_endpoint_token_and_config_file(cli_once, server, tmp_path, api):
    run = cli_once
    image_id = new_image(api, name="conf-check")
    no_url = run("image-show", image_id, env=environment(tmp_path, None))
    assert failed(no_url).startswith("You must provide an image URL via either --os-image-url")

    config = tmp_path / "client.conf"
    config.write_text(f"[glancelite]\nimage_url = {server}/v2\nauth_token = t\n")
    from_file = run("image-show", image_id, "-f", "value", "-c", "name",
                    env=environment(tmp_path, None, GLANCELITE_CLIENT_CONFIG=str(config)))
    assert ok(from_file).stdout == "conf-check\n"
    flagged = run("--os-image-url", server + "/v2/", "image-show", image_id, "-f", "value",
                  "-c", "name", env=environment(tmp_path, "http://127.0.0.1:9/unused"))
    assert ok(flagged).stdout == "conf-check\n"
    assert failed(run("--os-image-api-version", "1", "image-list")) == \
        "glancelite speaks the v2 image API only, not version 1"
    refused = failed(run("image-list", url="http://127.0.0.1:9"))
    assert refused.startswith("Unable to establish connection to http://127.0.0.1:9/v2/images")


def wait_until_reading_stdin(process, timeout=30):
    """Block until the command sits in read(0, ...) (x86-64 syscall 0) for a few polls in a
    row, so the signal hits the command and not the interpreter's start-up."""
    deadline, seen = time.monotonic() + timeout, 0
    while platform.machine() == "x86_64" and time.monotonic() < deadline and seen < 3:
        assert process.poll() is None, process.communicate()[1]
        try:
            fields = open(f"/proc/{process.pid}/syscall").read().split()
        except OSError:
            break
        seen = seen + 1 if fields[:2] == ["0", "0x0"] else 0
        time.sleep(0.05)
    if seen < 3:
        time.sleep(2)  # another architecture or no /proc/PID/syscall: a generous pause


def _interruptible():
    """A shell starting jobs in the background (as CI may) makes them ignore SIGINT, and the
    child would inherit that: give the CLI the default disposition a terminal gives it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130(tmp_path):
    process = subprocess.Popen([CLI, "image-create", "--name", "never", "--disk-format", "raw",
                                "--container-format", "bare"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=environment(tmp_path, "http://127.0.0.1:9"),
                               preexec_fn=_interruptible)
    wait_until_reading_stdin(process)  # it waits for the first bytes of image data
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)  # stdin stays open: closing it first would race the signal
    err = process.stderr.read()
    process.stdin.close()
    assert process.returncode == 130, err
    assert b"terminating glancelite client" in err


def test_tables_match_the_glance_cli(cli_once, api, server, tmp_path):
    """Byte-for-byte the same tables as python-glanceclient's for the same objects."""
    batch = uuid.uuid4().hex[:8]
    image_id = new_image(api, b"some data" * 1000, name=f"{batch}-same", visibility="shared",
                         batch=batch, description="a long description " * 6)
    api.put(f"/v2/images/{image_id}/tags/t1")
    api.post(f"/v2/images/{image_id}/members", json={"member": "m1"})
    env = {**environment(tmp_path, server), "HOME": str(tmp_path)}

    def glance(*args):
        controller, terminal = pty.openpty()
        try:
            return ok(subprocess.run([str(BIN / "glance"), *args], stdin=terminal, env=env,
                                     capture_output=True, text=True, timeout=60))
        finally:
            os.close(controller)
            os.close(terminal)

    for args in (("image-show", "--human-readable", image_id),
                 ("--verbose", "image-list", "--property-filter", f"batch={batch}"),
                 ("member-list", "--image-id", image_id)):
        assert ok(cli_once(*args)).stdout == glance(*args).stdout, args


# -- other projects (tokens) and locations ----------------------------------------------------

TOKENS = {"alice": ("alpha", "member"), "bob": ("beta", "member"), "root": ("ops", "admin")}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tokens_server(request, database_url_factory, tmp_path_factory):
    """A server with a token per project (auth_strategy = tokens), locations shown."""
    directory = tmp_path_factory.mktemp("cli-tokens")
    tokens_file = directory / "tokens.ini"
    made = {name: f"{name}-{uuid.uuid4().hex}" for name in TOKENS}
    tokens_file.write_text("".join(
        f"[{hashlib.sha256(made[name].encode()).hexdigest()}]\nuser = {name}\n"
        f"project = {project}\nroles = {roles}\n" for name, (project, roles) in TOKENS.items()))
    overrides = {"DEFAULT": {"auth_strategy": "tokens", "tokens_file": str(tokens_file),
                             "show_multiple_locations": True}}
    with running_server(directory, database_url_factory(request.param), overrides) as base:
        yield base, made


def test_other_projects_get_glance_messages(tokens_server, tmp_path):
    base, made = tokens_server
    alice, bob, root = (make_runner(base, tmp_path, made[name]) for name in ("alice", "bob", "root"))
    public = table(ok(root("image-create", "--name", "pub", "--visibility", "public")).stdout)["id"]
    assert failed(alice("image-delete", public)) == f"You are not permitted to delete the image '{public}'."
    assert failed(alice("image-update", "--name", "mine", public)) == \
        "HTTP 403 Forbidden: You do not own this image"
    assert failed(alice("image-create", "--visibility", "public")) == \
        "HTTP 403 Forbidden: You are not authorized to complete publicize_image action."

    shared = table(ok(alice("image-create", "--name", "offer", "--visibility", "shared")).stdout)
    assert shared["owner"] == "alpha"
    assert failed(bob("image-show", shared["id"])) == \
        f"HTTP 404 Not Found: No image found with ID {shared['id']}"
    ok(alice("member-create", shared["id"], "beta"))
    assert rows(ok(bob("image-list", "--visibility", "shared", "--member-status", "pending")
                   ).stdout) == [[shared["id"], "offer"]]
    assert rows(ok(bob("member-update", shared["id"], "beta", "accepted")).stdout) == \
        [[shared["id"], "beta", "accepted"]]
    assert failed(alice("member-update", shared["id"], "beta", "rejected")) == \
        f"HTTP 403 Forbidden: Not allowed to update members for image {shared['id']}."
    assert failed(bob("member-delete", shared["id"], "beta")) == \
        f"HTTP 403 Forbidden: Not allowed to delete members for image {shared['id']}."
    assert failed(make_runner(base, tmp_path, "wrong")("image-list")) == \
        "Invalid OpenStack Identity credentials."


def test_locations(tokens_server, tmp_path):
    base, made = tokens_server
    alice = make_runner(base, tmp_path, made["alice"])
    source = tmp_path / "img.raw"
    source.write_bytes(b"L" * 4096)
    image = json.loads(ok(alice("image-create", "--name", "loc", "--disk-format", "raw",
                                "--container-format", "bare", "--file", str(source), "-f",
                                "json")).stdout)
    own_url = image["locations"][0]["url"]
    extra = base.datadir / f"copy-{uuid.uuid4().hex[:6]}.img"
    extra.write_bytes(source.read_bytes())
    extra_url = f"file://{extra}"

    added = json.loads(ok(alice("location-add", image["id"], "--url", extra_url,
                                "--metadata", '{"site": "b"}', "-f", "json")).stdout)
    assert added["locations"] == [{"url": own_url, "metadata": {}},
                                              {"url": extra_url, "metadata": {"site": "b"}}]
    updated = json.loads(ok(alice("location-update", image["id"], "--url", extra_url,
                                  "--metadata", '{"site": "c"}', "-f", "json")).stdout)
    assert updated["locations"][1] == {"url": extra_url, "metadata": {"site": "c"}}
    assert failed(alice("location-delete", image["id"], "--url", "file:///nope")) == \
        "Unknown URL(s): ['file:///nope']"
    ok(alice("location-delete", image["id"], "--url", own_url))
    shown = json.loads(ok(alice("image-show", image["id"], "-f", "json")).stdout)
    assert shown["locations"] == [{"url": extra_url, "metadata": {"site": "c"}}]
    assert ok(alice("image-download", image["id"], binary=True)).stdout == source.read_bytes()
    assert failed(alice("location-add", image["id"], "--url", "file:///etc/passwd")) == (
        "HTTP 400 Bad Request: Invalid location: file:///etc/passwd is not inside a configured "
        "store.")
    assert failed(alice("location-add", image["id"], "--url", extra_url, "--metadata", "[1]")) == \
        "Metadata must be a JSON object, not '[1]'"


def test_the_cli_imports_nothing_of_the_server():
    """The CLI talks HTTP only, so it works against any Glance: no server module imported."""
    package = Path(__file__).resolve().parents[2] / "glancelite" / "cli"
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith("glancelite") or name.startswith("glancelite.cli"), \
                    (module.name, name)
