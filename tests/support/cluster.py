"""Several glancelite-api servers on one database and one store directory, and checks of
what the database says against what the store holds."""
import contextlib
import hashlib
import io
import os
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support.server import running_server

PART_SUFFIX = ".part"


def merged(*configs):
    result = {}
    for config in configs:
        for section, options in (config or {}).items():
            result.setdefault(section, {}).update(options)
    return result


@contextlib.contextmanager
def cluster(directory, database_url, hosts=2, workers=3, overrides=None):
    """`hosts` servers (each `workers` gunicorn workers) sharing the database and a store
    directory, started at the same time (so their `db sync`s race, as hosts' would).
    Yields their ServerURLs; `.datadir` of each is the shared store directory."""
    datadir = Path(directory) / "shared-store"
    config = merged({"DEFAULT": {"workers": workers},
                     "glance_store": {"filesystem_store_datadir": str(datadir)}}, overrides)
    contexts, started, errors = [None] * hosts, [None] * hosts, []

    def start(index):
        host_dir = Path(directory) / f"host{index}"
        host_dir.mkdir(parents=True, exist_ok=True)
        context = contexts[index] = running_server(host_dir, database_url, config)
        try:
            started[index] = context.__enter__()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(hosts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        if errors:
            raise errors[0]
        for url in started:
            url.datadir = datadir
        yield started
    finally:
        for context, url in zip(contexts, started, strict=True):
            if url is not None:
                context.__exit__(None, None, None)


def query(database_url, sql, **params):
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [row._asdict() for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def image_row(database_url, image_id):
    rows = query(database_url, "SELECT * FROM images WHERE id = :id", id=image_id)
    return rows[0] if rows else None


def partial_files(datadir, image_id=None):
    prefix = f".{image_id}." if image_id else "."
    return [name for name in os.listdir(datadir)
            if name.startswith(prefix) and name.endswith(PART_SUFFIX)]


def wait_for(predicate, timeout=10, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_store_matches_database(datadir, database_url):
    """Once no request runs: no partial files, no leases, no image `saving`; every stored
    file is the bytes of a row that points to it, and every image with data in the store
    has all of them (size and md5 as recorded)."""
    datadir = os.path.realpath(datadir)
    problems = []
    images = {row["id"]: row for row in query(database_url, "SELECT * FROM images")}
    locations = {}
    for row in query(database_url, "SELECT image_id, url FROM image_locations"):
        locations.setdefault(row["image_id"], []).append(row["url"])
    names = os.listdir(datadir) if os.path.isdir(datadir) else []
    problems += [f"partial file left: {name}" for name in names if name.endswith(PART_SUFFIX)]
    for name in names:
        if name.endswith(PART_SUFFIX):
            continue
        row = images.get(name)
        url = f"file://{os.path.join(datadir, name)}"
        if row is None:
            problems.append(f"{name}: bytes without an image row")
        elif url not in locations.get(name, []):
            problems.append(f"{name}: bytes no location points to (status {row['status']})")
        elif row["status"] not in ("active", "deactivated", "pending_delete"):
            problems.append(f"{name}: bytes of an image in status {row['status']}")
    for image_id, row in images.items():
        if row["lease_owner"] is not None or row["status"] == "saving":
            problems.append(f"{image_id}: still {row['status']} under lease {row['lease_owner']}")
        if row["status"] not in ("active", "deactivated"):
            continue
        own = [url for url in locations.get(image_id, []) if url.startswith(f"file://{datadir}/")]
        for url in own:
            path = url[len("file://"):]
            if not os.path.exists(path):
                problems.append(f"{image_id}: {row['status']} without its bytes")
            elif os.path.getsize(path) != row["size"] or _md5(path) != row["checksum"]:
                problems.append(f"{image_id}: {row['status']} with incomplete or wrong bytes")
    return problems


def manage(config_path, *args):
    """`glancelite-manage --config-file CONFIG ARGS` run in this process (no interpreter
    start-up per call); a CompletedProcess with its exit status, stdout and stderr."""
    from glancelite.manage import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--config-file", str(config_path), *args])
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=err)
                code = 1
            else:
                code = exc.code or 0
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
