"""The compute-node fetcher (`glancelite-compute`), run as a real command against a real
glancelite-api on loopback, with real files, mounts and sockets.

The fetcher is a client: it sees only HTTP answers and files, never the database, so
these tests run on SQLite (one module-wide server); `test_direct_path_on_postgresql`
repeats the main path on PostgreSQL when GLANCELITE_TEST_DATABASE_URL is set.

Layout used throughout (everything under one temporary directory):

    export/images/        the server's filesystem_store_datadir; its metadata file says
                          {"id": "shared-store", "mountpoint": ".../export"}
    node-*/mnt            the "compute node's" mount of export/: a bind mount when this
                          runs as root and mount(8) works, else a symlink; or a copy of it,
                          when a test needs the node's view to differ from the server's
    node-*/instances      instances_path (so _base/ and locks/ live there)
"""
import contextlib
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from glancelite.compute import config, locations
from glancelite.compute.config import Filesystem
from glancelite.compute.registry import Registry
from tests.support.proxy import Proxy
from tests.support.server import ApiClient, running_server
from tests.support.transfer import MIB, make_image_file

BIN = Path(sys.executable).parent
OCTET = {"Content-Type": "application/octet-stream"}
STORE_ID = "shared-store"


def sha1(text):
    return hashlib.sha1(text.encode()).hexdigest()


def sha512_of(path):
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


# -- fixtures ------------------------------------------------------------------------------

def _overrides(export):
    metadata = export.parent / "store-metadata.json"
    metadata.write_text(json.dumps({"id": STORE_ID, "mountpoint": str(export)}))
    return {"DEFAULT": {"show_multiple_locations": True, "show_image_direct_url": True},
            "glance_store": {"filesystem_store_datadir": str(export / "images"),
                             "filesystem_store_metadata_file": str(metadata)}}


@pytest.fixture(scope="module")
def store(database_url_factory, tmp_path_factory):
    """A SQLite-backed server whose store directory is <root>/a/export/images."""
    root = tmp_path_factory.mktemp("compute")
    export = root / "a" / "export"
    (export / "images").mkdir(parents=True)
    (root / "server").mkdir()
    with running_server(root / "server", database_url_factory("sqlite"), _overrides(export)) as url:
        url.export = export
        url.datadir = export / "images"
        url.root = root
        yield url


@pytest.fixture
def owner(store):
    return ApiClient(store, project=f"p-{uuid.uuid4().hex[:8]}")


def upload_image(client, path=None, data=None, disk_format="raw", **extra):
    image = client.create_image(disk_format=disk_format, container_format="bare",
                                visibility="community", **extra)
    body = open(path, "rb") if path else data
    try:
        response = client.put(f"/v2/images/{image['id']}/file", data=body, headers=OCTET)
    finally:
        if path:
            body.close()
    assert response.status_code == 204, response.text
    return client.get(f"/v2/images/{image['id']}").json()


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "image.raw"
    make_image_file(path, 8)
    return path


@contextlib.contextmanager
def mounted(source, target):
    """`target` shows `source`: a read-only bind mount if possible, else a symlink."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode == 0:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
        try:
            yield "bind"
        finally:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        return
    target.rmdir()
    target.symlink_to(source, target_is_directory=True)
    yield "symlink"


def write_conf(node, api, mount=None, schemes="file", glance=""):
    """A nova.conf-style file for a compute node rooted at `node`."""
    node.mkdir(parents=True, exist_ok=True)
    text = (f"[DEFAULT]\ninstances_path = {node / 'instances'}\n"
            f"[glance]\napi_servers = {api}\nallowed_direct_url_schemes = {schemes}\n"
            f"num_retries = 3\ntimeout = 10\n{glance}")
    if mount is not None:
        text += (f"[image_file_url]\nfilesystems = shared\n"
                 f"[image_file_url:shared]\nid = {STORE_ID}\nmountpoint = {mount}\n")
    path = node / "nova.conf"
    path.write_text(text)
    return path


def compute(conf, *args, check=None):
    """Run glancelite-compute; returns (exit code, parsed JSON or stdout text, stderr)."""
    done = subprocess.run([str(BIN / "glancelite-compute"), "--config-file", str(conf), *args],
                          capture_output=True, text=True, timeout=120)
    output = done.stdout
    if "--json" in args and output.strip():
        output = json.loads(output)
    if check is not None:
        assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
    return done.returncode, output, done.stderr


def base_path(node, image_id):
    return node / "instances" / "_base" / sha1(image_id)


# -- the direct path -------------------------------------------------------------------------

def test_direct_path_through_a_differently_mounted_share(store, owner, image_file, tmp_path):
    image = upload_image(owner, image_file)
    assert image["locations"][0]["metadata"] == {"id": STORE_ID, "mountpoint": str(store.export)}
    mount = tmp_path / "node" / "mnt"
    with mounted(store.export, mount) as kind:
        conf = write_conf(tmp_path / "node", store, mount)
        _, result, _ = compute(conf, "fetch", image["id"], "--json", check=0)
        assert result["method"] == "direct-file", (kind, result)
        assert result["source"] == f"file://{mount}/images/{image['id']}"
        assert result["verified"] is True and result["hash_algo"] == "sha512"
        assert result["bytes"] == image["size"] and result["format"] == "raw"
        target = base_path(tmp_path / "node", image["id"])
        assert result["path"] == str(target)
        assert sha512_of(target) == image["os_hash_value"]
        assert sorted(os.listdir(target.parent)) == [target.name]       # no .part left
        assert (tmp_path / "node" / "instances" / "locks" / f"nova-{target.name}").exists()
        assert os.getxattr(target, "user.glancelite.image_id").decode() == image["id"]

        os.utime(target, (1, 1))
        _, hit, _ = compute(conf, "fetch", image["id"], "--json", check=0)
        assert hit["method"] == "cache-hit" and hit["verified"] is False
        assert target.stat().st_mtime > time.time() - 60                # touched, as nova does
        _, checked, _ = compute(conf, "fetch", image["id"], "--verify", "--json", check=0)
        assert checked["method"] == "cache-hit" and checked["verified"] is True

        code, line, _ = compute(conf, "fetch", image["id"])
        assert code == 0 and line.startswith(f"{image['id']} cache-hit ")
        if (BIN / "glancelite").exists():             # mounted on the glancelite CLI
            done = subprocess.run([str(BIN / "glancelite"), "compute", "fetch", image["id"],
                                   "--config-file", str(conf), "--json"],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["method"] == "cache-hit"


def test_direct_path_on_postgresql(make_server, image_file, tmp_path):
    export = tmp_path / "pg" / "export"
    (export / "images").mkdir(parents=True)
    url = make_server("postgresql", _overrides(export))
    image = upload_image(ApiClient(url, project="pg"), image_file)
    conf = write_conf(tmp_path / "node", url, export)
    _, result, _ = compute(conf, "fetch", image["id"], "--json", check=0)
    assert result["method"] == "direct-file" and result["verified"] is True


def test_without_direct_schemes_it_downloads(store, owner, image_file, tmp_path):
    image = upload_image(owner, image_file)
    conf = write_conf(tmp_path / "node", store, store.export, schemes="")
    _, result, _ = compute(conf, "fetch", image["id"], "--json", check=0)
    assert result["method"] == "http" and result["skipped"] == []
    assert result["source"] == f"{store}/v2/images/{image['id']}/file"
    assert sha512_of(result["path"]) == image["os_hash_value"]


@pytest.mark.parametrize("damage, reason", [("flip", "sha512 mismatch"), ("truncate", "bytes")])
def test_bad_file_on_the_share_falls_back_to_http(store, owner, image_file, tmp_path, damage,
                                                  reason):
    """The node's view of the share differs from the server's (a stale or damaged copy):
    the direct copy fails its check and the verified HTTP download is used instead. The
    server's own file is intact, so HTTP is good; a store file bad for everyone would fail
    both, which test_all_sources_bad covers."""
    image = upload_image(owner, image_file)
    mount = tmp_path / "node" / "mnt"
    shutil.copytree(store.export, mount)
    copy = mount / "images" / image["id"]
    with open(copy, "r+b") as handle:
        if damage == "flip":
            handle.seek(image["size"] // 2)
            byte = handle.read(1)
            handle.seek(image["size"] // 2)
            handle.write(bytes([byte[0] ^ 0xFF]))
        else:
            handle.truncate(image["size"] - 1)
    conf = write_conf(tmp_path / "node", store, mount)
    _, result, _ = compute(conf, "fetch", image["id"], "--json", check=0)
    assert result["method"] == "http" and result["verified"] is True
    assert [skip["url"] for skip in result["skipped"]] == [image["locations"][0]["url"]]
    assert reason in result["skipped"][0]["reason"]
    target = Path(result["path"])
    assert sha512_of(target) == image["os_hash_value"]
    assert sorted(os.listdir(target.parent)) == [target.name]


def test_all_sources_bad(store, owner, tmp_path):
    """The store's own file is damaged after upload: the direct copy and the download both
    fail verification; exit 3 and nothing is left in _base."""
    image = upload_image(owner, data=os.urandom(MIB))
    stored = store.datadir / image["id"]
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    conf = write_conf(tmp_path / "node", store, store.export)
    code, result, _ = compute(conf, "fetch", image["id"], "--json")
    assert code == 3, result
    assert [skip["reason"] for skip in result["skipped"]] == ["sha512 mismatch"] * 2
    assert os.listdir(tmp_path / "node" / "instances" / "_base") == []
    code, result, _ = compute(conf, "fetch", image["id"], "--check-md5", "--json")
    assert code == 3
    assert [skip["reason"] for skip in result["skipped"]] == ["sha512, md5 mismatch"] * 2
    # --trust-store skips hashing of direct copies: it takes the damaged file, and says so
    _, result, _ = compute(conf, "fetch", image["id"], "--trust-store", "--json", check=0)
    assert result["method"] == "direct-file" and result["verified"] is False
    # ... which --verify then catches: removed, fetched again, and every source is bad
    code, result, _ = compute(conf, "fetch", image["id"], "--verify", "--json")
    assert code == 3 and "removed" in result["skipped"][0]["reason"]
    assert os.listdir(tmp_path / "node" / "instances" / "_base") == []


@pytest.mark.skipif(not shutil.which("fallocate"), reason="fallocate(1) is not installed")
def test_sparse_images_stay_sparse(store, owner, tmp_path):
    """Holes in the store file stay holes in a direct copy; zero blocks of a download
    become holes. The hash covers the zeros either way."""
    data = bytes(8 * MIB) + os.urandom(MIB) + bytes(4 * MIB)
    image = upload_image(owner, data=data)
    subprocess.run(["fallocate", "--dig-holes", str(store.datadir / image["id"])], check=True)
    assert (store.datadir / image["id"]).stat().st_blocks * 512 < 2 * MIB
    for schemes, method in (("file", "direct-file"), ("", "http")):
        node = tmp_path / (method or "direct")
        conf = write_conf(node, store, store.export, schemes=schemes)
        _, result, _ = compute(conf, "fetch", image["id"], "--json", check=0)
        assert result["method"] == method and result["verified"] is True
        target = Path(result["path"])
        assert target.stat().st_size == len(data)
        assert target.stat().st_blocks * 512 < 6 * MIB, method


# -- locations that must not be followed -----------------------------------------------------

def add_location(client, image_id, url, metadata, position="0"):
    response = client.patch(f"/v2/images/{image_id}", [
        {"op": "add", "path": f"/locations/{position}", "value": {"url": url, "metadata": metadata}}])
    assert response.status_code == 200, response.text


def test_locations_leading_out_of_the_mount_are_refused(store, owner, tmp_path):
    """The server only accepts canonical URLs of files in its store whose bytes hash to
    the image, but the node's view of the share may still lead elsewhere: here a file on
    the node's side is a symlink to a copy of the image's bytes outside the mount, so only
    the fetcher's containment check stands between it and a "direct" copy. Spellings the
    server refuses (`..`, `//`) are covered by the mapping tests below."""
    data = os.urandom(MIB)
    image = upload_image(owner, data=data)
    image_id, datadir, export = image["id"], store.datadir, store.export
    node = store.root / f"b-{uuid.uuid4().hex[:6]}"
    mount = node / "mnt"
    shutil.copytree(export / "images", mount / "images",
                    ignore=lambda _, names: [n for n in names if n != image_id])
    outside = tmp_path / "outside.img"
    outside.write_bytes(data)
    trap = f"trap-{uuid.uuid4().hex[:6]}"
    (datadir / trap).write_bytes(data)
    (mount / "images" / trap).symlink_to(outside)
    same = {"id": STORE_ID, "mountpoint": str(export)}
    for refused in (f"file://{datadir}/../images/{image_id}", f"file://{datadir}//{image_id}"):
        response = owner.patch(f"/v2/images/{image_id}", [
            {"op": "add", "path": "/locations/0", "value": {"url": refused, "metadata": same}}])
        assert response.status_code == 400, refused
    add_location(owner, image_id, f"file://{datadir}/{trap}", same)
    conf = write_conf(node, store, mount)
    _, result, _ = compute(conf, "fetch", image_id, "--json", check=0)
    assert result["method"] == "direct-file"
    assert result["source"] == f"file://{mount}/images/{image_id}"
    reasons = {skip["url"]: skip["reason"] for skip in result["skipped"]}
    assert "outside the mount" in reasons[f"file://{datadir}/{trap}"]


@pytest.mark.parametrize("url, metadata, reason", [
    ("file:///srv/images2/x", {"id": "s", "mountpoint": "/srv/images"}, "not under"),
    ("file:///srv/images/../etc/passwd", {"id": "s", "mountpoint": "/srv/images"}, "'..'"),
    ("file:///srv/images/%2E%2E/etc/passwd", {"id": "s", "mountpoint": "/srv/images"}, "'..'"),
    ("file:///srv/images/a%00b", {"id": "s", "mountpoint": "/srv/images"}, "NUL"),
    ("file://otherhost/srv/images/x", {"id": "s", "mountpoint": "/srv/images"}, "host"),
    ("file:///srv/images/x", {"id": "s", "mountpoint": "/srv/../"}, "'..'"),
    ("file:///srv/images/x", {"id": "s", "mountpoint": "srv/images"}, "absolute"),
    ("file:///srv/images/x", {"mountpoint": "/srv/images"}, "lacks"),
    ("file:///srv/images/x", {"id": "t", "mountpoint": "/srv/images"}, "no [image_file_url"),
    ("file:///srv/images", {"id": "s", "mountpoint": "/srv/images"}, "not under"),
    ("http://127.0.0.1/x", {"id": "s", "mountpoint": "/srv/images"}, "scheme"),
    ("rbd://fsid/pool/image/snap", {}, "scheme"),
])
def test_location_mapping_refusals(url, metadata, reason, tmp_path):
    mount = tmp_path / "mnt"
    mount.mkdir()
    filesystems = [Filesystem("shared", "s", str(mount))]
    with pytest.raises(locations.Refused, match=reason.replace("[", r"\[")):
        locations.map_location(url, metadata, filesystems, ["file", "filesystem"])


def test_location_mapping_legacy_needs_the_flag(tmp_path):
    with pytest.raises(locations.Refused, match="allow-legacy-paths"):
        locations.map_location(f"file://{tmp_path}/x", {}, [], ["file"])
    mapped = locations.map_location(f"file://{tmp_path}/x", {}, [], ["file"], allow_legacy=True)
    assert mapped.path == str(tmp_path / "x")


# -- HTTP: resume, one download for two fetchers ---------------------------------------------

def test_dropped_download_resumes_with_range(store, owner, image_file, tmp_path):
    image = upload_image(owner, image_file)
    proxy = Proxy(("127.0.0.1", int(store.rsplit(":", 1)[1])), drop_after=3 * MIB + 1234)
    try:
        conf = write_conf(tmp_path / "node", proxy.url, schemes="")
        _, result, _ = compute(conf, "fetch", image["id"], "--json", check=0)
    finally:
        proxy.close()
    assert result["method"] == "http" and result["resumes"] == 1 and result["verified"]
    assert sha512_of(result["path"]) == image["os_hash_value"]
    assert proxy.dropped == 1
    downloads = [head for head in proxy.request_lines() if "/file HTTP" in head]
    assert len(downloads) == 2 and "Range:" not in downloads[0]
    resumed = {line.split(": ", 1)[0].lower(): line.split(": ", 1)[1]
               for line in downloads[1].split("\r\n")[1:]}
    offset = int(resumed["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < offset <= 3 * MIB + 1234
    assert resumed["if-range"] == f'"{image["os_hash_value"]}"'


def test_two_fetchers_one_download(store, owner, tmp_path):
    image = upload_image(owner, data=os.urandom(12 * MIB))
    proxy = Proxy(("127.0.0.1", int(store.rsplit(":", 1)[1])), rate=8 * MIB)   # ~1.5 s
    try:
        conf = write_conf(tmp_path / "node", proxy.url, schemes="")
        command = [str(BIN / "glancelite-compute"), "--config-file", str(conf), "fetch",
                   image["id"], "--json"]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
        outputs = [run.communicate(timeout=60) for run in runs]
    finally:
        proxy.close()
    assert [run.returncode for run in runs] == [0, 0], outputs
    results = sorted((json.loads(out) for out, _ in outputs), key=lambda r: r["method"])
    assert [r["method"] for r in results] == ["cache-hit", "http"]
    assert results[0]["lock_wait_seconds"] > 0.2           # it waited for the download
    assert len([head for head in proxy.request_lines() if "/file HTTP" in head]) == 1
    assert sha512_of(results[1]["path"]) == image["os_hash_value"]


# -- cache list / prune / verify / precache --------------------------------------------------

def qcow2_overlay(path, backing):
    """A qcow2 disk whose backing file is `backing` (qemu-img when present, else by hand)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("qemu-img"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(backing),
                        str(path), "1M"], check=True)
        return
    name = str(backing).encode()
    header = b"QFI\xfb" + struct.pack(">IQI", 2, 72, len(name)) + bytes(72 - 20)
    path.write_bytes(header + name)


def test_cache_prune_by_age_and_size(store, owner, tmp_path):
    node = tmp_path / "node"
    conf = write_conf(node, store, store.export)
    images = {name: upload_image(owner, data=os.urandom(MIB), name=name)
              for name in ("old", "in-use", "booted", "lru", "recent")}
    for image in images.values():
        compute(conf, "fetch", image["id"], check=0)
    path = {name: base_path(node, image["id"]) for name, image in images.items()}
    now = time.time()
    day = 86400
    ages = {"old": 2 * day, "in-use": 2 * day, "booted": 2 * day, "lru": 600, "recent": 60}
    for name, age in ages.items():
        os.utime(path[name], (now - age, now - age))
    resized = path["recent"].with_name(path["recent"].name + "_10737418240")
    resized.write_bytes(b"r" * 4096)
    os.utime(resized, (now - 2 * 3600, now - 2 * 3600))
    abandoned = path["lru"].with_name(path["lru"].name + ".part")
    abandoned.write_bytes(b"half")
    qcow2_overlay(node / "instances" / str(uuid.uuid4()) / "disk", path["in-use"])
    xml = node / "instances" / str(uuid.uuid4()) / "libvirt.xml"
    xml.parent.mkdir()
    xml.write_text(f'<domain><metadata><nova:instance><nova:root type="image" '
                   f'uuid="{images["booted"]["id"]}"/></nova:instance></metadata></domain>')

    _, listing, _ = compute(conf, "cache", "list", "--json", check=0)
    entries = {entry["name"]: entry for entry in listing["entries"]}
    assert {entries[path[n].name]["image_id"] for n in images} == \
        {image["id"] for image in images.values()}
    assert [n for n in images if entries[path[n].name]["in_use"]] == ["in-use", "booted"]
    assert entries[resized.name]["kind"] == "resized" and entries[resized.name]["in_use"] is False
    _, text, _ = compute(conf, "cache", "list", check=0)
    assert images["old"]["id"] in text and "IN_USE" in text

    _, dry, _ = compute(conf, "cache", "prune", "--dry-run", "--json", check=0)
    assert path["old"].exists() and len(dry["removed"]) == 3

    _, pruned, _ = compute(conf, "cache", "prune", "--json", check=0)
    assert sorted(item["name"] for item in pruned["removed"]) == \
        sorted([path["old"].name, resized.name, abandoned.name])
    assert not path["old"].exists() and not resized.exists() and not abandoned.exists()
    assert all(path[n].exists() for n in ("in-use", "booted", "lru", "recent"))

    # 4 x 1 MiB left, two of them in use: a 3.5 MiB cap removes the least recently used
    # unused file (lru), not the in-use ones although they are older.
    _, capped, _ = compute(conf, "cache", "prune", "--max-size", "3.5M", "--json", check=0)
    assert [item["name"] for item in capped["removed"]] == [path["lru"].name]
    assert "least recently used" in capped["removed"][0]["reason"]
    assert not path["lru"].exists() and path["recent"].exists()
    assert capped["warnings"] == []
    # Everything left in use: the cap cannot be met, and prune says so.
    _, capped, err = compute(conf, "cache", "prune", "--max-size", "1M", "--in-use",
                             images["recent"]["id"], "--json", check=0)
    assert capped["removed"] == [] and "in use" in err
    assert all(path[n].exists() for n in ("in-use", "booted", "recent"))


def test_cache_verify_and_refetch(store, owner, tmp_path):
    node = tmp_path / "node"
    conf = write_conf(node, store, store.export)
    good = upload_image(owner, data=os.urandom(MIB))
    bad = upload_image(owner, data=os.urandom(MIB))
    for image in (good, bad):
        compute(conf, "fetch", image["id"], check=0)
    damaged = base_path(node, bad["id"])
    with open(damaged, "r+b") as handle:
        handle.seek(10)
        handle.write(b"\0\0\0")
    code, report, _ = compute(conf, "cache", "verify", "--json")
    assert code == 3
    status = {check["image_id"]: check["status"] for check in report["checks"]}
    assert status == {good["id"]: "ok", bad["id"]: "MISMATCH"}

    _, refetched, _ = compute(conf, "fetch", bad["id"], "--verify", "--json", check=0)
    assert refetched["method"] == "direct-file"
    assert "removed" in refetched["skipped"][0]["reason"]
    assert sha512_of(damaged) == bad["os_hash_value"]
    compute(conf, "cache", "verify", "--json", check=0)

    damaged.write_bytes(b"x" * MIB)
    code, report, _ = compute(conf, "cache", "verify", bad["id"], "--remove-bad", "--json")
    assert code == 3 and "removed" in report["checks"][0]["detail"]
    assert not damaged.exists()


def test_precache(store, owner, tmp_path):
    conf = write_conf(tmp_path / "node", store, store.export)
    ids = [upload_image(owner, data=os.urandom(MIB // 2))["id"] for _ in range(3)]
    missing = str(uuid.uuid4())
    code, report, _ = compute(conf, "cache", "precache", *ids, missing, ids[0],
                              "--concurrency", "3", "--json")
    assert code == 4
    assert [(item["image_id"], item["status"]) for item in report["images"]] == \
        [(ids[0], "cached"), (ids[1], "cached"), (ids[2], "cached"), (missing, "error")]
    _, report, _ = compute(conf, "cache", "precache", *ids, "--json", check=0)
    assert {item["status"] for item in report["images"]} == {"existing"}


# -- exit codes ------------------------------------------------------------------------------

def test_exit_codes(store, owner, tmp_path):
    conf = write_conf(tmp_path / "node", store, store.export)
    assert compute(conf, "fetch", str(uuid.uuid4()))[0] == 4
    queued = owner.create_image(disk_format="raw", container_format="bare")
    code, _, err = compute(conf, "fetch", queued["id"])
    assert code == 4 and "not ready" in err
    image = upload_image(owner, data=b"data")
    assert owner.post(f"/v2/images/{image['id']}/actions/deactivate").status_code == 204
    code, _, err = compute(conf, "fetch", image["id"])
    assert code == 5 and "deactivated" in err
    other = ApiClient(store, project="another-project")
    private = other.create_image(disk_format="raw", container_format="bare")
    nobody = write_conf(tmp_path / "nobody", store, glance="project_id = outsider\n")
    assert compute(nobody, "fetch", private["id"])[0] == 4        # invisible: 404
    closed = write_conf(tmp_path / "closed", "http://127.0.0.1:9", schemes="")
    code, _, err = compute(closed, "fetch", image["id"])
    assert code == 6 and "unreachable" in err
    broken = tmp_path / "broken.conf"
    broken.write_text("[image_file_url]\nfilesystems = nowhere\n")
    code, _, err = compute(broken, "fetch", image["id"])
    assert code == 2 and "[image_file_url:nowhere]" in err
    assert compute(conf, "fetch")[0] == 2


# -- format inspection -----------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img is not installed")
def test_format_inspection_and_raw_conversion(store, owner, tmp_path):
    conf = write_conf(tmp_path / "node", store, store.export)
    plain = tmp_path / "plain.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(plain), "4M"], check=True)
    image = upload_image(owner, plain, disk_format="qcow2")
    _, result, _ = compute(conf, "fetch", image["id"], "--json", check=0)
    assert result["format"] == "qcow2" and result["converted"] is True
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-f", "raw",
                                      result["path"]], capture_output=True, text=True).stdout)
    assert info["virtual-size"] == 4 * MIB and Path(result["path"]).read_bytes()[:4] != b"QFI\xfb"

    overlay = tmp_path / "overlay.qcow2"
    qcow2_overlay(overlay, plain)
    image = upload_image(owner, overlay, disk_format="qcow2")
    code, _, err = compute(conf, "fetch", image["id"])
    assert code == 7 and "backing file" in err
    assert os.listdir(tmp_path / "node" / "instances" / "_base") == [Path(result["path"]).name]

    disguised = upload_image(owner, plain, disk_format="raw")
    code, _, err = compute(conf, "fetch", disguised["id"])
    assert code == 7 and "'raw' but the data is 'qcow2'" in err


# -- credentials stay with the api server ----------------------------------------------------

class _Recorder(BaseHTTPRequestHandler):
    """Answers as an api server (or, for /blob, as a third-party host) and keeps headers."""
    data = b"hello, compute node"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, dict(self.headers)))
        if self.path.startswith("/v2/images/") and self.path.endswith("/file"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.blob_port}/blob?sig=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/v2/images/"):
            image_id = self.path.rsplit("/", 1)[1]
            body = json.dumps({"id": image_id, "status": "active", "size": len(self.data),
                               "disk_format": "raw", "os_hash_algo": "sha512",
                               "os_hash_value": hashlib.sha512(self.data).hexdigest(),
                               "checksum": hashlib.md5(self.data).hexdigest()}).encode()
            self._send(200, body, "application/json")
        elif self.path.startswith("/blob"):
            self._send(200, self.data, "application/octet-stream")
        else:
            self._send(404, b"{}", "application/json")

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_token_is_not_sent_to_a_redirect_target(tmp_path):
    servers = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    api, blob = servers
    api.blob_port = blob.server_address[1]
    try:
        conf = write_conf(tmp_path / "node", f"http://127.0.0.1:{api.server_address[1]}",
                          schemes="", glance="token = s3cr3t\n")
        _, result, _ = compute(conf, "fetch", str(uuid.uuid4()), "--json", check=0)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert result["method"] == "http" and result["verified"]
    assert all(headers.get("X-Auth-Token") == "s3cr3t" for _, headers in api.seen)
    assert [path for path, _ in blob.seen] == ["/blob?sig=1"]
    assert result["source"] == f"http://127.0.0.1:{blob.server_address[1]}/blob"
    assert "X-Auth-Token" not in blob.seen[0][1]


class _Restarting(_Recorder):
    """Serves the data itself: the first answer breaks off halfway, later ones ignore
    Range and send everything with 200 (what an If-Range mismatch looks like)."""
    data = os.urandom(3 * MIB)

    def do_GET(self):
        if not self.path.endswith("/file"):
            return super().do_GET()
        self.server.seen.append((self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.data)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        if len(self.server.seen) == 2:       # metadata, then the first download
            self.wfile.write(self.data[:MIB])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(self.data)


def test_resume_answered_with_the_whole_image_starts_over(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Restarting)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conf = write_conf(tmp_path / "node", f"http://127.0.0.1:{server.server_address[1]}",
                          schemes="")
        _, result, _ = compute(conf, "fetch", str(uuid.uuid4()), "--json", check=0)
    finally:
        server.shutdown()
        server.server_close()
    assert result["method"] == "http" and result["resumes"] == 1 and result["verified"]
    assert Path(result["path"]).read_bytes() == _Restarting.data
    retry = server.seen[2][1]
    assert retry["Range"] == f"bytes={MIB}-" and retry["If-Range"] == '"v1"'


def test_config_reads_a_real_nova_conf(tmp_path, monkeypatch):
    """nova.conf as it is: foreign options, repeated keys, $references, deprecated names."""
    monkeypatch.delenv("OS_AUTH_TOKEN", raising=False)
    path = tmp_path / "nova.conf"
    path.write_text(
        "[DEFAULT]\nmy_ip = 10.0.0.5\nstate_path = /var/lib/nova\ncompute_driver = libvirt.LibvirtDriver\n"
        "remove_unused_original_minimum_age_seconds = 7200\n"
        "[pci]\npassthrough_whitelist = {\"vendor_id\": \"8086\"}\n"
        "passthrough_whitelist = {\"vendor_id\": \"10de\"}\n"
        "[glance]\napi_servers = glance-a:9292, https://glance-b/image/v2\n"
        "allowed_direct_url_schemes = file\nauth_type = none\n"
        "[image_file_url]\nfilesystems = a, b\n"
        "[image_file_url:a]\nid = share-a\nmountpoint = /mnt/a\n"
        "[image_file_url:b]\nid = share-b\nmountpoint = /mnt/b\n"
        "[image_cache]\nsubdirectory_name = _base_$my_ip\nmax_size = 1.5G\n")
    conf = config.load([str(path)])
    assert conf.instances_path == "/var/lib/nova/instances"
    assert conf.base_dir == "/var/lib/nova/instances/_base_10.0.0.5"
    assert conf.cache["remove_unused_original_minimum_age_seconds"] == 7200
    assert conf.cache["max_size"] == 3 << 29
    assert [fs.mountpoint for fs in conf.filesystems] == ["/mnt/a", "/mnt/b"]
    assert conf.token is None
    origins = [str(origin) for origin in Registry(conf.api_servers).origins]
    assert origins == ["http://glance-a:9292", "https://glance-b:443/image"]
    broken = tmp_path / "broken.conf"
    broken.write_text("[image_file_url]\nfilesystems = a\n[image_file_url:a]\nid = x\n")
    with pytest.raises(config.ConfigError, match="needs mountpoint"):
        config.load([str(broken)])
