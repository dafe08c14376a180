"""Two glancelite-api hosts, three gunicorn workers each, one PostgreSQL database and one
store directory: requests racing on one image, sent from threads split across both hosts.

Every state change is a compare-and-set in SQL, so each race has exactly one winner, no
PATCH loses another's change, no image is ever active without all of its bytes, and no
bytes are left that no row points to. PostgreSQL only: SQLite is one file on one host,
so there is no second host to race with (its single-host races are in test_image_data).
"""
import hashlib
import os
import subprocess
import threading
import time

import pytest

from tests.functional.test_manage_and_start import newest_revision
from tests.support.cluster import check_store_matches_database, cluster, image_row
from tests.support.server import BIN, ApiClient, write_config

OCTET = {"Content-Type": "application/octet-stream"}
ROUNDS = 6


@pytest.fixture(scope="module")
def hosts(database_url_factory, tmp_path_factory):
    url = database_url_factory("postgresql")
    with cluster(tmp_path_factory.mktemp("cluster"), url, hosts=2, workers=3) as servers:
        yield url, servers


def clients(servers, project, count):
    """`count` clients of one project, alternating between the hosts (one per thread)."""
    return [ApiClient(servers[i % len(servers)], project=project) for i in range(count)]


def race(calls):
    """Run the calls at the same moment, one thread each; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - a failed request is a test failure below
            results[index] = exc

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def trickle(data, pieces=4):
    """A chunked request body sent in pieces, so racing uploads overlap."""
    step = len(data) // pieces
    for start in range(0, len(data), step):
        time.sleep(0.01)
        yield data[start:start + step]


def without_errors(results):
    """The results of race(), after checking that no call raised."""
    for result in results:
        assert not isinstance(result, Exception), result
    return results


def codes(results):
    return [result.status_code for result in without_errors(results)]


def new_image(client):
    return client.create_image(disk_format="raw", container_format="bare")["id"]


def active_image(servers, project):
    """An owner's client, and the id of a new image of theirs that has data (active)."""
    owner = ApiClient(servers[0], project=project)
    image_id = new_image(owner)
    assert owner.put(f"/v2/images/{image_id}/file", data=b"data",
                     headers=OCTET).status_code == 204
    return owner, image_id


def assert_consistent(hosts_fixture):
    url, servers = hosts_fixture
    assert check_store_matches_database(servers[0].datadir, url) == []


def test_racing_uploads_have_exactly_one_winner(hosts):
    for _round in range(ROUNDS):
        racing_uploads_round(hosts)
    assert_consistent(hosts)


def racing_uploads_round(hosts):
    _url, servers = hosts
    uploaders = clients(servers, "racers", 6)
    image_id = new_image(uploaders[0])
    payloads = [os.urandom(256 * 1024) for _ in uploaders]
    seen_active = []
    done = threading.Event()

    def observe():
        """Whenever the image shows active, its bytes are complete."""
        observer = ApiClient(servers[1], project="racers")
        while not done.is_set():
            shown = observer.get(f"/v2/images/{image_id}").json()
            if shown["status"] == "active":
                data = observer.get(f"/v2/images/{image_id}/file").content
                seen_active.append((len(data) == shown["size"],
                                    hashlib.md5(data).hexdigest() == shown["checksum"]))
                return

    watcher = threading.Thread(target=observe)
    watcher.start()
    results = codes(race([
        lambda c=c, p=p: c.put(f"/v2/images/{image_id}/file", data=trickle(p), headers=OCTET)
        for c, p in zip(uploaders, payloads, strict=True)]))
    done.set()
    watcher.join()
    assert sorted(results) == [204] + [409] * 5, results
    winner = payloads[results.index(204)]
    shown = uploaders[1].get(f"/v2/images/{image_id}").json()
    assert (shown["status"], shown["size"]) == ("active", len(winner))
    assert shown["checksum"] == hashlib.md5(winner).hexdigest()
    assert uploaders[0].get(f"/v2/images/{image_id}/file").content == winner
    assert all(ok for pair in seen_active for ok in pair), seen_active


def test_racing_deletes_have_exactly_one_winner(hosts):
    for _round in range(ROUNDS):
        racing_deletes_round(hosts)
    assert_consistent(hosts)


def racing_deletes_round(hosts):
    url, servers = hosts
    deleters = clients(servers, "deleters", 6)
    image_id = new_image(deleters[0])
    assert deleters[0].put(f"/v2/images/{image_id}/file", data=b"x" * 1000,
                           headers=OCTET).status_code == 204
    results = codes(race([lambda c=c: c.delete(f"/v2/images/{image_id}") for c in deleters]))
    assert sorted(results) == [204] + [404] * 5, results
    assert image_row(url, image_id)["status"] == "deleted"
    assert image_id not in os.listdir(servers[0].datadir)


def test_everything_at_once_ends_in_one_consistent_outcome(hosts):
    """Uploads, deletes, deactivations and PATCHes on one image, all at once, from both
    hosts: one delete wins, at most one upload wins, nothing fails with a 5xx, and the
    deleted image leaves neither a row the API shows nor bytes."""
    for round_number in range(ROUNDS + 2):
        everything_round(hosts, start_active=bool(round_number % 2))
    assert_consistent(hosts)


def everything_round(hosts, start_active):
    url, servers = hosts
    callers = clients(servers, "mixed", 12)
    image_id = new_image(callers[0])
    path = f"/v2/images/{image_id}"
    if start_active:
        assert callers[0].put(f"{path}/file", data=b"first", headers=OCTET).status_code == 204
    calls = {
        "upload": [lambda c=c: c.put(f"{path}/file", data=trickle(os.urandom(64 * 1024)),
                                     headers=OCTET) for c in callers[0:3]],
        "delete": [lambda c=c: c.delete(path) for c in callers[3:5]],
        "toggle": [lambda c=callers[5]: c.post(f"{path}/actions/deactivate"),
                   lambda c=callers[6]: c.post(f"{path}/actions/deactivate"),
                   lambda c=callers[7]: c.post(f"{path}/actions/reactivate")],
        "patch": [lambda c=c, i=i: c.patch(path, [{"op": "add", "path": f"/k{i}", "value": "v"}])
                  for i, c in enumerate(callers[8:12])],
    }
    flat = [(kind, call) for kind, group in calls.items() for call in group]
    results = codes(race([call for _kind, call in flat]))
    by_kind = {}
    for (kind, _call), code in zip(flat, results, strict=True):
        by_kind.setdefault(kind, []).append(code)
    assert sorted(by_kind["delete"]) == [204, 404], by_kind
    assert by_kind["upload"].count(204) <= (0 if start_active else 1), by_kind
    assert set(by_kind["upload"]) <= {204, 404, 409, 410}, by_kind
    assert set(by_kind["toggle"]) <= {204, 403, 404}, by_kind
    assert set(by_kind["patch"]) <= {200, 404}, by_kind
    assert ApiClient(servers[0], project="mixed").get(path).status_code == 404
    assert image_row(url, image_id)["status"] == "deleted"
    assert not [name for name in os.listdir(servers[0].datadir) if image_id in name]


def test_no_property_update_is_lost(hosts):
    """16 writers on two hosts add 48 properties to one image while others flip it between
    active and deactivated: every PATCH succeeds and every property is there."""
    _url, servers = hosts
    owner, image_id = active_image(servers, "writers")
    path = f"/v2/images/{image_id}"

    def writer(client, index):
        return [client.patch(path, [{"op": "add", "path": f"/w{index}_{n}", "value": str(n)}])
                .status_code for n in range(3)]

    def toggler(client, index):
        action = "deactivate" if index % 2 else "reactivate"
        return [client.post(f"{path}/actions/{action}").status_code for _ in range(5)]

    writers = [lambda c=c, i=i: writer(c, i)
               for i, c in enumerate(clients(servers, "writers", 16))]
    togglers = [lambda c=c, i=i: toggler(c, i)
                for i, c in enumerate(clients(servers, "writers", 4))]
    results = without_errors(race(writers + togglers))
    assert all(code == 200 for result in results[:16] for code in result), results[:16]
    assert all(code == 204 for result in results[16:] for code in result), results[16:]
    shown = owner.get(path).json()
    expected = {f"w{i}_{n}": str(n) for i in range(16) for n in range(3)}
    assert {key: shown.get(key) for key in expected} == expected
    assert shown["status"] in ("active", "deactivated")
    assert_consistent(hosts)


def test_racing_deactivates_and_reactivates_all_succeed(hosts):
    """Owners on two hosts deactivating and reactivating one image at once: each request is
    a valid action on an active or deactivated image, so each gets 204 (none may lose a
    compare-and-set to a flip and answer 403), and the image ends in one of the two states."""
    url, servers = hosts
    owner, image_id = active_image(servers, "togglers")
    path = f"/v2/images/{image_id}"

    def toggler(client, index):
        actions = ("deactivate", "reactivate")
        return [client.post(f"{path}/actions/{actions[(index + n) % 2]}").status_code
                for n in range(10)]

    results = without_errors(race([lambda c=c, i=i: toggler(c, i)
                                   for i, c in enumerate(clients(servers, "togglers", 12))]))
    assert all(code == 204 for result in results for code in result), results
    assert owner.get(path).json()["status"] in ("active", "deactivated")
    assert image_row(url, image_id)["status"] in ("active", "deactivated")


def test_hosts_starting_together_migrate_one_after_another(database_url_factory, tmp_path):
    """Four `glancelite-manage db sync` on an empty database at once: PostgreSQL's advisory
    lock runs them one after another, so all succeed and the schema is at the head."""
    url = database_url_factory("postgresql")
    config, _port = write_config(tmp_path, url)
    command = [str(BIN / "glancelite-manage"), "--config-file", str(config), "db", "sync"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
    outcomes = [(process.wait(timeout=120), process.stderr.read()) for process in processes]
    assert [code for code, _err in outcomes] == [0] * 4, outcomes
    version = subprocess.run([*command[:-2], "db", "version"], capture_output=True, text=True)
    assert version.stdout.strip() == newest_revision(), version
