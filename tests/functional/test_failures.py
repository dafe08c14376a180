"""Failures of real processes: a worker killed mid-upload, a full disk, database
connections dropped. (A store server stopped mid-upload is in the S3 tests.)"""
import datetime
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.cluster import check_store_matches_database, image_row, partial_files, wait_for
from tests.support.server import ApiClient, run_manage, running_server
from tests.support.transfer import MIB, worker_pids

OCTET = {"Content-Type": "application/octet-stream"}
LEASE = 2  # upload_lease_timeout of these servers, seconds


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, database_url_factory):
    return database_url_factory(request.param)


def endless_body(stop):
    """A chunked upload that keeps sending until `stop` is set."""
    while not stop.is_set():
        yield os.urandom(64 * 1024)
        time.sleep(0.02)


class HangingUploads:
    """Uploads to several images that run until their worker is killed."""

    def __init__(self, server, image_ids):
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(server, image_id))
                        for image_id in image_ids]
        for thread in self.threads:
            thread.start()

    def _send(self, server, image_id):
        client = ApiClient(server, project="killed")
        try:
            client.put(f"/v2/images/{image_id}/file", data=endless_body(self.stop), headers=OCTET)
        except Exception:  # noqa: BLE001 - the worker is killed under it
            pass

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def kill_workers_mid_upload(server, image_ids):
    """Start uploads to the images, wait until their bytes flow into temporary files, then
    kill -9 every worker of the server. Returns the time of the kill."""
    uploads = HangingUploads(server, image_ids)
    try:
        flowing = wait_for(lambda: all(partial_files(server.datadir, i) for i in image_ids))
        assert flowing, os.listdir(server.datadir)
        for pid in worker_pids(server.pgid):
            os.kill(pid, signal.SIGKILL)
        return time.monotonic()
    finally:
        uploads.finish()


def test_killed_worker_upload_is_undone_by_the_next_request_and_by_manage_reap(
        database_url, tmp_path):
    overrides = {"DEFAULT": {"workers": 1, "upload_lease_timeout": LEASE,
                             "upload_reaper_interval": 0, "scrub_interval": 0}}
    with running_server(tmp_path, database_url, overrides) as server:
        client = ApiClient(server, project="killed")
        touched, untouched = (client.create_image(disk_format="raw", container_format="bare")["id"]
                              for _ in range(2))
        killed_at = kill_workers_mid_upload(server, [touched, untouched])
        # Nothing cleans up after a kill -9 by itself: the temporary files are still there
        # and the images are saving under the dead worker's leases.
        assert partial_files(server.datadir, touched) and partial_files(server.datadir, untouched)
        assert image_row(database_url, touched)["lease_owner"] is not None
        time.sleep(max(killed_at + LEASE + 0.5 - time.monotonic(), 0))

        shown = ApiClient(server, project="killed").get(f"/v2/images/{touched}").json()
        assert shown["status"] == "queued" and shown["size"] is None
        assert not partial_files(server.datadir, touched)
        assert partial_files(server.datadir, untouched)  # no reaper thread in this server

        reaped = run_manage(server.datadir.parent / "glancelite.conf", "reap")
        assert reaped.returncode == 0, reaped.stderr
        assert "reaped 1 expired upload lease(s)" in reaped.stdout and untouched in reaped.stdout
        row = image_row(database_url, untouched)
        assert (row["status"], row["lease_owner"]) == ("queued", None)
        assert partial_files(server.datadir) == []

        for image_id in (touched, untouched):
            again = ApiClient(server, project="killed").put(f"/v2/images/{image_id}/file",
                                                            data=b"again", headers=OCTET)
            assert again.status_code == 204, again.text
        assert check_store_matches_database(server.datadir, database_url) == []


def test_reaper_removes_a_blob_finished_just_before_its_worker_died(database_url, tmp_path):
    """A kill between the store's rename and the row's update leaves a whole blob that no
    location records: the reaper removes it with the temporary files."""
    overrides = {"DEFAULT": {"workers": 1, "upload_lease_timeout": LEASE,
                             "upload_reaper_interval": 0, "scrub_interval": 0}}
    with running_server(tmp_path, database_url, overrides) as server:
        client = ApiClient(server, project="killed")
        image_id = client.create_image(disk_format="raw", container_format="bare")["id"]
        engine = create_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text(
                "UPDATE images SET status = 'saving', lease_owner = 'upload:gone:1:x', "
                "lease_heartbeat = :long_ago WHERE id = :id"),
                {"id": image_id, "long_ago": datetime.datetime(2020, 1, 1)})
        engine.dispose()
        (server.datadir / image_id).write_bytes(b"finished, never recorded")
        (server.datadir / f".{image_id}.0123.part").write_bytes(b"half")
        reaped = run_manage(server.datadir.parent / "glancelite.conf", "reap")
        assert image_id in reaped.stdout, (reaped.stdout, reaped.stderr)
        assert os.listdir(server.datadir) == []
        assert image_row(database_url, image_id)["status"] == "queued"


def test_reaper_thread_undoes_killed_uploads_even_of_deleted_images(database_url, tmp_path):
    """Nobody touches the images after the kill (one is deleted while its dead upload still
    holds the lease): the respawned workers' reaper threads clean both up."""
    overrides = {"DEFAULT": {"workers": 2, "upload_lease_timeout": LEASE,
                             "upload_reaper_interval": 0.5, "scrub_interval": 0}}
    with running_server(tmp_path, database_url, overrides) as server:
        client = ApiClient(server, project="killed")
        deleted, left = (client.create_image(disk_format="raw", container_format="bare")["id"]
                         for _ in range(2))
        kill_workers_mid_upload(server, [deleted, left])
        assert ApiClient(server, project="killed").delete(f"/v2/images/{deleted}").status_code == 204
        assert partial_files(server.datadir, deleted)  # the dead upload's bytes, row deleted

        assert wait_for(lambda: not partial_files(server.datadir), timeout=LEASE + 8)
        assert wait_for(lambda: image_row(database_url, left)["status"] == "queued", timeout=3)
        rows = [image_row(database_url, image_id) for image_id in (deleted, left)]
        assert [(row["status"], row["lease_owner"]) for row in rows] == \
            [("deleted", None), ("queued", None)]
        assert check_store_matches_database(server.datadir, database_url) == []


@pytest.fixture(params=["tmpfs", "ext4"])
def small_disk(request, tmp_path):
    """The store directory on an 8 MiB file system mounted for the test (needs root; skipped
    only if it cannot be): tmpfs, where uploads go through the page cache, and ext4 on a loop
    device, where they are written with O_DIRECT."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if request.param == "tmpfs":
        steps = [["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mountpoint)]]
    else:
        image = tmp_path / "small-disk.img"
        steps = [["truncate", "-s", "8M", str(image)], ["mkfs.ext4", "-q", "-F", str(image)],
                 ["mount", "-o", "loop", str(image), str(mountpoint)]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make an 8 MiB {request.param} for the full-disk test (needs "
                        f"root): {' '.join(step[:2])}: {done.stderr.strip()}")
    try:
        datadir = mountpoint / "images"  # not the root: ext4 keeps lost+found there
        datadir.mkdir()
        yield datadir
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_disk_is_413_storage_full_and_leaves_nothing(database_url, tmp_path, small_disk):
    overrides = {"glance_store": {"filesystem_store_datadir": str(small_disk)}}
    (tmp_path / "server").mkdir()
    with running_server(tmp_path / "server", database_url, overrides) as server:
        client = ApiClient(server, project="full")
        image_id = client.create_image(disk_format="raw", container_format="bare")["id"]
        too_big = (os.urandom(MIB) for _ in range(12))
        response = client.put(f"/v2/images/{image_id}/file", data=too_big, headers=OCTET)
        assert response.status_code == 413, response.text
        assert "Image storage media is full" in response.json()["message"]
        shown = ApiClient(server, project="full").get(f"/v2/images/{image_id}").json()
        assert (shown["status"], shown["size"]) == ("queued", None)
        assert os.listdir(small_disk) == []
        fits = ApiClient(server, project="full").put(f"/v2/images/{image_id}/file",
                                                     data=os.urandom(MIB), headers=OCTET)
        assert fits.status_code == 204, fits.text
        assert os.listdir(small_disk) == [image_id]


def terminate_backends(database_url):
    """Drop every connection of the API to its database, as a PostgreSQL restart would."""
    name = make_url(database_url).database
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return len(connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).all())
    finally:
        engine.dispose()


def test_dropped_database_connections_are_replaced_without_errors(database_url_factory,
                                                                  tmp_path):
    database_url = database_url_factory("postgresql")
    with running_server(tmp_path, database_url, {"DEFAULT": {"workers": 2}}) as server:
        def exercise(round_name):
            statuses = []
            for n in range(4):
                client = ApiClient(server, project="dropped")
                created = client.post("/v2/images", json={"name": f"{round_name}-{n}",
                                                          "disk_format": "raw",
                                                          "container_format": "bare"})
                statuses.append(created.status_code)
                if created.status_code != 201:
                    continue
                path = f"/v2/images/{created.json()['id']}"
                statuses.append(client.get(path).status_code)
                statuses.append(client.put(f"{path}/file", data=b"data", headers=OCTET).status_code)
                statuses.append(client.get(f"{path}/file").status_code)
                statuses.append(client.get("/v2/images?limit=5").status_code)
            return statuses

        def exercise_in_parallel(round_name):  # so that both workers get requests
            with ThreadPoolExecutor(4) as pool:
                return [code for codes in pool.map(exercise, [f"{round_name}{n}" for n in range(4)])
                        for code in codes]

        assert set(exercise_in_parallel("warm")) == {200, 201, 204}
        assert terminate_backends(database_url) >= 1  # the workers' pooled connections
        after = exercise_in_parallel("after")
        assert set(after) == {200, 201, 204}, after
        log = Path(server.log_path).read_text()
        assert "Traceback" not in log
