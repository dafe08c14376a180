"""Upload and download of image data over real HTTP, on each database with each store:
the filesystem and S3 (moto's server on loopback, reached with boto3 over HTTP)."""
import hashlib
import http.client
import json
import os
import socket
import threading
import time
from urllib.parse import urlparse

import pytest

from tests.support.s3 import blobs_of
from tests.support.transfer import MIB, PeakRss, file_chunks, make_image_file, send_partial_upload

OCTET = {"Content-Type": "application/octet-stream"}
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture(scope="session")
def server(data_server):
    """Every test here runs against each database × store server (conftest data_server)."""
    return data_server


def new_image(client, **extra):
    return client.create_image(disk_format="raw", container_format="bare", **extra)


def upload(client, image_id, data, **headers):
    return client.put(f"/v2/images/{image_id}/file", data=data, headers={**OCTET, **headers})


def wait_for_status(client, image_id, wanted, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/v2/images/{image_id}").json()["status"]
        if status == wanted:
            return status
        time.sleep(0.05)
    return status


def test_small_upload_sets_hashes_and_download_headers(project_client):
    client = project_client()
    image = new_image(client)
    data = b"ZZZZZ"
    response = upload(client, image["id"], data)
    assert response.status_code == 204, response.text
    shown = client.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active" and shown["size"] == 5
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["virtual_size"] == 5
    got = client.get(f"/v2/images/{image['id']}/file")
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-MD5"] == shown["checksum"]
    assert got.headers["Content-Length"] == "5"
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["ETag"] == f'"{shown["os_hash_value"]}"'


def test_empty_upload_makes_an_active_zero_byte_image(project_client):
    client = project_client()
    image = new_image(client)
    assert upload(client, image["id"], b"").status_code == 204
    shown = client.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["checksum"]) == ("active", 0, EMPTY_MD5)
    assert shown["virtual_size"] is None


def test_qcow2_virtual_size_comes_from_its_header(project_client):
    client = project_client()
    image = client.create_image(disk_format="qcow2", container_format="bare")
    header = b"QFI\xfb" + (3).to_bytes(4, "big") + bytes(16) + (128 * MIB).to_bytes(8, "big")
    assert upload(client, image["id"], header + bytes(1000)).status_code == 204
    assert client.get(f"/v2/images/{image['id']}").json()["virtual_size"] == 128 * MIB


@pytest.fixture(scope="module")
def big_image(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "image.raw"
    md5, sha512 = make_image_file(path, 200)
    return path, md5, sha512


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_200_mib_round_trip_is_byte_exact_with_bounded_memory(server, project_client, big_image,
                                                              framing):
    path, md5, sha512 = big_image
    client = project_client()
    image = new_image(client)
    body = open(path, "rb") if framing == "content-length" else file_chunks(path)
    headers = {"x-openstack-image-size": str(200 * MIB)}
    with PeakRss(server.pgid) as upload_memory:
        response = upload(client, image["id"], body, **headers)
    assert response.status_code == 204, response.text
    shown = client.get(f"/v2/images/{image['id']}").json()
    assert (shown["size"], shown["checksum"], shown["os_hash_value"]) == (200 * MIB, md5, sha512)
    downloaded = hashlib.sha512()
    with PeakRss(server.pgid) as download_memory:
        with client.get(f"/v2/images/{image['id']}/file", stream=True) as got:
            assert got.status_code == 200
            for chunk in got.iter_content(MIB):
                downloaded.update(chunk)
    assert downloaded.hexdigest() == sha512
    assert upload_memory.growth_mib < 64, upload_memory.peak
    assert download_memory.growth_mib < 64, download_memory.peak


def test_dropped_connection_leaves_image_queued_and_no_bytes(server, project_client):
    client = project_client()
    image = new_image(client)
    send_partial_upload(server, image["id"], announced=10 * MIB, sent=3 * MIB)
    assert wait_for_status(client, image["id"], "queued") == "queued"
    shown = client.get(f"/v2/images/{image['id']}").json()
    assert shown["size"] is None and shown["checksum"] is None
    assert not blobs_of(server, image["id"])
    assert upload(client, image["id"], b"again").status_code == 204


def test_two_uploads_racing_have_exactly_one_winner(server, project_client):
    client = project_client()
    image = new_image(client)
    start = threading.Barrier(2)
    results = []

    def slow_body(tag):
        start.wait()
        for _ in range(20):
            time.sleep(0.02)
            yield tag * 1024

    def run(tag):
        results.append(upload(client.__class__(client.base_url, client.project), image["id"],
                              slow_body(tag)).status_code)

    threads = [threading.Thread(target=run, args=(tag,)) for tag in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [204, 409]
    shown = client.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active" and shown["size"] == 20 * 1024
    assert blobs_of(server, image["id"]) == [image["id"]]


@pytest.mark.parametrize("announced, sent", [(10, 5), (5, 10)])
def test_wrong_announced_size_is_400_and_nothing_stored(server, project_client, announced, sent):
    client = project_client()
    image = new_image(client)
    body = iter([b"x" * sent])  # chunked, so only x-openstack-image-size announces the size
    response = upload(client, image["id"], body, **{"x-openstack-image-size": str(announced)})
    assert response.status_code == 400
    shown = client.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "queued" and shown["size"] is None
    assert not blobs_of(server, image["id"])


def test_size_header_disagreeing_with_content_length_is_400(project_client):
    client = project_client()
    image = new_image(client)
    response = upload(client, image["id"], b"12345", **{"x-openstack-image-size": "7"})
    assert response.status_code == 400
    assert upload(client, image["id"], b"1", **{"x-openstack-image-size": "x"}).status_code == 400


@pytest.mark.parametrize("store", ["file", "s3"])
def test_image_size_cap(make_server, store):
    from tests.support.server import ApiClient
    base = make_server("sqlite", {"DEFAULT": {"image_size_cap": 1000}}, store=store)
    client = ApiClient(base, project="capped")
    image = new_image(client)
    announced = upload(client, image["id"], iter([b"x" * 10]), **{"x-openstack-image-size": "5000"})
    assert announced.status_code == 413
    streamed = upload(client, image["id"], iter([b"x" * 600, b"x" * 600]))
    assert streamed.status_code == 413
    assert "The provided image is too large." in streamed.json()["message"]
    assert client.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert not blobs_of(base, image["id"])
    assert upload(client, image["id"], b"x" * 1000).status_code == 204


def test_upload_refusals(project_client, admin):
    owner, other = project_client(), project_client()
    image = new_image(owner)
    no_type = owner.put(f"/v2/images/{image['id']}/file", data=b"x")
    assert no_type.status_code == 415
    assert "text/plain is not supported" in no_type.json()["message"]
    wrong = owner.put(f"/v2/images/{image['id']}/file", data=b"x",
                      headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415
    assert upload(other, image["id"], b"x").status_code == 404
    public = new_image(admin, visibility="public")
    denied = upload(other, public["id"], b"x")
    assert denied.status_code == 403
    assert f"Not allowed to upload image data for image {public['id']}" in denied.json()["message"]
    bare = owner.create_image()
    unformatted = upload(owner, bare["id"], b"x")
    assert unformatted.status_code == 400
    assert "Properties disk_format, container_format must be set prior to saving data." \
        in unformatted.json()["message"]
    with_parameter = {"Content-Type": "application/octet-stream; charset=binary"}
    assert upload(owner, image["id"], b"x", **with_parameter).status_code == 204
    again = upload(owner, image["id"], b"y")
    assert again.status_code == 409
    assert "Image status transition from active to saving is not allowed" in again.json()["message"]


@pytest.fixture
def ten_bytes(project_client):
    client = project_client()
    image = new_image(client)
    assert upload(client, image["id"], b"0123456789").status_code == 204
    return client, f"/v2/images/{image['id']}/file", client.get(f"/v2/images/{image['id']}").json()


@pytest.mark.parametrize("header, body, content_range", [
    ("bytes=0-3", b"0123", "bytes 0-3/10"),
    ("bytes=4-6", b"456", "bytes 4-6/10"),
    ("bytes=-3", b"789", "bytes 7-9/10"),
    ("bytes=7-", b"789", "bytes 7-9/10"),
    ("bytes=8-200", b"89", "bytes 8-9/10"),
    ("bytes=-200", b"0123456789", "bytes 0-9/10"),
])
def test_single_ranges(ten_bytes, header, body, content_range):
    client, path, _image = ten_bytes
    response = client.get(path, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == body
    assert response.headers["Content-Range"] == content_range
    assert "Content-MD5" not in response.headers


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=abc", "bytes=5-2", "items=0-2"])
def test_unsatisfiable_ranges_are_416(ten_bytes, header):
    client, path, _image = ten_bytes
    response = client.get(path, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */10"


def test_multiple_ranges_are_400(ten_bytes):
    client, path, _image = ten_bytes
    response = client.get(path, headers={"Range": "bytes=0-1,4-5"})
    assert response.status_code == 400
    assert "multiple ranges are not supported" in response.json()["message"]


def test_conditional_requests(ten_bytes):
    client, path, image = ten_bytes
    etag = f'"{image["os_hash_value"]}"'
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    matching = client.get(path, headers={"Range": "bytes=2-3", "If-Range": etag})
    assert matching.status_code == 206 and matching.content == b"23"
    stale = client.get(path, headers={"Range": "bytes=2-3", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == b"0123456789"
    legacy = client.get(path, headers={"Content-Range": "bytes 3-4/10"})
    assert legacy.status_code == 206 and legacy.content == b"34"


def test_head_gives_download_headers_without_body(ten_bytes):
    client, path, image = ten_bytes
    response = client.request("HEAD", path)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["Content-Length"] == "10"
    assert response.headers["Content-MD5"] == image["checksum"]


def test_no_data_is_204_even_with_a_range(project_client):
    client = project_client()
    image = new_image(client)
    assert client.get(f"/v2/images/{image['id']}/file").status_code == 204
    ranged = client.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=0-1"})
    assert ranged.status_code == 204


def test_deactivate_and_reactivate(project_client, admin):
    owner, other = project_client(), project_client()
    image = new_image(owner, visibility="community")
    path = f"/v2/images/{image['id']}"
    queued = owner.post(f"{path}/actions/deactivate")
    assert queued.status_code == 403
    assert "Not allowed to deactivate image in status 'queued'" in queued.json()["message"]
    assert upload(owner, image["id"], b"data").status_code == 204
    assert other.post(f"{path}/actions/deactivate").status_code == 403
    for _ in range(2):
        assert owner.post(f"{path}/actions/deactivate").status_code == 204
    assert owner.get(path).json()["status"] == "deactivated"
    refused = owner.get(f"{path}/file")
    assert refused.status_code == 403
    assert "The requested image has been deactivated" in refused.json()["message"]
    assert admin.get(f"{path}/file").content == b"data"
    assert upload(owner, image["id"], b"x").status_code == 409
    for _ in range(2):
        assert owner.post(f"{path}/actions/reactivate").status_code == 204
    assert owner.get(f"{path}/file").content == b"data"
    assert owner.get(f"{path}/actions/deactivate").status_code == 405


def test_delete_removes_the_bytes(server, project_client):
    client = project_client()
    image = new_image(client)
    assert upload(client, image["id"], b"bytes").status_code == 204
    assert blobs_of(server, image["id"]) == [image["id"]]
    assert client.delete(f"/v2/images/{image['id']}").status_code == 204
    assert not blobs_of(server, image["id"])
    assert client.get(f"/v2/images/{image['id']}/file").status_code == 404


def test_delete_during_upload_leaves_neither_row_nor_bytes(server, project_client):
    client = project_client()
    image = new_image(client)
    started = threading.Event()
    result = {}

    def slow_body():
        yield b"a" * 1024
        started.set()
        time.sleep(1.0)
        yield b"b" * 1024

    def run():
        result["upload"] = upload(client.__class__(client.base_url, client.project), image["id"],
                                  slow_body()).status_code

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(5)
    time.sleep(0.2)
    assert client.delete(f"/v2/images/{image['id']}").status_code == 204
    thread.join()
    assert result["upload"] == 410
    assert client.get(f"/v2/images/{image['id']}").status_code == 404
    assert not blobs_of(server, image["id"])


class _SharedReader:
    """One buffered reader for several http.client responses on one connection."""

    def __init__(self, sock):
        self.file = sock.makefile("rb")

    def makefile(self, *_args, **_kwargs):
        return self

    def __getattr__(self, name):
        return getattr(self.file, name)

    def close(self):  # http.client closes its reader after each body; the next one needs it
        pass


def pipelined(base_url, project, requests):
    """Send (method, path, body, headers) requests back to back on one connection, then read
    the (status, body) of each answer in order."""
    url = urlparse(base_url)
    identity = {"X-Identity-Status": "Confirmed", "X-Roles": "member", "X-Project-Id": project}
    wire = b""
    for method, path, body, headers in requests:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in {**identity, **headers}.items()]
        wire += ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(wire)
        reader = _SharedReader(sock)
        answers = []
        for _request in requests:
            response = http.client.HTTPResponse(reader)
            response.begin()
            answers.append((response.status, response.read()))
        return answers


def test_pipelined_requests_after_uploads_are_answered_in_order(server, project_client):
    """An upload body is read to its end and not a byte further, and a refused upload's
    body is skipped: the next request on the connection is served as sent."""
    client = project_client()
    image = new_image(client)
    data = os.urandom(3 * MIB + 17)
    path = f"/v2/images/{image['id']}"
    answers = pipelined(server, client.project, [
        ("PUT", f"{path}/file", data, OCTET),
        ("GET", path, b"", {}),
        ("PUT", f"{path}/file", b"second body, refused: the image is active", OCTET),
        ("GET", f"{path}/file", b"", {}),
    ])
    assert [status for status, _body in answers] == [204, 200, 409, 200]
    assert json.loads(answers[1][1])["checksum"] == hashlib.md5(data).hexdigest()
    assert answers[3][1] == data
