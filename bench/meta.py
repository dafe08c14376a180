#!/usr/bin/env python3
"""Metadata benchmark: glancelite side by side with a real Glance, same workload, same run.

    .venv/bin/python bench/meta.py [--images N] [--threads T] [--glance-url URL] [--database URL]
                                   [--rounds R] [--new-connections] [--json FILE]

Starts its own glancelite-api (2 workers, gunicorn tuning from conf/gunicorn.conf.py, a
fresh SQLite database in a temporary directory unless --database is given, a free loopback
port, its own process group, stopped at the end) and runs against it — and against the
Glance at --glance-url, when given — the workload of /work/shared/tools/bench-meta.py:

  1. create N images one after another, each with 5 extra properties    -> req/s
  2. GET /v2/images/{id} 2000 times from T threads (cycling over the N)  -> req/s, p50, p99
  3. GET /v2/images?limit=1000, 5 times                                  -> median ms
  4. delete the N images again

Server CPU per request (utime+stime of each server's process group, from /proc) is printed
next to the throughput: on a shared machine it is the steadier figure. Both targets get the
same identity headers (X-Identity-Status: Confirmed, an admin role,
a project of this run), so the work asked of them is identical. Then it prints the ratios
glancelite / Glance next to the targets of the issue: create >= 3x, show >= 3x, list of 1000
in <= 1/3 of Glance's time.

Only loopback URLs are accepted. Self-contained: standard library only.
"""
import argparse
import concurrent.futures as cf
import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from processes import stop_process_group

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SHOW_REQUESTS = 2000
LIST_RUNS = 5
TARGETS = {"create": 3.0, "show": 3.0, "list": 1 / 3}


# -- HTTP ---------------------------------------------------------------------------------

class HttpError(Exception):
    def __init__(self, method, path, status, body):
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:300]!r}")
        self.status = status


class Client:
    """A tiny JSON client on http.client: one connection per thread.

    keepalive=True keeps each thread's connection open between requests (what
    glanceclient/openstacksdk do through requests.Session); keepalive=False opens a new
    connection for every request and sends `Connection: close`, as urllib in
    bench-meta.py does.
    """

    IDLE_RECONNECT = 2.0  # seconds; below gunicorn's keepalive (5 s) and eventlet's

    def __init__(self, base_url, headers, keepalive=True, timeout=300):
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            raise SystemExit(f"refusing {base_url!r}: only http:// on loopback is benchmarked")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.headers = dict(headers)
        self.keepalive = keepalive
        if not keepalive:
            self.headers["Connection"] = "close"
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - self._local.used > self.IDLE_RECONNECT:
            conn.close()
            conn = None
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def raw(self, method, path, body=None, headers=None):
        """(status, body bytes). Idempotent requests are retried once on a dropped connection."""
        data = json.dumps(body).encode() if body is not None else None
        hdrs = dict(self.headers)
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, self.prefix + path, body=data, headers=hdrs)
                response = conn.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                self._drop()
                if attempt or method == "POST":
                    raise
                continue
            self._local.used = time.monotonic()
            if not self.keepalive or response.will_close:
                self._drop()
            return response.status, payload
        raise AssertionError("unreachable")

    def call(self, method, path, body=None, expect=(200, 201, 204)):
        status, payload = self.raw(method, path, body)
        if status not in expect:
            raise HttpError(method, path, status, payload)
        return json.loads(payload) if payload else None


def identity_headers(project, roles=("admin", "member"), user="bench"):
    return {"X-Identity-Status": "Confirmed", "X-Roles": ",".join(roles),
            "X-Project-Id": project, "X-User-Id": user, "Accept": "application/json"}


# -- a glancelite-api of our own ------------------------------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_bin(name):
    """glancelite-api/-manage next to the interpreter running us, else the repo's .venv."""
    for directory in (Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run with the project's .venv/bin/python")
    return found


class GlanceliteServer:
    """glancelite-api in its own process group, with a config written to `directory`.

    conf/gunicorn.conf.py is copied next to the config file, so the server runs with the
    project's shipped gunicorn tuning (gthread workers, 8 threads each).
    """

    def __init__(self, directory, database_url=None, workers=2, overrides=None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{self.directory / 'glancelite.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.directory / "glancelite.conf"
        self.log = self.directory / "api.log"
        sections = {
            "DEFAULT": {"bind_host": "127.0.0.1", "bind_port": self.port, "workers": workers},
            "database": {"connection": self.database_url},
            "glance_store": {"filesystem_store_datadir": str(self.directory / "images")},
            "oslo_policy": {"policy_file": str(REPO / "policies" / "policy.json")},
        }
        for section, options in (overrides or {}).items():
            sections.setdefault(section, {}).update(options)
        self.config.write_text("".join(
            f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())
            for section, options in sections.items()))
        gunicorn_conf = REPO / "conf" / "gunicorn.conf.py"
        if gunicorn_conf.exists():
            shutil.copy(gunicorn_conf, self.directory / "gunicorn.conf.py")
        self.process = None

    def sync(self):
        done = subprocess.run([venv_bin("glancelite-manage"), "--config-file", str(self.config),
                               "db", "sync"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"glancelite-manage db sync failed:\n{done.stdout}{done.stderr}")

    def start(self, timeout=60):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [venv_bin("glancelite-api"), "--config-file", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.directory, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"glancelite-api exited with {self.process.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /versions HTTP/1.0\r\n\r\n")
                    if sock.recv(12).startswith(b"HTTP/"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"glancelite-api did not answer within {timeout}s:\n"
                           f"{self.log.read_text()[-3000:]}")

    @property
    def pgid(self):
        return self.process.pid if self.process else None

    def stop(self):
        stop_process_group(self.process)


# -- server CPU, read from /proc ------------------------------------------------------------

def group_cpu_seconds(pgid):
    """user+system CPU seconds of every live process in process group `pgid`."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after ")": state, ppid, pgrp, ..., utime (12th), stime
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def listener_pgid(port):
    """Process group of the process listening on 127.0.0.1:`port`, or None (not ours to see)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                    return os.getpgid(int(entry))
    return None


# -- the workload ---------------------------------------------------------------------------

def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def run_workload(name, base_url, n_images, threads, keepalive, project, pgid=None, log=print):
    """One pass of the workload against one target; server CPU per request when `pgid`."""
    client = Client(base_url, identity_headers(project), keepalive=keepalive)
    result = {"target": name, "url": base_url, "images": n_images, "threads": threads}

    def cpu():
        return group_cpu_seconds(pgid) if pgid else 0.0

    ids = []
    try:
        log(f"[{name}] creating {n_images} images ...")
        cpu_before, started = cpu(), time.perf_counter()
        for i in range(n_images):
            image = client.call("POST", "/v2/images", {
                "name": f"m{i:05d}", "disk_format": "raw", "container_format": "bare",
                **{f"p{k}": str(i) for k in range(5)}}, expect=(201,))
            ids.append(image["id"])
        result["create_rps"] = n_images / (time.perf_counter() - started)
        if pgid:
            result["create_cpu_ms"] = (cpu() - cpu_before) / n_images * 1e3

        log(f"[{name}] {SHOW_REQUESTS} shows from {threads} threads ...")

        def show(i):
            begin = time.perf_counter()
            client.call("GET", f"/v2/images/{ids[i % len(ids)]}", expect=(200,))
            return time.perf_counter() - begin

        with cf.ThreadPoolExecutor(threads) as pool:
            list(pool.map(show, range(threads * 5)))  # warm-up: connections and caches
            mine, cpu_before = resource.getrusage(resource.RUSAGE_SELF), cpu()
            started = time.perf_counter()
            latencies = sorted(pool.map(show, range(SHOW_REQUESTS)))
            wall = time.perf_counter() - started
            mine_after, cpu_after = resource.getrusage(resource.RUSAGE_SELF), cpu()
        result["show_rps"] = SHOW_REQUESTS / wall
        result["show_p50_ms"] = percentile(latencies, 0.50) * 1e3
        result["show_p99_ms"] = percentile(latencies, 0.99) * 1e3
        result["show_client_cpu"] = ((mine_after.ru_utime - mine.ru_utime)
                                     + (mine_after.ru_stime - mine.ru_stime)) / wall
        if pgid:
            result["show_cpu_ms"] = (cpu_after - cpu_before) / SHOW_REQUESTS * 1e3

        log(f"[{name}] GET /v2/images?limit=1000 x{LIST_RUNS} ...")
        times, listed, list_error, cpu_before = [], None, None, cpu()
        for _ in range(LIST_RUNS):
            begin = time.perf_counter()
            status, payload = client.raw("GET", "/v2/images?limit=1000")
            elapsed = time.perf_counter() - begin
            if status != 200:
                list_error = f"HTTP {status}: {payload[:120].decode(errors='replace')}"
                break
            times.append(elapsed)
            listed = len(json.loads(payload).get("images", []))
        if list_error:
            result["list_error"] = list_error
        else:
            result["list1000_ms"] = statistics.median(times) * 1e3
            result["listed"] = listed
            if pgid:
                result["list_cpu_ms"] = (cpu() - cpu_before) / LIST_RUNS * 1e3
    finally:
        log(f"[{name}] deleting {len(ids)} images ...")
        failed = 0
        for image_id in ids:
            try:
                client.call("DELETE", f"/v2/images/{image_id}", expect=(204,))
            except (HttpError, OSError):
                failed += 1
        if failed:
            log(f"[{name}] WARNING: {failed} deletes failed")
    return result


def format_result(r):
    line = (f"{r['target']:<10} create_rps={r['create_rps']:.0f} show_rps={r['show_rps']:.0f} "
            f"show_p50_ms={r['show_p50_ms']:.1f} show_p99_ms={r['show_p99_ms']:.1f} ")
    if "list1000_ms" in r:
        line += f"list1000_ms={r['list1000_ms']:.0f} listed={r['listed']}"
    else:
        line += f"list1000_ms=n/a ({r['list_error']})"
    if "show_cpu_ms" in r:
        line += (f"  server CPU ms/request: create {r['create_cpu_ms']:.2f} "
                 f"show {r['show_cpu_ms']:.2f} list {r.get('list_cpu_ms', float('nan')):.0f}")
    return line + f"  [client CPU in show: {r['show_client_cpu']:.0%} of a core]"


def ratios(ours, theirs):
    """glancelite / Glance: create and show throughput, list time; CPU per request when known."""
    out = {"create": ours["create_rps"] / theirs["create_rps"],
           "show": ours["show_rps"] / theirs["show_rps"]}
    if "list1000_ms" in ours and "list1000_ms" in theirs:
        out["list"] = ours["list1000_ms"] / theirs["list1000_ms"]
    for key in ("create", "show", "list"):  # Glance's CPU per request / ours: "x less CPU"
        if f"{key}_cpu_ms" in ours and f"{key}_cpu_ms" in theirs:
            out[f"{key}_cpu"] = theirs[f"{key}_cpu_ms"] / ours[f"{key}_cpu_ms"]
    return out


def format_ratios(label, r):
    def verdict(ok):
        return "met" if ok else "NOT met"
    parts = [f"create {r['create']:.2f}x ({verdict(r['create'] >= TARGETS['create'])})",
             f"show {r['show']:.2f}x ({verdict(r['show'] >= TARGETS['show'])})"]
    if "list" in r:
        parts.append(f"list time {r['list']:.2f} = 1/{1 / r['list']:.1f} "
                     f"({verdict(r['list'] <= TARGETS['list'])})")
    else:
        parts.append("list time n/a (a side could not list)")
    line = f"{label}: " + "; ".join(parts)
    if "show_cpu" in r:
        line += ("  | server CPU per request, Glance / glancelite: " + ", ".join(
            f"{key} {r[key + '_cpu']:.1f}x" for key in ("create", "show", "list")
            if key + "_cpu" in r))
    return line


def aggregate(results, best):
    """Per-metric median over rounds, or the best round's value of each metric."""
    merged = dict(results[-1])
    for key, value in results[0].items():
        if not isinstance(value, float):
            continue
        values = [r[key] for r in results if key in r]
        if best:
            higher_is_better = key.endswith("_rps")
            merged[key] = max(values) if higher_is_better else min(values)
        else:
            merged[key] = statistics.median(values)
    return merged


def source_version():
    """The glancelite code measured: HEAD, and how many files under glancelite/ differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                  "glancelite"], capture_output=True, text=True,
                                 timeout=10).stdout.splitlines()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{f' + {len(changed)} uncommitted files' if changed else ''}"


def loadavg():
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().split()[0]
    return "?"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images to create (1000)")
    parser.add_argument("--threads", type=int, default=8, help="threads for the shows (8)")
    parser.add_argument("--glance-url", help="a real Glance on loopback, e.g. http://127.0.0.1:9393")
    parser.add_argument("--glance-pgid", type=int,
                        help="process group of that Glance, for its CPU per request (default: "
                             "found from the process listening on its port, when visible)")
    parser.add_argument("--database", help="database URL for glancelite (default: fresh SQLite)")
    parser.add_argument("--workers", type=int, default=2, help="glancelite-api workers (2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the workload on each target, alternating which goes first; "
                             "prints medians and the best round of each metric (1)")
    parser.add_argument("--new-connections", action="store_true",
                        help="a new TCP connection per request, like bench-meta.py's urllib "
                             "(default: one keep-alive connection per thread)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    glance_pgid = None
    if args.glance_url:
        peer = Client(args.glance_url, {})  # validates: loopback only
        glance_pgid = args.glance_pgid or listener_pgid(peer.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop our server

    def log(message):
        print(message, file=sys.stderr, flush=True)

    project = f"benchmeta-{uuid.uuid4().hex[:8]}"
    keepalive = not args.new_connections
    workdir = Path(tempfile.mkdtemp(prefix="glancelite-bench-meta-"))
    server = GlanceliteServer(workdir, args.database, workers=args.workers)
    rounds = {"glancelite": [], "glance": []}
    load_before = loadavg()
    try:
        log(f"glancelite: db sync + start ({server.database_url.split('@')[-1]}, "
            f"{args.workers} workers) in {workdir}")
        server.sync()
        server.start()
        for number in range(args.rounds):
            plan = [("glancelite", server.url, server.pgid)]
            if args.glance_url:
                plan.append(("glance", args.glance_url.rstrip("/"), glance_pgid))
            if number % 2:
                plan.reverse()
            for name, url, pgid in plan:
                result = run_workload(name, url, args.images, args.threads, keepalive, project,
                                      pgid, log)
                result["round"] = number + 1
                result["loadavg"] = loadavg()
                rounds[name].append(result)
                log(f"round {number + 1}: {format_result(result)}")
    except BaseException:
        if server.process is not None and server.process.poll() is not None:
            log(f"glancelite-api had exited with {server.process.returncode}")
        log(f"kept {workdir} for a look at api.log; its tail:")
        with contextlib.suppress(OSError):
            log(server.log.read_text()[-2000:])
        args.keep = True
        raise
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    summary = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(),
               "code": source_version(), "images": args.images, "threads": args.threads,
               "keepalive": keepalive,
               "rounds": rounds, "loadavg_before": load_before, "loadavg_after": loadavg()}
    print(f"# {summary['date']}, {os.cpu_count()} cores, {args.images} images, "
          f"{args.threads} threads, "
          f"{'keep-alive' if keepalive else 'a new connection per request'}, glancelite on "
          f"{server.database_url.split(':')[0].split('+')[0]} with {args.workers} workers, "
          f"{args.rounds} round(s); load average {load_before} before, "
          f"{summary['loadavg_after']} after; code {summary['code']}")
    for best in ((False, True) if args.rounds > 1 else (False,)):
        label = "best round" if best else ("median" if args.rounds > 1 else "result")
        agg = {name: aggregate(results, best) for name, results in rounds.items() if results}
        summary["best" if best else "median"] = agg
        for name in ("glancelite", "glance"):
            if name in agg:
                print(f"{label + ':':<12}{format_result(agg[name])}")
        if "glance" in agg:
            summary[("best" if best else "median") + "_ratios"] = r = ratios(
                agg["glancelite"], agg["glance"])
            print(format_ratios(f"{label} ratios, glancelite / Glance (targets: create >= 3x, "
                                f"show >= 3x, list <= 1/3)", r))
    if args.rounds > 1 and rounds["glance"]:
        per_round = [ratios(ours, theirs)
                     for ours, theirs in zip(rounds["glancelite"], rounds["glance"], strict=True)]
        summary["ratios_per_round"] = per_round
        print("ratios per round: " + "; ".join(
            f"{key} " + " ".join(f"{r[key]:.2f}" for r in per_round if key in r)
            for key in ("create", "show", "list", "create_cpu", "show_cpu", "list_cpu")
            if key in per_round[0]))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
