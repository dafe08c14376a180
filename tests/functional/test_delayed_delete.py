"""Delayed delete as Glance does it: `pending_delete`, the scrubber, retries, restore."""
import os
import shutil
import time

import pytest

from tests.support.cluster import check_store_matches_database, image_row, query, wait_for
from tests.support.cluster import manage as in_process_manage
from tests.support.server import ApiClient, running_server

OCTET = {"Content-Type": "application/octet-stream"}
SCRUB_TIME = 2


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, database_url_factory):
    return database_url_factory(request.param)


def image_with_data(client, data=b"image bytes"):
    image_id = client.create_image(disk_format="raw", container_format="bare", name="doomed")["id"]
    assert client.put(f"/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    return image_id


def locations(database_url, image_id):
    return [row["url"] for row in query(database_url, "SELECT url FROM image_locations "
                                                      "WHERE image_id = :id", id=image_id)]


def manage(server, *args):
    return in_process_manage(server.datadir.parent / "glancelite.conf", *args)


def block_deletion(path):
    """Make the store's delete of `path` fail: a non-empty directory cannot be unlinked."""
    os.unlink(path)
    os.mkdir(path)
    (path / "obstacle").write_bytes(b"")


def test_delayed_delete_keeps_bytes_until_scrubbed_retries_and_restores(database_url, tmp_path):
    overrides = {"DEFAULT": {"delayed_delete": True, "scrub_time": SCRUB_TIME,
                             "scrub_interval": 0}}
    with running_server(tmp_path, database_url, overrides) as server:
        client = ApiClient(server, project="delayed")
        doomed, restored, stuck = (image_with_data(client, name.encode())
                                   for name in ("doomed", "restored", "stuck"))
        no_data = client.create_image(disk_format="raw", container_format="bare")["id"]
        client.put(f"/v2/images/{doomed}/tags/gold")
        for image_id in (doomed, restored, stuck, no_data):
            assert client.delete(f"/v2/images/{image_id}").status_code == 204
        deleted_at = time.monotonic()

        # Gone for the API, as a deleted image, for the owner and for an admin...
        admin = ApiClient(server, project="admins", roles=("admin",))
        for caller in (client, admin):
            assert caller.get(f"/v2/images/{doomed}").status_code == 404
            assert caller.get(f"/v2/images/{doomed}/file").status_code == 404
            assert caller.delete(f"/v2/images/{doomed}").status_code == 404
            listed = caller.get("/v2/images?name=doomed").json()["images"]
            assert doomed not in [image["id"] for image in listed]
        # ... but the bytes are kept, queued for the scrubber.
        assert image_row(database_url, doomed)["status"] == "pending_delete"
        assert sorted(os.listdir(server.datadir)) == sorted([doomed, restored, stuck])
        assert locations(database_url, doomed) == [f"file://{server.datadir.resolve()}/{doomed}"]
        assert image_row(database_url, no_data)["status"] == "deleted"  # nothing to scrub

        early = manage(server, "scrub")
        assert early.returncode == 0, early.stderr
        assert "scrubbed 0 image(s)" in early.stdout
        assert doomed in os.listdir(server.datadir)

        back = manage(server, "scrub", "--restore", restored)
        assert back.returncode == 0, back.stderr
        shown = client.get(f"/v2/images/{restored}").json()
        assert shown["status"] == "active" and shown["name"] == "doomed"
        assert client.get(f"/v2/images/{restored}/file").content == b"restored"
        again = manage(server, "scrub", "--restore", restored)
        assert again.returncode != 0 and "nothing restored" in again.stderr

        block_deletion(server.datadir / stuck)  # the store will refuse this one
        time.sleep(max(deleted_at + SCRUB_TIME + 0.2 - time.monotonic(), 0))
        scrubbed = manage(server, "scrub")
        assert scrubbed.returncode == 1
        assert "scrubbed 1 image(s)" in scrubbed.stdout and doomed in scrubbed.stdout
        assert "1 image(s) could not be scrubbed" in scrubbed.stderr and stuck in scrubbed.stderr
        row = image_row(database_url, doomed)
        assert (row["status"], row["deleted"], row["lease_owner"]) == ("deleted", True, None)
        assert locations(database_url, doomed) == []
        assert query(database_url, "SELECT * FROM image_tags WHERE image_id = :id", id=doomed) == []
        assert doomed not in os.listdir(server.datadir)
        assert manage(server, "scrub", "--restore", doomed).returncode != 0

        row = image_row(database_url, stuck)  # left for the next run, lease released
        assert (row["status"], row["lease_owner"]) == ("pending_delete", None)
        assert len(locations(database_url, stuck)) == 1
        shutil.rmtree(server.datadir / stuck)
        retried = manage(server, "scrub")
        assert retried.returncode == 0, retried.stderr
        assert "scrubbed 1 image(s)" in retried.stdout and stuck in retried.stdout
        assert image_row(database_url, stuck)["status"] == "deleted"
        assert os.listdir(server.datadir) == [restored]
        assert check_store_matches_database(server.datadir, database_url) == []


def test_without_delayed_delete_a_failed_store_delete_is_retried_in_the_background(
        database_url, tmp_path):
    """delayed_delete off: DELETE removes the bytes itself; when the store refuses, the
    image still leaves the API at once and the background scrubber retries."""
    overrides = {"DEFAULT": {"scrub_interval": 0.3}}
    with running_server(tmp_path, database_url, overrides) as server:
        client = ApiClient(server, project="immediate")
        gone, blocked = image_with_data(client), image_with_data(client)
        assert client.delete(f"/v2/images/{gone}").status_code == 204
        assert image_row(database_url, gone)["status"] == "deleted"
        assert gone not in os.listdir(server.datadir)

        block_deletion(server.datadir / blocked)
        assert client.delete(f"/v2/images/{blocked}").status_code == 204
        assert client.get(f"/v2/images/{blocked}").status_code == 404
        assert image_row(database_url, blocked)["status"] == "pending_delete"
        shutil.rmtree(server.datadir / blocked)
        assert wait_for(lambda: image_row(database_url, blocked)["status"] == "deleted",
                        timeout=10)
        assert check_store_matches_database(server.datadir, database_url) == []
