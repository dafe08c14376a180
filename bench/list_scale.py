#!/usr/bin/env python3
"""List latency at 1k and at 100k images on PostgreSQL, through the HTTP API.

    .venv/bin/python bench/list_scale.py [--pg-url URL] [--sizes 1000,100000] [--runs 15]

Creates its own database (glancelite_bench_<random>) on the PostgreSQL server of --pg-url,
migrates it with `glancelite-manage db sync`, and seeds it by bulk INSERTs through SQLAlchemy
(executemany into the migrated tables: images, image_properties, image_tags, image_members
and, when the schema has it, image_locations). At each size it runs ANALYZE, starts a
glancelite-api on that database (2 workers, its own process group, a free loopback port)
and times, as a non-admin project and as an admin:

  default     GET /v2/images                    (limit_param_default, 25)
  limit1000   GET /v2/images?limit=1000
  property    GET /v2/images?os_distro=debian   (an extra property, 10% of the images)
  prop-rare   GET /v2/images?build=b<k>         (an extra property matching one image)
  owner       GET /v2/images?owner=proj-007     (1% of the images)
  deep-page   GET /v2/images?marker=<id>        (marker 90% deep in the caller's list,
                                                 or 26 from its end if that is less)

each the median of --runs requests (interleaved, after two warm-ups); then prints 100k / 1k per query next
to the target (<= 2x). The data grow proportionally (100 projects, 5% public, 2% community,
40% shared with two members, 2% deleted, 0.5% hidden, 4 extra properties, some tags), so the
share of the rows each caller sees stays the same at every size. The database is dropped at
the end (--keep-db keeps it).
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meta import Client, GlanceliteServer, identity_headers, loadavg, source_version  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROJECTS = 100
ME = "proj-007"           # the non-admin caller
DISTROS = ("debian", "ubuntu", "centos", "fedora", "rocky", "alma", "suse", "arch", "cirros",
           "windows")
BASE_TIME = datetime(2024, 1, 1)
NAMESPACE = uuid.UUID("6f1d3c1e-3b8e-4d59-9a0b-6c0f5f0b1e01")
TARGET = 2.0


# -- the synthetic registry: every attribute a pure function of the image number i ---------

def image_id(i):
    return str(uuid.uuid5(NAMESPACE, f"image-{i}"))


def owner(i):
    return f"proj-{i % PROJECTS:03d}"


def visibility(i):
    if i % 20 == 0:
        return "public"
    if i % 50 == 1:
        return "community"
    if i % 5 in (2, 3):
        return "shared"
    return "private"


def deleted(i):
    return i % 50 == 25


def hidden(i):
    return i % 200 == 13


def members(i):
    """(project, status) of a shared image's members."""
    if visibility(i) != "shared" or deleted(i):
        return ()
    return ((owner(i + 1), "accepted"), (owner(i + 2), "pending"))


def status(i):
    if deleted(i):
        return "deleted"
    return "queued" if i % 10 == 9 else "active"


def listed_for(i, project, is_admin):
    """Mirror of Glance's default list rules, to pick markers the caller can page from."""
    if deleted(i) or hidden(i) or status(i) == "killed":
        return False
    vis = visibility(i)
    if vis == "community" and owner(i) != project:
        return False  # others' community images only with ?visibility=community
    if is_admin:
        return True
    return (vis == "public" or owner(i) == project
            or (vis == "shared" and (project, "accepted") in members(i)))


def rows(start, stop, tables):
    images, props, tags, mems, locs = [], [], [], [], []
    for i in range(start, stop):
        iid, created = image_id(i), BASE_TIME + timedelta(seconds=i)
        active = status(i) == "active"
        images.append({
            "id": iid, "name": f"img-{i:06d}", "disk_format": ("qcow2", "raw")[i % 2],
            "container_format": "bare", "size": 2_000_000 + i if active else None,
            "virtual_size": None, "status": status(i), "visibility": visibility(i),
            "checksum": hashlib.md5(iid.encode()).hexdigest() if active else None,
            "os_hash_algo": "sha512" if active else None,
            "os_hash_value": hashlib.sha512(iid.encode()).hexdigest() if active else None,
            "min_disk": 0, "min_ram": 0, "protected": False, "os_hidden": hidden(i),
            "owner": owner(i), "created_at": created, "updated_at": created,
            "deleted": deleted(i), "deleted_at": created if deleted(i) else None,
        })
        if deleted(i):
            continue
        for name, value in (("os_distro", DISTROS[i % len(DISTROS)]), ("os_version", str(i % 7)),
                            ("build", f"b{i}"), ("hw_disk_bus", "virtio")):
            props.append({"image_id": iid, "name": name, "value": value})
        if i % 4 == 0:
            tags.append({"image_id": iid, "value": "gold"})
        if i % 10 == 3:
            tags.append({"image_id": iid, "value": "beta"})
        for member, member_status in members(i):
            mems.append({"image_id": iid, "member": member, "status": member_status,
                         "created_at": created, "updated_at": created})
        if active and "image_locations" in tables:
            locs.append({"image_id": iid, "url": f"file:///var/lib/glancelite/images/{iid}",
                         "metadata": {}, "created_at": created})
    return {"images": images, "image_properties": props, "image_tags": tags,
            "image_members": mems, "image_locations": locs}


def seed(engine, start, stop, chunk=5000):
    """Bulk INSERT images start..stop-1 with their properties, tags, members, locations."""
    meta = sa.MetaData()
    meta.reflect(engine, only=lambda name, _m: name.startswith("image"))
    tables = meta.tables
    began = time.perf_counter()
    with engine.begin() as conn:
        for first in range(start, stop, chunk):
            batch = rows(first, min(first + chunk, stop), tables)
            for name in ("images", "image_properties", "image_tags", "image_members",
                         "image_locations"):
                if batch[name]:
                    conn.execute(tables[name].insert(), batch[name])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    return time.perf_counter() - began


# -- database of our own --------------------------------------------------------------------

class BenchDatabase:
    def __init__(self, server_url):
        self.server_url = make_url(server_url)
        self.name = f"glancelite_bench_{uuid.uuid4().hex[:10]}"
        self.url = self.server_url.set(database=self.name)
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()

    @property
    def url_string(self):
        return self.url.render_as_string(hide_password=False)

    def drop(self):
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


# -- measuring ------------------------------------------------------------------------------

def queries(size, project, is_admin):
    visible = [i for i in range(size - 1, -1, -1) if listed_for(i, project, is_admin)]
    marker = image_id(visible[max(0, min(int(len(visible) * 0.9), len(visible) - 26))])
    rare = next(i for i in range(size // 2, size) if listed_for(i, project, is_admin))
    return {
        "default": "/v2/images",
        "limit1000": "/v2/images?limit=1000",
        "property": "/v2/images?os_distro=debian",
        "prop-rare": f"/v2/images?build=b{rare}",
        "owner": f"/v2/images?owner={ME}",
        "deep-page": f"/v2/images?marker={marker}",
    }


CALLERS = (("non-admin", ME, ("member",), False), ("admin", "proj-admin", ("admin",), True))


def run_size(server, size, runs, log):
    """Every query `runs` times (after two warm-ups), interleaved: a burst of load from
    elsewhere on the machine then lands on several queries a little, not on one a lot."""
    plan = []
    for label, project, roles, is_admin in CALLERS:
        client = Client(server.url, identity_headers(project, roles, user=f"u-{project}"))
        plan += [(f"{label} {name}", client, path)
                 for name, path in queries(size, project, is_admin).items()]
    times = {key: [] for key, _client, _path in plan}
    results = {key: {"path": path} for key, _client, path in plan}
    for n in range(runs + 2):
        for key, client, path in plan:
            if "error" in results[key]:
                continue
            begin = time.perf_counter()
            status_code, payload = client.raw("GET", path)
            elapsed = time.perf_counter() - begin
            if status_code != 200:
                results[key]["error"] = (f"HTTP {status_code}: "
                                         f"{payload[:160].decode(errors='replace')}")
                continue
            results[key]["count"] = len(json.loads(payload).get("images", []))
            if n >= 2:
                times[key].append(elapsed)
    for key, outcome in results.items():
        if "error" not in outcome:
            outcome["ms"] = statistics.median(times[key]) * 1e3
            outcome["min_ms"] = min(times[key]) * 1e3
            log(f"  {size:>6} {key:<20} {outcome['ms']:8.1f} ms median, "
                f"{outcome['min_ms']:6.1f} min  ({outcome['count']} images)")
        else:
            log(f"  {size:>6} {key:<20} {outcome['error']}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=DEFAULT_PG,
                        help=f"PostgreSQL server to make the bench database on ({DEFAULT_PG})")
    parser.add_argument("--sizes", default="1000,100000", help="image counts (1000,100000)")
    parser.add_argument("--runs", type=int, default=15, help="timed requests per query (15)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the server, drop the db
    sizes = sorted(int(s) for s in args.sizes.split(","))
    host = make_url(args.pg_url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing PostgreSQL on {host!r}: loopback only")

    def log(message):
        print(message, file=sys.stderr, flush=True)

    database = BenchDatabase(args.pg_url)
    workdir = Path(tempfile.mkdtemp(prefix="glancelite-bench-list-"))
    server = GlanceliteServer(workdir, database.url_string, workers=args.workers)
    engine = sa.create_engine(database.url)
    report = {"sizes": {}, "seed_seconds": {}}
    try:
        log(f"database {database.name}: db sync")
        server.sync()
        seeded = 0
        for size in sizes:
            took = seed(engine, seeded, size)
            report["seed_seconds"][size] = took
            log(f"seeded images {seeded}..{size - 1} in {took:.1f} s (incl. ANALYZE)")
            seeded = size
            server.start()
            try:
                report["sizes"][size] = run_size(server, size, args.runs, log)
            finally:
                server.stop()
    finally:
        server.stop()
        engine.dispose()
        if args.keep_db:
            log(f"kept database {database.url.render_as_string(hide_password=True)}")
        else:
            database.drop()
        shutil.rmtree(workdir, ignore_errors=True)

    small, large = sizes[0], sizes[-1]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {os.cpu_count()} cores, PostgreSQL, "
          f"glancelite-api {args.workers} workers, medians of {args.runs}; load average "
          f"{loadavg()}; seeding "
          + ", ".join(f"{s} images {t:.1f} s" for s, t in report["seed_seconds"].items())
          + f"; code {source_version()}")
    print(f"{'query':<22} {small:>8}  {large:>8}  ratio   target <= {TARGET:g}x   "
          f"(min-time ratio; images returned)")
    ratios, footnote = {}, False
    for key, first in report["sizes"][small].items():
        last = report["sizes"][large][key]
        if "ms" not in first or "ms" not in last:
            print(f"{key:<22} {first.get('error') or last.get('error')}")
            continue
        ratio = last["ms"] / first["ms"]
        ratios[key] = ratio
        uneven = first["count"] != last["count"]
        footnote = footnote or uneven
        print(f"{key:<22} {first['ms']:6.1f}ms  {last['ms']:6.1f}ms  {ratio:5.2f}x  "
              f"{'met' if ratio <= TARGET else 'NOT met':<8}{'*' if uneven else ' '}      "
              f"({last['min_ms'] / first['min_ms']:.2f}x; {first['count']} / {last['count']})")
    if footnote:
        print("* the page holds fewer images at the small size (the caller sees fewer), so "
              "this ratio also counts the bigger response, not only the bigger registry")
    report["ratios"] = ratios
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
