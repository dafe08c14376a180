#!/usr/bin/env python3
"""Fetch benchmark: `glancelite-compute fetch` next to its baselines, measured in one run.

    .venv/bin/python bench/fetch.py [--size-mib 512] [--runs 3]

Starts a glancelite-api (SQLite, filesystem store with a metadata file, locations shown)
in a temporary directory, uploads one image of random bytes, then measures, --runs times
each, medians printed:

  direct path  `cp` of the store file (no fsync), `cp` + `sync FILE` (what a durable copy
               costs), and `glancelite-compute fetch` choosing the direct-file path: copy
               to .part with md5 + sha512 in two threads, verify, fsync, rename;
  HTTP path    `curl` of GET /v2/images/ID/file into /dev/null (the server's raw download
               speed), and `glancelite-compute fetch --http-only`: the same stream, hashed,
               verified, written and fsync'd;
  floor        md5 + sha512 of the file in two threads (hashing is the fetcher's floor).

Times are wall clock of the whole command (process start included); the page cache is
warm for every reader alike, and os.sync() runs before each step so that writeback of the
previous step's file does not slow the next one down. The compute node's "mount" is the
store directory itself. Only loopback is used; everything is removed at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glancelite.hashing import ParallelHashes  # noqa: E402
from tests.support.databases import sqlite_url  # noqa: E402
from tests.support.server import running_server  # noqa: E402

BIN = Path(sys.executable).parent
MIB = 1 << 20


def log(message):
    print(message, file=sys.stderr, flush=True)


def timed(command, **kwargs):
    os.sync()                    # no dirty pages of the previous step slow this one down
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, done.stdout


def make_file(path, size_mib):
    block = os.urandom(MIB)
    with open(path, "wb") as handle:
        for index in range(size_mib):
            handle.write(index.to_bytes(8, "big") + block[8:])


def hash_floor(path, *algorithms):
    started = time.perf_counter()
    hashes = ParallelHashes(*algorithms)
    with open(path, "rb", buffering=0) as handle:
        while True:
            buffer = bytearray(4 * MIB)
            count = handle.readinto(buffer)
            if not count:
                break
            hashes.update(memoryview(buffer)[:count])
    hashes.hexdigests()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MIB
    root = Path(tempfile.mkdtemp(prefix="glancelite-bench-fetch-"))
    try:
        export = root / "export"
        (export / "images").mkdir(parents=True)
        (root / "server").mkdir()
        (root / "db").mkdir()
        metadata = root / "store-metadata.json"
        metadata.write_text(json.dumps({"id": "bench", "mountpoint": str(export)}))
        overrides = {"DEFAULT": {"show_multiple_locations": True},
                     "glance_store": {"filesystem_store_datadir": str(export / "images"),
                                      "filesystem_store_metadata_file": str(metadata)}}
        source = root / "image.raw"
        log(f"making a {args.size_mib} MiB file")
        make_file(source, args.size_mib)
        with running_server(root / "server", sqlite_url(root / "db"), overrides) as url:
            figures = measure(args, url, root, export, source, size)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(args, figures, size)


def measure(args, url, root, export, source, size):
    created = subprocess.run(
        ["curl", "-sf", "-X", "POST", f"{url}/v2/images", "-H", "Content-Type: application/json",
         "-d", json.dumps({"name": "bench", "disk_format": "raw", "container_format": "bare"})],
        capture_output=True, text=True, check=True)
    image_id = json.loads(created.stdout)["id"]
    log(f"uploading image {image_id}")
    subprocess.run(["curl", "-sf", "-X", "PUT", "-T", str(source), "-H", "Expect:",
                    "-H", "Content-Type: application/octet-stream",
                    f"{url}/v2/images/{image_id}/file"], check=True)
    stored = export / "images" / image_id
    assert stored.stat().st_size == size
    node = root / "node"
    node.mkdir()
    conf = node / "nova.conf"
    conf.write_text(f"[DEFAULT]\ninstances_path = {node / 'instances'}\n"
                    f"[glance]\napi_servers = {url}\nallowed_direct_url_schemes = file\n"
                    f"[image_file_url]\nfilesystems = shared\n"
                    f"[image_file_url:shared]\nid = bench\nmountpoint = {export}\n")
    fetch = [str(BIN / "glancelite-compute"), "--config-file", str(conf), "fetch", image_id,
             "--json"]
    copy_target = node / "copy.raw"
    figures = {name: [] for name in ("cp", "cp+sync", "fetch direct", "curl /dev/null",
                                     "fetch http", "sha512", "md5+sha512", "fetch trusted",
                                     "fetch direct (own)", "fetch http (own)")}
    with open(stored, "rb", buffering=0) as handle:        # warm the page cache
        while handle.read(4 * MIB):
            pass
    for run in range(args.runs):
        log(f"run {run + 1}/{args.runs}")
        copy_target.unlink(missing_ok=True)
        figures["cp"].append(timed(["cp", str(stored), str(copy_target)])[0])
        copy_target.unlink()
        figures["cp+sync"].append(timed(["sh", "-c", 'cp "$1" "$2" && sync "$2"', "sh",
                                         str(stored), str(copy_target)])[0])
        copy_target.unlink()
        for name, extra in (("fetch direct", []), ("fetch http", ["--http-only"]),
                            ("fetch trusted", ["--trust-store"])):
            elapsed, out = timed(fetch + extra)
            result = json.loads(out)
            expected = "http" if name == "fetch http" else "direct-file"
            if result["method"] != expected or result["verified"] != (name != "fetch trusted"):
                raise RuntimeError(f"{name}: unexpected result {result}")
            figures[name].append(elapsed)
            figures.setdefault(f"{name} (own)", []).append(result["seconds"])
            os.unlink(result["path"])
        figures["curl /dev/null"].append(timed(
            ["curl", "-sf", "-o", "/dev/null", f"{url}/v2/images/{image_id}/file"])[0])
        figures["sha512"].append(hash_floor(stored, "sha512"))
        figures["md5+sha512"].append(hash_floor(stored, "md5", "sha512"))
    return figures


def report(args, figures, size):
    speed = {name: size / MIB / statistics.median(times) for name, times in figures.items()}
    print(f"fetch benchmark: {args.size_mib} MiB image, median of {args.runs} runs, "
          f"{os.cpu_count()} CPUs, warm page cache")
    rows = [
        ("direct path", "cp", "cp"),
        ("", "cp + sync FILE", "cp+sync"),
        ("", "glancelite-compute fetch (direct-file)", "fetch direct"),
        ("", "  the same, its own time (after start-up)", "fetch direct (own)"),
        ("", "glancelite-compute fetch --trust-store", "fetch trusted"),
        ("HTTP path", "curl GET /file > /dev/null", "curl /dev/null"),
        ("", "glancelite-compute fetch --http-only", "fetch http"),
        ("", "  the same, its own time (after start-up)", "fetch http (own)"),
        ("floor", "sha512 of the file (what fetch verifies)", "sha512"),
        ("", "md5 + sha512, two threads (--check-md5)", "md5+sha512"),
    ]
    for group, label, key in rows:
        print(f"  {group:<12} {label:<40} {speed[key]:8.0f} MiB/s")
    print(f"  ratios       direct fetch / cp = {speed['fetch direct'] / speed['cp']:.2f}, "
          f"/ (cp + sync) = {speed['fetch direct'] / speed['cp+sync']:.2f}; "
          f"http fetch / curl = {speed['fetch http'] / speed['curl /dev/null']:.2f}")


if __name__ == "__main__":
    main()
