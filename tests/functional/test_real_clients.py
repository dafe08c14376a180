"""The real `glance` CLI (python-glanceclient) and openstacksdk against our server, unchanged.

Both talk to glancelite exactly as to Glance without Keystone: glanceclient with an image
URL and a token, openstacksdk with auth_type none. No identity headers are sent, so the
server runs them as the unauthenticated admin context with `noauth_project` as project.
"""
import os
import pty
import re
import subprocess
import uuid

import pytest

from tests.support.server import BIN, running_server

PROJECT = "cli-project"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cli_server(request, database_url_factory, tmp_path_factory):
    url = database_url_factory(request.param)
    overrides = {"DEFAULT": {"noauth_project": PROJECT}}
    with running_server(tmp_path_factory.mktemp("cli"), url, overrides) as base_url:
        yield base_url


@pytest.fixture
def glance(cli_server, tmp_path):
    """Run `glance ARGS` with a throwaway HOME and a terminal as stdin.

    glanceclient treats a non-terminal stdin as image data to upload; a pty stands in for the
    operator's terminal so metadata-only commands behave as they do interactively.
    """
    env = {**os.environ, "HOME": str(tmp_path), "OS_IMAGE_URL": cli_server, "OS_AUTH_TOKEN": "x"}
    for key in ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_CLOUD"):
        env.pop(key, None)

    def run(*args):
        controller, terminal = pty.openpty()
        try:
            return subprocess.run([str(BIN / "glance"), *args], stdin=terminal,
                                  capture_output=True, text=True, env=env, timeout=60)
        finally:
            os.close(controller)
            os.close(terminal)
    return run


def table(output):
    """Property/Value table rows of glanceclient's output as a dict."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and line.startswith("|"):
            rows[cells[0]] = cells[1]
    return rows


def list_rows(output):
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in output.splitlines() if line.startswith("|")][1:]


def test_glance_cli_metadata_round_trip(glance):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    created = glance("image-create", "--name", name, "--disk-format", "qcow2",
                     "--container-format", "bare", "--visibility", "shared",
                     "--property", "hw_firmware_type=uefi", "--property", "foo=bar", "--min-ram", "256")
    assert created.returncode == 0, created.stderr
    image = table(created.stdout)
    image_id = image["id"]
    assert image["name"] == name and image["status"] == "queued"
    assert image["hw_firmware_type"] == "uefi" and image["min_ram"] == "256"
    assert image["owner"] == PROJECT

    shown = glance("image-show", image_id)
    assert shown.returncode == 0 and table(shown.stdout)["foo"] == "bar"

    updated = glance("image-update", "--property", "os_distro=cirros",
                     "--remove-property", "hw_firmware_type", "--min-ram", "512", image_id)
    assert updated.returncode == 0, updated.stderr
    after = table(updated.stdout)
    assert after["os_distro"] == "cirros" and after["min_ram"] == "512"
    assert "hw_firmware_type" not in after

    tagged = glance("image-tag-update", image_id, "gold")
    assert tagged.returncode == 0 and "gold" in tagged.stdout
    assert glance("image-tag-delete", image_id, "gold").returncode == 0
    assert "gold" not in table(glance("image-show", image_id).stdout)["tags"]

    listed = glance("image-list", "--property-filter", f"name={name}", "--sort-key", "name",
                    "--sort-dir", "asc")
    assert listed.returncode == 0, listed.stderr
    assert [row[0] for row in list_rows(listed.stdout)] == [image_id]

    deleted = glance("image-delete", image_id)
    assert deleted.returncode == 0, deleted.stderr
    missing = glance("image-show", image_id)
    assert missing.returncode == 1
    assert f"HTTP 404 Not Found: No image found with ID {image_id}" in missing.stderr


def test_glance_cli_list_filters_and_sort(glance):
    stamp = uuid.uuid4().hex[:6]
    ids = {}
    for name, disk in (("b", "raw"), ("a", "qcow2"), ("c", "raw")):
        out = glance("image-create", "--name", f"{stamp}-{name}", "--disk-format", disk,
                     "--container-format", "bare", "--property", f"batch={stamp}")
        ids[name] = table(out.stdout)["id"]
    listed = glance("image-list", "--property-filter", f"batch={stamp}", "--sort", "name:asc")
    assert [row[1] for row in list_rows(listed.stdout)] == [f"{stamp}-a", f"{stamp}-b", f"{stamp}-c"]
    raw_only = glance("image-list", "--property-filter", f"batch={stamp}",
                      "--property-filter", "disk_format=raw", "--sort-key", "name", "--sort-dir", "desc")
    assert [row[0] for row in list_rows(raw_only.stdout)] == [ids["c"], ids["b"]]
    paged = glance("image-list", "--property-filter", f"batch={stamp}", "--page-size", "1",
                   "--sort", "name:asc")
    assert len(list_rows(paged.stdout)) == 3


def test_glance_cli_members(glance):
    out = glance("image-create", "--name", "shared-img", "--visibility", "shared")
    image_id = table(out.stdout)["id"]
    created = glance("member-create", image_id, PROJECT)
    assert created.returncode == 0, created.stderr
    assert list_rows(created.stdout) == [[image_id, PROJECT, "pending"]]
    listed = glance("member-list", "--image-id", image_id)
    assert list_rows(listed.stdout) == [[image_id, PROJECT, "pending"]]
    accepted = glance("member-update", image_id, PROJECT, "accepted")
    assert accepted.returncode == 0, accepted.stderr
    assert list_rows(accepted.stdout) == [[image_id, PROJECT, "accepted"]]


def test_glance_cli_usage_error_and_missing_delete(glance):
    usage = glance("image-show")
    assert usage.returncode == 2
    missing = str(uuid.uuid4())
    deleted = glance("image-delete", missing)
    assert deleted.returncode == 1
    assert re.search(f"No image with an ID of '{missing}' exists", deleted.stderr)


def test_openstacksdk_metadata_round_trip(cli_server):
    import openstack
    conn = openstack.connect(auth_type="none", image_endpoint_override=cli_server,
                             load_envvars=False, load_yaml_config=False)
    try:
        name = f"sdk-{uuid.uuid4().hex[:6]}"
        image = conn.image.create_image(name=name, disk_format="raw", container_format="bare",
                                        allow_duplicates=True, properties={"os_distro": "cirros"})
        assert image.name == name and image.status == "queued"
        assert conn.image.get_image(image.id).os_distro == "cirros"
        assert image.id in [i.id for i in conn.image.images(name=name)]
        updated = conn.image.update_image(image.id, min_ram=128, protected=False, os_distro="debian")
        assert updated.min_ram == 128
        assert conn.image.get_image(image.id).os_distro == "debian"
        conn.image.delete_image(image.id)
        assert conn.image.find_image(image.id) is None
    finally:
        conn.close()


def test_glance_cli_data_round_trip(glance, cli_server, tmp_path):
    source = tmp_path / "cirros.raw"
    source.write_bytes(bytes(range(256)) * 12289)
    created = glance("image-create", "--name", "with-data", "--disk-format", "raw",
                     "--container-format", "bare", "--file", str(source), "--progress")
    assert created.returncode == 0, created.stderr
    image = table(created.stdout)
    assert image["status"] == "active" and image["size"] == str(source.stat().st_size)

    target = tmp_path / "out.raw"
    downloaded = glance("image-download", "--file", str(target), image["id"])
    assert downloaded.returncode == 0, downloaded.stderr
    assert target.read_bytes() == source.read_bytes()

    queued = table(glance("image-create", "--name", "later", "--disk-format", "raw",
                          "--container-format", "bare").stdout)
    uploaded = glance("image-upload", "--file", str(source), queued["id"])
    assert uploaded.returncode == 0, uploaded.stderr
    assert table(glance("image-show", queued["id"]).stdout)["status"] == "active"

    assert glance("image-deactivate", image["id"]).returncode == 0
    assert table(glance("image-show", image["id"]).stdout)["status"] == "deactivated"
    assert glance("image-reactivate", image["id"]).returncode == 0
    assert table(glance("image-show", image["id"]).stdout)["status"] == "active"


def test_glance_cli_detects_a_corrupted_store_file(glance, cli_server, tmp_path):
    source = tmp_path / "img.raw"
    source.write_bytes(b"A" * 100000)
    image = table(glance("image-create", "--name", "to-corrupt", "--disk-format", "raw",
                         "--container-format", "bare", "--file", str(source)).stdout)
    stored = cli_server.datadir / image["id"]
    data = bytearray(stored.read_bytes())
    data[500] ^= 0xFF
    stored.write_bytes(bytes(data))
    result = glance("image-download", "--file", str(tmp_path / "bad.raw"), image["id"])
    assert result.returncode == 1
    assert "Corrupt image download" in result.stderr


def test_openstacksdk_upload_and_verified_download(cli_server, tmp_path):
    import openstack
    source = tmp_path / "sdk.raw"
    source.write_bytes(b"sdk-data" * 50000)
    conn = openstack.connect(auth_type="none", image_endpoint_override=cli_server,
                             load_envvars=False, load_yaml_config=False)
    try:
        image = conn.image.create_image(name="sdk-data", filename=str(source), disk_format="raw",
                                        container_format="bare", allow_duplicates=True)
        image = conn.image.get_image(image.id)
        assert image.status == "active" and image.size == source.stat().st_size
        target = tmp_path / "sdk-out.raw"
        conn.image.download_image(image, output=str(target))
        assert target.read_bytes() == source.read_bytes()
        conn.image.delete_image(image.id)
    finally:
        conn.close()
