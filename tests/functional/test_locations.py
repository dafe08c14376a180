"""direct_url, locations and PATCH of /locations: only URLs inside our own store."""
import hashlib
import json

import pytest

from tests.support.server import ApiClient, running_server

OCTET = {"Content-Type": "application/octet-stream"}


def upload(client, image_id, data):
    response = client.put(f"/v2/images/{image_id}/file", data=data, headers=OCTET)
    assert response.status_code == 204, response.text


def raw_image(client, **extra):
    return client.create_image(disk_format="raw", container_format="bare", **extra)


def test_defaults_show_neither_direct_url_nor_locations(project_client):
    client = project_client()
    image = raw_image(client)
    upload(client, image["id"], b"data")
    shown = client.get(f"/v2/images/{image['id']}").json()
    assert "direct_url" not in shown and "locations" not in shown


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def locations_server(request, database_url_factory, tmp_path_factory):
    directory = tmp_path_factory.mktemp("locations")
    metadata = directory / "store-metadata.json"
    metadata.write_text(json.dumps({"id": "shared-nfs", "mountpoint": "/srv/images"}))
    overrides = {
        "DEFAULT": {"show_image_direct_url": True, "show_multiple_locations": True,
                    "image_location_quota": 2},
        "glance_store": {"filesystem_store_metadata_file": str(metadata)}}
    with running_server(directory, database_url_factory(request.param), overrides) as base:
        yield base


def test_direct_url_and_locations_with_store_metadata(locations_server):
    owner = ApiClient(locations_server, project="owner")
    other = ApiClient(locations_server, project="other")
    image = raw_image(owner, visibility="community")
    before = owner.get(f"/v2/images/{image['id']}").json()
    assert before["locations"] == [] and "direct_url" not in before
    upload(owner, image["id"], b"payload")
    expected_url = f"file://{locations_server.datadir}/{image['id']}"
    for client in (owner, other):
        shown = client.get(f"/v2/images/{image['id']}").json()
        assert shown["direct_url"] == expected_url
        assert shown["locations"] == [{"url": expected_url,
                                       "metadata": {"id": "shared-nfs", "mountpoint": "/srv/images"}}]


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "file://{datadir}/../../../etc/passwd",
    "file://{datadir}/../images-elsewhere/x",
    "file://{datadir}/.hidden.part",
    "file://{datadir}/missing",
    "file://otherhost{datadir}/seed.img",
    "http://127.0.0.1:1/image",
    "s3://bucket/key",
    "file://{datadir}",
    "file://{datadir}/./seed.img",
    "file://{datadir}//seed.img",
    "file://{datadir}/%2E%2E/locations/../images/seed.img",
])
def test_locations_outside_the_store_are_refused(locations_server, url):
    (locations_server.datadir / "seed.img").write_bytes(b"seed")
    (locations_server.datadir / ".hidden.part").write_bytes(b"partial")
    client = ApiClient(locations_server, project="p")
    image = raw_image(client)
    response = client.patch(f"/v2/images/{image['id']}", [
        {"op": "add", "path": "/locations/-",
         "value": {"url": url.format(datadir=locations_server.datadir), "metadata": {}}}])
    assert response.status_code == 400, response.text
    assert "Invalid location" in response.json()["message"]
    assert client.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_symlink_out_of_the_store_is_refused(locations_server, tmp_path):
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    (locations_server.datadir / "link.img").symlink_to(outside)
    client = ApiClient(locations_server, project="p")
    image = raw_image(client)
    response = client.patch(f"/v2/images/{image['id']}", [
        {"op": "add", "path": "/locations/-",
         "value": {"url": f"file://{locations_server.datadir}/link.img", "metadata": {}}}])
    assert response.status_code == 400


def test_another_images_blob_cannot_be_borrowed(locations_server):
    client = ApiClient(locations_server, project="p")
    first = raw_image(client)
    upload(client, first["id"], b"first")
    second = raw_image(client)
    response = client.patch(f"/v2/images/{second['id']}", [
        {"op": "add", "path": "/locations/-",
         "value": {"url": f"file://{locations_server.datadir}/{first['id']}", "metadata": {}}}])
    assert response.status_code == 400
    assert "another image's data" in response.json()["message"]


def test_a_file_placed_in_the_store_activates_a_queued_image(locations_server):
    seed = locations_server.datadir / "cirros-0.6.img"
    seed.write_bytes(b"cirros bytes")
    client = ApiClient(locations_server, project="p")
    image = raw_image(client)
    url = f"file://{seed}"
    response = client.patch(f"/v2/images/{image['id']}", [
        {"op": "add", "path": "/locations/-",
         "value": {"url": url, "metadata": {"note": "seeded"},
                   "validation_data": {"os_hash_algo": "sha512",
                                       "os_hash_value": hashlib.sha512(b"cirros bytes").hexdigest()}}}])
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["status"] == "active" and shown["size"] == len(b"cirros bytes")
    assert shown["checksum"] == hashlib.md5(b"cirros bytes").hexdigest(), "hashed by the server"
    assert shown["locations"] == [{"url": url, "metadata": {"note": "seeded"}}]
    assert client.get(f"/v2/images/{image['id']}/file").content == b"cirros bytes"
    duplicate = client.patch(f"/v2/images/{image['id']}", [
        {"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {}}}])
    assert duplicate.status_code == 400
    last = client.patch(f"/v2/images/{image['id']}", [{"op": "remove", "path": "/locations/0"}])
    assert last.status_code == 403
    assert client.delete(f"/v2/images/{image['id']}").status_code == 204
    assert seed.exists(), "a referenced file that is not the image's own blob is never deleted"


def test_claimed_hashes_must_match_the_data(locations_server):
    seed = locations_server.datadir / "claimed.img"
    seed.write_bytes(b"real bytes")
    client = ApiClient(locations_server, project="p")
    image = raw_image(client)
    response = client.patch(f"/v2/images/{image['id']}", [
        {"op": "add", "path": "/locations/-",
         "value": {"url": f"file://{seed}", "metadata": {},
                   "validation_data": {"os_hash_algo": "sha512", "os_hash_value": "ab" * 64}}}])
    assert response.status_code == 400
    assert client.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_same_size_other_bytes_cannot_join_an_active_image(locations_server):
    client = ApiClient(locations_server, project="p")
    image = raw_image(client)
    upload(client, image["id"], b"genuine")
    impostor = locations_server.datadir / "impostor.img"
    impostor.write_bytes(b"GENUINE")
    response = client.patch(f"/v2/images/{image['id']}", [
        {"op": "add", "path": "/locations/0",
         "value": {"url": f"file://{impostor}", "metadata": {}}}])
    assert response.status_code == 400
    assert client.get(f"/v2/images/{image['id']}/file").content == b"genuine"


def test_location_rules_on_queued_and_active_images(locations_server):
    client = ApiClient(locations_server, project="p")
    image = raw_image(client)
    path = f"/v2/images/{image['id']}"
    queued_remove = client.patch(path, [{"op": "remove", "path": "/locations/0"}])
    assert queued_remove.status_code == 409
    empty = client.patch(path, [{"op": "replace", "path": "/locations", "value": []}])
    assert empty.status_code == 403
    upload(client, image["id"], b"12345")
    own = f"file://{locations_server.datadir}/{image['id']}"
    copy = locations_server.datadir / "copy.img"
    copy.write_bytes(b"12345")
    other_size = locations_server.datadir / "other.img"
    other_size.write_bytes(b"123")
    wrong = client.patch(path, [{"op": "add", "path": "/locations/-",
                                 "value": {"url": f"file://{other_size}", "metadata": {}}}])
    assert wrong.status_code == 400
    added = client.patch(path, [{"op": "add", "path": "/locations/-",
                                 "value": {"url": f"file://{copy}", "metadata": {}}}])
    assert added.status_code == 200, added.text
    assert [loc["url"] for loc in added.json()["locations"]] == [own, f"file://{copy}"]
    third = locations_server.datadir / "third.img"
    third.write_bytes(b"12345")
    over = client.patch(path, [{"op": "add", "path": "/locations/-",
                                "value": {"url": f"file://{third}", "metadata": {}}}])
    assert over.status_code == 413
    removed = client.patch(path, [{"op": "remove", "path": "/locations/0"}])
    assert removed.status_code == 200
    assert [loc["url"] for loc in removed.json()["locations"]] == [f"file://{copy}"]
    assert not (locations_server.datadir / image["id"]).exists(), "its own blob went with it"
    assert client.get(f"{path}/file").content == b"12345"


def test_non_owner_cannot_touch_locations(locations_server):
    owner = ApiClient(locations_server, project="owner")
    image = raw_image(owner, visibility="community")
    upload(owner, image["id"], b"x")
    other = ApiClient(locations_server, project="other")
    response = other.patch(f"/v2/images/{image['id']}", [{"op": "remove", "path": "/locations/0"}])
    assert response.status_code == 403


def test_list_entries_equal_show_documents_with_every_collection(locations_server):
    """A list renders each image exactly as GET shows it: properties, tags and locations in
    order, for an image with all of them and one with none."""
    client = ApiClient(locations_server, project="lister")
    full = raw_image(client, os_distro="debian", build="b7", tags=["gold", "beta"])
    upload(client, full["id"], b"12345")
    second = locations_server.datadir / "second-copy.img"
    second.write_bytes(b"12345")
    added = client.patch(f"/v2/images/{full['id']}", [
        {"op": "add", "path": "/locations/-",
         "value": {"url": f"file://{second}", "metadata": {"copy": 2}}}])
    assert added.status_code == 200, added.text
    bare = raw_image(client)
    listed = {image["id"]: image for image in client.get("/v2/images?owner=lister").json()["images"]}
    for image_id in (full["id"], bare["id"]):
        assert listed[image_id] == client.get(f"/v2/images/{image_id}").json()
    assert [loc["metadata"] for loc in listed[full["id"]]["locations"]][1] == {"copy": 2}
    assert listed[full["id"]]["tags"] == ["beta", "gold"] and listed[bare["id"]]["tags"] == []
    assert (listed[full["id"]]["os_distro"], listed[full["id"]]["build"]) == ("debian", "b7")
