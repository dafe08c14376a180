"""The S3 store and several stores, over the real protocols.

glancelite-api (gunicorn) talks S3 over HTTP to moto's server on loopback; the tests look
into the bucket with their own boto3 client (ListMultipartUploads for unfinished uploads).
The data-path suite (test_image_data.py) runs on S3 too; this file covers what only S3
and multi-store have: part sizes, aborts, an S3 outage mid-upload, credentials kept out of
locations, X-Image-Meta-Store, /v2/info/stores and the `stores` attribute.
"""
import hashlib
import os
import signal
import threading
import time

import pytest

from glancelite.store.s3 import GROWTH_EVERY, MAX_PART, MAX_PARTS, MIB, PartPlan
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, S3Server, blobs_of, describe_store, s3_store_overrides
from tests.support.server import ApiClient, running_server
from tests.support.transfer import send_partial_upload, worker_pids

OCTET = {"Content-Type": "application/octet-stream"}
TIB = 1 << 40
# 5 MiB parts (S3's smallest), one part in flight: easy to count, quick to fill.
SMALL_PARTS = {"s3_store_large_object_chunk_size": 5, "s3_store_thread_pools": 1}


def new_image(client):
    return client.create_image(disk_format="raw", container_format="bare")


def upload(client, image_id, data, **headers):
    return client.put(f"/v2/images/{image_id}/file", data=data, headers={**OCTET, **headers})


def wait_for(predicate, timeout=20, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def mib_chunks(count, fill=b"s"):
    for index in range(count):
        yield bytes([index % 256]) + fill * (MIB - 1)


def joined(count, fill=b"s"):
    return b"".join(mib_chunks(count, fill))


# -- part sizing (the plan alone) -------------------------------------------------------

def test_part_size_from_an_announced_size():
    assert PartPlan(10 * MIB, size_hint=200 * MIB).size(1) == 10 * MIB
    plan = PartPlan(10 * MIB, size_hint=TIB)
    assert plan.base == -(-TIB // 9000) > 10 * MIB
    assert {plan.size(1), plan.size(9000)} == {plan.base}
    assert plan.base * 9000 >= TIB
    assert PartPlan(10 * MIB, size_hint=0).size(1) == 10 * MIB
    assert PartPlan(10 * MIB, size_hint=50 * TIB).size(1) == MAX_PART  # S3's own limit


def test_part_size_grows_without_a_size_so_10000_parts_hold_5_tib():
    plan = PartPlan(10 * MIB)
    assert [plan.size(n) for n in (1, GROWTH_EVERY, GROWTH_EVERY + 1, 2 * GROWTH_EVERY + 1)] == \
        [10 * MIB, 10 * MIB, 20 * MIB, 40 * MIB]
    assert plan.capacity() >= 5 * TIB
    assert max(plan.size(n) for n in range(1, MAX_PARTS + 1)) <= MAX_PART
    smallest = PartPlan(5 * MIB)  # S3's smallest part would fall short: raised just enough
    assert 5 * MIB < smallest.size(1) < 6 * MIB and smallest.capacity() >= 5 * TIB


# -- one S3 store -----------------------------------------------------------------------

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def s3_api(request, database_url_factory, tmp_path_factory, s3_server):
    """A server on S3 with 5 MiB parts, locations shown (to check them for credentials)."""
    bucket = s3_server.new_bucket(create=False)  # s3_store_create_bucket_on_put makes it
    overrides = s3_store_overrides(s3_server, bucket, {
        "DEFAULT": {"show_image_direct_url": True, "show_multiple_locations": True}},
        **SMALL_PARTS)
    with running_server(tmp_path_factory.mktemp("s3"), database_url_factory(request.param),
                        overrides) as base:
        yield describe_store(base, "s3", s3_server, bucket)


def test_small_image_is_one_put_and_larger_ones_are_multipart(s3_api):
    client = ApiClient(s3_api, project="parts")
    s3, bucket = s3_api.s3, s3_api.bucket
    small, chunked, announced = new_image(client), new_image(client), new_image(client)
    assert upload(client, small["id"], joined(3)).status_code == 204
    assert s3.etag(bucket, small["id"]) == hashlib.md5(joined(3)).hexdigest()  # one PutObject
    data = joined(12) + b"!"  # 5 + 5 + 2 MiB + 1 byte, size unknown (chunked)
    assert upload(client, chunked["id"], mib_chunks(12)).status_code == 204
    assert upload(client, chunked["id"], b"").status_code == 409
    assert s3.etag(bucket, chunked["id"]).endswith("-3")
    assert upload(client, announced["id"], data, **{"x-openstack-image-size": str(len(data))}) \
        .status_code == 204
    assert s3.etag(bucket, announced["id"]).endswith("-3")
    got = client.get(f"/v2/images/{announced['id']}/file")
    assert got.content == data and got.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    assert s3.unfinished_uploads(bucket) == []


def test_multipart_upload_starts_with_the_first_part_and_appears_at_completion(s3_api):
    client = ApiClient(s3_api, project="stream")
    s3, bucket = s3_api.s3, s3_api.bucket
    image = new_image(client)
    release = threading.Event()
    seen = {}

    def body():
        yield from mib_chunks(6)
        seen["unfinished"] = wait_for(lambda: image["id"] in s3.unfinished_uploads(bucket), 10)
        seen["object"] = image["id"] in s3.objects(bucket)
        release.wait(10)
        yield from mib_chunks(6)

    thread = threading.Thread(target=lambda: seen.setdefault(
        "status", upload(ApiClient(s3_api, project="stream"), image["id"], body()).status_code))
    thread.start()
    assert wait_for(lambda: "object" in seen, 15)
    release.set()
    thread.join(30)
    assert seen == {"unfinished": True, "object": False, "status": 204}
    assert blobs_of(s3_api, image["id"]) == [image["id"]]


def test_ranged_downloads_pass_through(s3_api):
    client = ApiClient(s3_api, project="ranges")
    image = new_image(client)
    data = os.urandom(11 * MIB + 3)
    assert upload(client, image["id"], data).status_code == 204
    path = f"/v2/images/{image['id']}/file"
    for header, start, stop in (("bytes=0-9", 0, 10), ("bytes=5242878-5242881", 5242878, 5242882),
                                (f"bytes={len(data) - 4}-", len(data) - 4, len(data)),
                                ("bytes=-7", len(data) - 7, len(data))):
        got = client.get(path, headers={"Range": header})
        assert got.status_code == 206 and got.content == data[start:stop], header
    assert client.get(path).content == data


def test_failed_uploads_abort_the_multipart_upload(s3_api):
    client = ApiClient(s3_api, project="aborts")
    s3, bucket = s3_api.s3, s3_api.bucket
    dropped, oversized = new_image(client), new_image(client)
    send_partial_upload(s3_api, dropped["id"], announced=20 * MIB, sent=12 * MIB)
    assert wait_for(lambda: client.get(f"/v2/images/{dropped['id']}").json()["status"] == "queued")
    response = upload(client, oversized["id"], mib_chunks(12),
                      **{"x-openstack-image-size": str(11 * MIB)})
    assert response.status_code == 400
    for image_id in (dropped["id"], oversized["id"]):
        assert wait_for(lambda i=image_id: not blobs_of(s3_api, i), 10), blobs_of(s3_api, image_id)
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert upload(client, dropped["id"], b"again").status_code == 204
    assert s3.objects(bucket).count(dropped["id"]) == 1


def test_locations_never_carry_credentials(s3_api):
    client = ApiClient(s3_api, project="secrets")
    image = new_image(client)
    assert upload(client, image["id"], b"payload").status_code == 204
    shown = client.get(f"/v2/images/{image['id']}")
    url = f"s3://127.0.0.1:{s3_api.s3.port}/{s3_api.bucket}/{image['id']}"
    assert shown.json()["locations"] == [{"url": url, "metadata": {}}]
    assert shown.json()["direct_url"] == url
    assert "stores" not in shown.json()  # single store
    for text in (shown.text, client.get("/v2/images").text, s3_api.log_path.read_text()):
        assert ACCESS_KEY not in text and SECRET_KEY not in text
    # a URL that carries keys is not taken for one of ours
    other = new_image(client)
    keyed = f"s3://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{s3_api.s3.port}/{s3_api.bucket}/x"
    refused = client.patch(f"/v2/images/{other['id']}",
                           [{"op": "add", "path": "/locations/-", "value": {"url": keyed,
                                                                            "metadata": {}}}])
    assert refused.status_code == 400


# -- S3 going away mid-upload -----------------------------------------------------------

@pytest.fixture
def own_s3():
    """An S3 server of the test's own, so that stopping it disturbs nobody else."""
    s3 = S3Server().start()
    yield s3
    s3.stop()


@pytest.fixture
def own_s3_api(make_server, own_s3):
    bucket = own_s3.new_bucket()
    base = make_server("sqlite", s3_store_overrides(own_s3, bucket, **SMALL_PARTS))
    return describe_store(base, "s3", own_s3, bucket)


def test_s3_outage_mid_upload_is_503_then_a_retry_succeeds(own_s3_api, own_s3):
    bucket = own_s3_api.bucket
    client = ApiClient(own_s3_api, project="outage")
    image = new_image(client)

    def body():
        yield from mib_chunks(6)
        assert wait_for(lambda: own_s3.uploaded_parts(bucket, image["id"]) == [1], 10)
        own_s3.stop()  # the first part went out; the second will find nobody
        yield from mib_chunks(6)

    started = time.monotonic()
    # its own connection: the server may close it after answering an upload early
    response = upload(ApiClient(own_s3_api, project="outage"), image["id"], body())
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert time.monotonic() - started < 30
    assert client.get(f"/v2/images/{image['id']}").json()["status"] == "queued"

    own_s3.start()
    # The abort that failed while S3 was down is retried in the background.
    assert wait_for(lambda: not own_s3.leftovers(bucket, image["id"]), 30), \
        own_s3.leftovers(bucket, image["id"])
    assert upload(client, image["id"], mib_chunks(12)).status_code == 204
    assert client.get(f"/v2/images/{image['id']}/file").content == joined(12)

    own_s3.stop()
    unreachable = client.get(f"/v2/images/{image['id']}/file")
    assert unreachable.status_code == 503 and unreachable.headers["Retry-After"] == "5"
    own_s3.start()
    assert client.get(f"/v2/images/{image['id']}/file").content == joined(12)


def test_a_download_cut_off_by_s3_is_resumed(own_s3_api, own_s3):
    client = ApiClient(own_s3_api, project="resume")
    image = new_image(client)
    data = os.urandom(96 * MIB)  # more than every socket buffer on the way can hold
    assert upload(client, image["id"], data).status_code == 204
    with client.get(f"/v2/images/{image['id']}/file", stream=True) as got:
        pieces = got.iter_content(MIB)
        first = next(pieces)
        own_s3.stop()  # cuts the GET the worker is reading from
        own_s3.start()
        rest = b"".join(pieces)
    assert first + rest == data
    assert "broke off" in own_s3_api.log_path.read_text()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_killed_workers_multipart_upload_is_aborted_when_its_lease_expires(
        kind, database_url_factory, tmp_path, s3_server):
    lease = 2
    bucket = s3_server.new_bucket()
    overrides = s3_store_overrides(s3_server, bucket, {
        "DEFAULT": {"workers": 1, "upload_lease_timeout": lease, "upload_reaper_interval": 0,
                    "scrub_interval": 0}}, **SMALL_PARTS)
    with running_server(tmp_path, database_url_factory(kind), overrides) as server:
        client = ApiClient(server, project="killed")
        image = new_image(client)
        stop = threading.Event()

        def endless():
            while not stop.is_set():
                yield os.urandom(256 * 1024)

        def send():
            try:
                upload(ApiClient(server, project="killed"), image["id"], endless())
            except Exception:  # noqa: BLE001 - its worker is killed under it
                pass

        sender = threading.Thread(target=send)
        sender.start()
        try:
            assert wait_for(lambda: s3_server.uploaded_parts(bucket, image["id"]), 20)
            for pid in worker_pids(server.pgid):
                os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
        finally:
            stop.set()
            sender.join(30)
        # nothing undoes a kill -9 by itself: the multipart upload is still open
        assert s3_server.unfinished_uploads(bucket) == [image["id"]]
        time.sleep(max(killed_at + lease + 0.5 - time.monotonic(), 0))
        shown = ApiClient(server, project="killed").get(f"/v2/images/{image['id']}").json()
        assert shown["status"] == "queued" and shown["size"] is None
        assert s3_server.leftovers(bucket, image["id"]) == []
        assert upload(ApiClient(server, project="killed"), image["id"], b"again").status_code == 204
        assert s3_server.leftovers(bucket, image["id"]) == [image["id"]]


# -- several stores ---------------------------------------------------------------------

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def multi_api(request, database_url_factory, tmp_path_factory, s3_server):
    directory = tmp_path_factory.mktemp("multi")
    bucket = s3_server.new_bucket()
    overrides = {
        "DEFAULT": {"enabled_backends": ["fast:file", "cold:s3"],
                    "show_multiple_locations": True},
        "glance_store": {"default_backend": "fast"},
        "fast": {"filesystem_store_datadir": str(directory / "fast")},
        "cold": {**s3_server.store_options(bucket, **SMALL_PARTS),
                 "store_description": "Cold storage", "weight": 50},
    }
    with running_server(directory, database_url_factory(request.param), overrides) as base:
        base.fast, base.s3, base.bucket = directory / "fast", s3_server, bucket
        yield base


def test_x_image_meta_store_picks_the_store_and_stores_shows_it(multi_api):
    client = ApiClient(multi_api, project="multi")
    created = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert created.headers["OpenStack-image-store-ids"] == "fast,cold"
    default, cold = created.json(), new_image(client)
    assert "stores" not in default
    assert upload(client, default["id"], b"hot bytes").status_code == 204
    assert upload(client, cold["id"], joined(6), **{"X-Image-Meta-Store": "cold"}).status_code == 204

    shown = client.get(f"/v2/images/{default['id']}").json()
    assert shown["stores"] == "fast"
    assert shown["locations"] == [{"url": f"file://{multi_api.fast}/{default['id']}",
                                   "metadata": {"store": "fast"}}]
    shown = client.get(f"/v2/images/{cold['id']}").json()
    assert shown["stores"] == "cold" and list(shown)[-1] == "stores"
    assert shown["locations"][0]["url"].startswith("s3://")
    assert shown["locations"][0]["metadata"] == {"store": "cold"}
    assert multi_api.s3.etag(multi_api.bucket, cold["id"]).endswith("-2")
    assert (multi_api.fast / default["id"]).read_bytes() == b"hot bytes"
    assert client.get(f"/v2/images/{default['id']}/file").content == b"hot bytes"
    assert client.get(f"/v2/images/{cold['id']}/file").content == joined(6)
    listed = {image["id"]: image for image in client.get("/v2/images").json()["images"]}
    assert listed[cold["id"]]["stores"] == "cold"

    assert client.delete(f"/v2/images/{cold['id']}").status_code == 204
    assert wait_for(lambda: cold["id"] not in multi_api.s3.objects(multi_api.bucket), 10)
    assert client.delete(f"/v2/images/{default['id']}").status_code == 204
    assert wait_for(lambda: not (multi_api.fast / default["id"]).exists(), 10)


def test_unknown_store_is_400_and_the_image_stays_queued(multi_api):
    client = ApiClient(multi_api, project="multi-unknown", accept="application/json")
    image = new_image(client)
    for name in ("nope", "", "os_glance_staging_store"):
        refused = upload(client, image["id"], b"data", **{"X-Image-Meta-Store": name})
        assert refused.status_code == 400
        assert f"Unknown scheme '{name}' found in URI" in refused.json()["message"]
    assert client.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert not list(multi_api.fast.glob(f"*{image['id']}*"))


def test_info_stores_lists_the_backends_and_details_are_for_admins(multi_api):
    member = ApiClient(multi_api, project="multi-info")
    admin = ApiClient(multi_api, project="multi-admin", roles=("admin",))
    expected = [{"id": "fast", "default": "true"}, {"id": "cold", "description": "Cold storage"}]
    for client in (member, admin):
        response = client.get("/v2/info/stores")
        assert response.status_code == 200 and response.json() == {"stores": expected}
    assert member.get("/v2/info/stores/detail").status_code == 403
    detail = admin.get("/v2/info/stores/detail")
    assert detail.status_code == 200
    assert detail.json() == {"stores": [
        {"id": "fast", "default": "true", "type": "file",
         "properties": {"data_dir": str(multi_api.fast), "chunk_size": 65536,
                        "thin_provisioning": False}, "weight": 0},
        {"id": "cold", "description": "Cold storage", "type": "s3",
         "properties": {"s3_store_large_object_size": 100, "s3_store_large_object_chunk_size": 5,
                        "s3_store_thread_pools": 1}, "weight": 50}]}
    assert ACCESS_KEY not in detail.text and SECRET_KEY not in detail.text
    assert member.put("/v2/info/stores").status_code == 405


def test_versions_list_the_multi_store_ones(multi_api):
    ids = [v["id"] for v in ApiClient(multi_api).get("/versions").json()["versions"]]
    assert ids == ["v2.15", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.7", "v2.6",
                   "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"]
    client = ApiClient(multi_api, project="multi-versions")
    assert client.get("/v2.13/info/stores").status_code == 200


def test_single_store_is_unchanged(server, project_client):
    client = project_client()
    for path in ("/v2/info/stores", "/v2/info/stores/detail"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 404
        assert "Multi backend is not supported at this site." in response.json()["message"]
    created = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert "OpenStack-image-store-ids" not in created.headers
    image = created.json()
    assert upload(client, image["id"], b"x", **{"X-Image-Meta-Store": "whatever"}).status_code == 204
    assert "stores" not in client.get(f"/v2/images/{image['id']}").json()
    ids = [v["id"] for v in client.get("/versions").json()["versions"]]
    assert "v2.13" not in ids and "v2.9" in ids
    assert client.get("/v2.13/images").status_code == 300
