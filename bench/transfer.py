#!/usr/bin/env python3
"""Transfer benchmark: image upload/download through glancelite (and a real Glance) next to
the machine's raw limits, all measured in the same run.

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--runs 3]
                                       [--glance-url http://127.0.0.1:9393 --glance-pgid PGID]
                                       [--chunked] [--cold-download] [--keep-cache]
                                       [--json FILE]
                                       [--profile DIR [--profile-native]]
                                       [--s3 [--s3-size-mib 256] [--s3-chunk-mib 10]
                                             [--s3-threads 10]]

What one run does (figures are medians over --runs; each run measures everything again, so
the limits and the services see the same machine state):

  limits   disk write + fsync   copy the test file, 1 MiB writes, fsync, into the temp dir
                                (same file system as the image store)
           disk read            that copy read back at once with O_DIRECT, 4 MiB reads: what
                                a download of an image not in the page cache can reach
           page-cache read      read the test file, 1 MiB at a time
           md5+sha512           both hashes of the file in two threads fed 1 MiB chunks
                                through bounded queues (hashlib drops the GIL), i.e. what an
                                upload must compute at best
           loopback PUT / GET   curl against a bare HTTP server in this process: a PUT
                                whose body is recv_into() one reused buffer and dropped, a
                                GET answered with sendfile(2) - what an upload's receiving
                                and a download can reach at best
           with the CPU seconds per GiB each of these took in this process (for the
           loopback ones: the bare server's side), and their sum sink + disk + hash, the
           CPU floor of an upload that stores and hashes
  services for glancelite (started here) and, with --glance-url, the Glance there:
           create an image (raw/bare), os.sync(), 1 s of watching the server's CPU while
           nothing is sent to it (other clients of a shared Glance would show here, and
           are warned about), PUT /v2/images/{id}/file with curl,
           os.sync(), GET /v2/images/{id}/file with curl into /dev/null; around each
           transfer the server's CPU seconds (utime+stime of every process in its process
           group, from /proc/PID/stat) and the RSS of each of its processes, sampled every
           10 ms (glancelite's: also VmHWM after resetting it via /proc/PID/clear_refs),
           and the whole machine's busy CPU (/proc/stat: every process and interrupt).
           Then, untimed: the image must be active with the file's size and md5, and a
           second download is hashed (md5+sha512) and compared with the file. The image is
           deleted.

The client is curl (C, 100 KiB buffers, into /dev/null): it needs a small fraction of a core,
where a Python client would take a core's worth of CPU away from a 2-core server. The
client's CPU time is printed too, so its share is visible. Under the upload target the
report adds the CPU ceiling of any upload on this machine: the cores divided by the CPU
that receiving (the sink), both hashes and curl need per GiB - when the hashes are the lower
limit, an upload cannot beat that ratio however cheap its write is. `Expect: 100-continue` is
switched off (glanceclient and openstacksdk do not send it); --chunked uploads with
`Transfer-Encoding: chunked` (what glanceclient does) instead of Content-Length.
--cold-download empties the page cache before each download (root only): both services then
serve an image that is not in memory, as a registry with more images than RAM mostly does.

glancelite runs with 2 workers, a fresh SQLite database and a filesystem store in a temporary
directory under $TMPDIR (default /tmp), in its own process group, with conf/gunicorn.conf.py
copied next to its config; it is stopped and the directory removed at the end. Only loopback
URLs are accepted. Every image created here is deleted, also on errors and Ctrl-C.

--profile DIR: after the measured runs, one more glancelite upload and download under
`py-spy record --subprocesses` (py-spy from the venv or PATH); raw stacks go to DIR and the
hottest lines (self samples, file:line) are printed. Not part of the figures: py-spy takes
CPU of its own.

--s3: also starts moto's ThreadedMotoServer (in a child process of its own, own process
group, on a free loopback port) and a second glancelite-api whose [glance_store] is
default_store = s3 on it (part size --s3-chunk-mib, --s3-threads parts in flight). Each run
then measures, with an --s3-size-mib file (moto keeps objects in RAM: keep it a few hundred
MiB): plain boto3 against moto - upload_fileobj (multipart, the same part size and threads,
the client configured as glancelite's store configures its own), download_fileobj into
/dev/null, and one streamed get_object read 1 MiB at a time (how glancelite reads) - which is
the S3 server's own speed; then glancelite's upload and download through the API with the S3
store (curl, as above, data verified). moto's CPU is measured for each, and glancelite ÷ plain
boto3 is printed. Objects are deleted after each measurement; moto is stopped at the end.

Targets (from the issue): upload >= 0.8 x min(disk write, md5+sha512) at <= 4 CPU-s/GiB;
download >= Glance's MiB/s at <= 1/3 of Glance's CPU-s/GiB; peak worker RSS growth during a
transfer < 64 MiB.
"""
import argparse
import contextlib
import hashlib
import http.client
import json
import mmap
import os
import platform
import queue
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
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from processes import stop_process_group

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
GIB = 1 << 30
BLOCK = MIB
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
IDENTITY = {"X-Identity-Status": "Confirmed", "X-Roles": "admin,member",
            "X-Project-Id": "bench-transfer", "X-User-Id": "bench-transfer"}
CURL_WRITE_OUT = "%{http_code} %{time_total} %{size_upload} %{size_download}"

UPLOAD_FRACTION_TARGET = 0.8
UPLOAD_CPU_TARGET = 4.0            # CPU seconds per GiB
DOWNLOAD_SPEED_TARGET = 1.0        # x Glance's MiB/s
DOWNLOAD_CPU_TARGET = 1 / 3        # x Glance's CPU seconds per GiB
RSS_GROWTH_TARGET_MIB = 64
IDLE_PROBE_SECONDS = 1.0
BUSY_IDLE_CPU_PCT = 3.0            # more than this while idle: someone else is using the server


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- /proc: CPU and memory of a process group -------------------------------------------------

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 is field 3, `state`)."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def group_pids(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(entry)[2]) == pgid:
                    pids.append(int(entry))
            except (OSError, IndexError):
                continue
    return sorted(pids)


def cpu_seconds(pids):
    """(utime, stime) in seconds of the given processes (all threads, live and finished)."""
    user = system = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat_fields(pid)
            user += int(fields[11])
            system += int(fields[12])
    return user / TICK, system / TICK


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    """Resident set size from /proc/PID/statm (cheaper to read than /status)."""
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_KIB


class ServerWatch:
    """CPU seconds and peak RSS growth of a process group while a `with` block runs.

    RSS is sampled every `interval` seconds in a thread; with reset_hwm (only for
    processes this script started) each process's VmHWM is also reset before and read
    after, which catches peaks shorter than the sampling interval.
    """

    def __init__(self, pgid, reset_hwm=False, interval=0.01):
        self.pgid = pgid
        self.reset_hwm = reset_hwm
        self.interval = interval
        self.cpu = None
        self.rss_growth_kib = {}

    def __enter__(self):
        self.pids = group_pids(self.pgid) if self.pgid else []
        self.base = {}
        for pid in self.pids:
            with contextlib.suppress(OSError):
                if self.reset_hwm:
                    with open(f"/proc/{pid}/clear_refs", "w") as handle:
                        handle.write("5")
                self.base[pid] = rss_kib(pid)
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.cpu0 = cpu_seconds(self.pids)
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            for pid in self.base:
                with contextlib.suppress(OSError):
                    rss = rss_kib(pid)
                    if rss > self.peak[pid]:
                        self.peak[pid] = rss

    def __exit__(self, *exc):
        cpu1 = cpu_seconds(self.pids)
        self._stop.set()
        self._thread.join()
        if self.pids:
            self.cpu_user = cpu1[0] - self.cpu0[0]
            self.cpu_system = cpu1[1] - self.cpu0[1]
            self.cpu = self.cpu_user + self.cpu_system
            if group_pids(self.pgid) != self.pids:
                log(f"  warning: process group {self.pgid} changed during the transfer "
                    f"(a worker restarted?); its CPU figure is incomplete")
        for pid, base in self.base.items():
            peak = self.peak[pid]
            if self.reset_hwm:
                with contextlib.suppress(OSError):
                    peak = max(peak, status_kib(pid, "VmHWM"))
            self.rss_growth_kib[pid] = peak - base
        return False

    @property
    def max_growth_mib(self):
        return max(self.rss_growth_kib.values(), default=0) / 1024


def machine_busy_seconds():
    """CPU seconds the whole machine has spent busy: every process, the kernel and its
    interrupts (from /proc/stat). A transfer's cost can land outside the server's processes:
    the first touch of pages a disk read has just filled is paid by whoever reads them (the
    client, on this VM), and interrupt time is nobody's."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / TICK


def drop_page_cache():
    """Empty the page cache (root only): the next read of any file goes to the disk."""
    with open("/proc/sys/vm/drop_caches", "w") as control:
        control.write("1\n")


def loadavg():
    with open("/proc/loadavg") as handle:
        return tuple(float(x) for x in handle.read().split()[:3])


# -- raw limits ----------------------------------------------------------------------------

class TwoHashes:
    """md5 and sha512 of a stream, one thread each, fed through queues of 4 chunks."""

    def __init__(self):
        self.hashers = [hashlib.md5(usedforsecurity=False), hashlib.sha512()]
        self.queues = [queue.Queue(4) for _ in self.hashers]
        self.threads = [threading.Thread(target=self._run, args=pair, daemon=True)
                        for pair in zip(self.hashers, self.queues, strict=True)]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _run(hasher, chunks):
        while (chunk := chunks.get()) is not None:
            hasher.update(chunk)

    def update(self, chunk):
        for chunks in self.queues:
            chunks.put(chunk)

    def hexdigests(self):
        for chunks in self.queues:
            chunks.put(None)
        for thread in self.threads:
            thread.join()
        return self.hashers[0].hexdigest(), self.hashers[1].hexdigest()


def limit_disk_write(source, target):
    """MiB/s of copying `source` into a new file `target` and fsync'ing it."""
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    os.sync()
    with open(source, "rb", buffering=0) as src:
        started = time.perf_counter()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            total = 0
            while n := src.readinto(buffer):
                written = 0
                while written < n:
                    written += os.write(fd, view[written:n])
                total += n
            os.fsync(fd)
        finally:
            os.close(fd)
        elapsed = time.perf_counter() - started
    return total / MIB / elapsed


def limit_disk_read(path):
    """MiB/s of reading a file just written from the disk itself (O_DIRECT, 4 MiB reads):
    the most a download of a new image that is not in the page cache can reach."""
    buffer = mmap.mmap(-1, 4 * MIB)  # page-aligned, as O_DIRECT wants
    total = 0
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        while n := os.readv(fd, [buffer]):
            total += n
    finally:
        os.close(fd)
        buffer.close()
    return total / MIB / (time.perf_counter() - started)


def limit_read(source):
    buffer = bytearray(BLOCK)
    total = 0
    started = time.perf_counter()
    with open(source, "rb", buffering=0) as src:
        while n := src.readinto(buffer):
            total += n
    return total / MIB / (time.perf_counter() - started)


def limit_hash(source):
    """MiB/s of md5+sha512 in two threads over fresh 1 MiB chunks (as a server gets them)."""
    started = time.perf_counter()
    hashes = TwoHashes()
    total = 0
    with open(source, "rb", buffering=0) as src:
        while chunk := src.read(BLOCK):
            hashes.update(chunk)
            total += len(chunk)
    hashes.hexdigests()
    return total / MIB / (time.perf_counter() - started)


class BareServer:
    """A bare HTTP/1.1 server on loopback, the floor for both directions.

    GET: the test file with sendfile(2). PUT: the body read with recv_into() into one reused
    1 MiB buffer and dropped, then 204. One connection at a time, `Connection: close`.
    """

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.setblocking(True)
                self._answer(conn)

    def _answer(self, conn):
        request = b""
        while b"\r\n\r\n" not in request:
            more = conn.recv(65536)
            if not more:
                return
            request += more
        head, _, body = request.partition(b"\r\n\r\n")
        if head.startswith(b"PUT "):
            length = 0
            for header in head.split(b"\r\n")[1:]:
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            left = length - len(body)
            buffer = memoryview(bytearray(BLOCK))
            while left > 0:
                got = conn.recv_into(buffer, min(left, BLOCK))
                if not got:
                    return
                left -= got
            conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % self.size)
        with open(self.path, "rb") as data:
            conn.sendfile(data)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()


def own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_limits(source, workdir, bare, curl):
    """MiB/s of each raw limit, and the CPU seconds per GiB this process spent on it.

    For the loopback ones the CPU is the bare server's (a thread of this process), so
    they are the CPU floor of a server's side of an upload or a download.
    """
    gib = os.path.getsize(source) / GIB
    figures = {}
    scratch = Path(workdir) / "disk-limit.bin"
    try:
        for key, measure in (("disk", lambda: limit_disk_write(source, scratch)),
                             ("disk_read", lambda: limit_disk_read(scratch)),
                             ("read", lambda: limit_read(source)),
                             ("hash", lambda: limit_hash(source))):
            cpu0 = own_cpu()
            figures[key] = measure()
            figures[key + "_cpu"] = (own_cpu() - cpu0) / gib
    finally:
        scratch.unlink(missing_ok=True)
    # always Content-Length framing: the bare sink does not decode chunked bodies
    headers = {"Content-Type": "application/octet-stream", "Expect": ""}
    cpu0 = own_cpu()
    got = curl(bare.url, "-T", str(source), headers=headers)
    figures["sink"] = got["uploaded"] / MIB / got["seconds"]
    figures["sink_cpu"] = (own_cpu() - cpu0) / gib
    cpu0 = own_cpu()
    got = curl(bare.url)
    figures["sendfile"] = got["downloaded"] / MIB / got["seconds"]
    figures["sendfile_cpu"] = (own_cpu() - cpu0) / gib
    return figures


# -- curl and a small API client --------------------------------------------------------------

class Curl:
    """Runs curl against loopback only, returns its -w figures plus its own CPU seconds."""

    def __init__(self):
        self.binary = shutil.which("curl")
        if not self.binary:
            raise SystemExit("curl not found (apt-get install curl)")

    def __call__(self, url, *args, headers=None):
        check_loopback(url)
        command = [self.binary, "-sS", "--noproxy", "*", "--max-time", "3600",
                   "-o", "/dev/null", "-w", CURL_WRITE_OUT]
        for name, value in (headers or {}).items():
            command += ["-H", f"{name}: {value}" if value else f"{name}:"]  # empty: drop it
        command += [*args, url]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"curl {url} failed ({done.returncode}): {done.stderr.strip()}")
        code, seconds, uploaded, downloaded = done.stdout.split()
        return {"status": int(code), "seconds": float(seconds), "uploaded": int(uploaded),
                "downloaded": int(downloaded),
                "client_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def check_loopback(url):
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing {url!r}: only http:// on loopback is benchmarked")
    return parts


class Api:
    """Just the Glance v2 calls this benchmark needs, on http.client (one request each)."""

    def __init__(self, base_url):
        parts = check_loopback(base_url)
        self.base_url = base_url.rstrip("/")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")

    def _connection(self, timeout=600):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, method, path, body=None, expect=(200, 201, 204)):
        headers = dict(IDENTITY, Accept="application/json")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, self.prefix + path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.status not in expect:
            raise RuntimeError(f"{method} {self.base_url}{path} -> {response.status}: "
                               f"{payload[:300]!r}")
        return json.loads(payload) if payload else None

    def file_url(self, image_id):
        return f"{self.base_url}/v2/images/{image_id}/file"

    def hash_download(self, image_id):
        """(size, md5, sha512) of the image data as the API serves it."""
        conn = self._connection()
        try:
            conn.request("GET", f"{self.prefix}/v2/images/{image_id}/file", headers=IDENTITY)
            response = conn.getresponse()
            if response.status != 200:
                raise RuntimeError(f"verification download of {image_id}: {response.status}")
            hashes, size = TwoHashes(), 0
            while chunk := response.read(BLOCK):
                hashes.update(chunk)
                size += len(chunk)
            return (size, *hashes.hexdigests())
        finally:
            conn.close()


# -- glancelite-api of our own ----------------------------------------------------------------

def venv_tool(name):
    for directory in (Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (directory / name).is_file():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found; run this with the project's .venv/bin/python")
    return found


class OwnGlancelite:
    """glancelite-api with SQLite and a filesystem store under `directory` (or the
    [glance_store] options `store`), in its own process group."""

    def __init__(self, directory, workers=2, store=None):
        self.directory = Path(directory)
        self.store = store or {"default_store": "file",
                               "filesystem_store_datadir": self.directory / "images"}
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.directory / "glancelite.conf"
        self.log_path = self.directory / "api.log"
        self.workers = workers
        self.process = None

    def start(self, timeout=60):
        self.config.write_text(
            "[DEFAULT]\n"
            f"bind_host = 127.0.0.1\nbind_port = {self.port}\nworkers = {self.workers}\n"
            "[database]\n"
            f"connection = sqlite:///{self.directory / 'glancelite.db'}\n"
            "[glance_store]\n"
            + "".join(f"{key} = {value}\n" for key, value in self.store.items()) +
            "[oslo_policy]\n"
            f"policy_file = {REPO / 'policies' / 'policy.json'}\n")
        tuning = REPO / "conf" / "gunicorn.conf.py"
        if tuning.is_file():  # glancelite-api reads it from next to the config file
            shutil.copyfile(tuning, self.directory / "gunicorn.conf.py")
        synced = subprocess.run([venv_tool("glancelite-manage"), "--config-file", str(self.config),
                                 "db", "sync"], capture_output=True, text=True, timeout=300)
        if synced.returncode != 0:
            raise RuntimeError(f"db sync failed:\n{synced.stdout}{synced.stderr}")
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                [venv_tool("glancelite-api"), "--config-file", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.directory, start_new_session=True)
        deadline = time.monotonic() + timeout
        api = Api(self.url)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"glancelite-api exited ({self.process.returncode}):\n"
                                   f"{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError, RuntimeError, http.client.HTTPException):
                api.call("GET", "/versions", expect=(200, 300))
                # all workers forked and answering: 1 arbiter + N workers in the group
                if len(group_pids(self.pgid)) >= self.workers + 1:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"glancelite-api not up within {timeout}s:\n"
                           f"{self.log_path.read_text()[-3000:]}")

    @property
    def pgid(self):
        return self.process.pid

    def stop(self):
        stop_process_group(self.process)


# -- one service, one run ---------------------------------------------------------------------

class Target:
    def __init__(self, name, url, pgid, own):
        self.name, self.url, self.pgid, self.own = name, url, pgid, own
        self.api = Api(url)
        self.live_images = set()
        self.figures = defaultdict(list)

    def cleanup(self):
        for image_id in sorted(self.live_images):
            try:
                self.api.call("DELETE", f"/v2/images/{image_id}", expect=(204, 404))
                self.live_images.discard(image_id)
            except Exception as exc:  # keep cleaning the others
                log(f"  could not delete {self.name} image {image_id}: {exc}")


def transfer_once(target, curl, source, digests, chunked, run, verify=True, backend=None,
                  cold_download=False):
    """Upload then download one image; returns this run's figures for `target`.

    cold_download: empty the page cache before the download, so that it reads the disk
    (the test file is read back into the cache at once: only the image is cold).

    backend: the process group of the service behind the store (moto): its CPU seconds
    per GiB during each transfer are recorded too, as upload_backend_cpu and
    download_backend_cpu."""
    size = os.path.getsize(source)
    image = target.api.call("POST", "/v2/images", {
        "name": f"bench-transfer-{run}", "disk_format": "raw", "container_format": "bare"})
    image_id = image["id"]
    target.live_images.add(image_id)
    headers = dict(IDENTITY, **{"Content-Type": "application/octet-stream", "Expect": ""})
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    figures = {}
    try:
        os.sync()  # start from clean page cache state: no writeback of earlier files running
        if target.pgid:
            # CPU the server burns while this script sends it nothing: other clients at work
            # (their requests would be counted in the figures below too)
            pids = group_pids(target.pgid)
            before = sum(cpu_seconds(pids))
            time.sleep(IDLE_PROBE_SECONDS)
            figures["idle_cpu_pct"] = 100 * (sum(cpu_seconds(pids)) - before) / IDLE_PROBE_SECONDS
        with ServerWatch(backend) as behind, ServerWatch(target.pgid, reset_hwm=target.own) as watch:
            busy = machine_busy_seconds()
            up = curl(target.api.file_url(image_id), "-T", str(source), headers=headers)
            up["machine_cpu"] = machine_busy_seconds() - busy
        # (chunked: curl counts the chunk framing too; the image's size is checked below)
        if up["status"] != 204 or up["uploaded"] < size:
            raise RuntimeError(f"{target.name} upload: HTTP {up['status']}, "
                               f"{up['uploaded']} of {size} bytes sent")
        figures.update(_transfer_figures("upload", size, up, watch, behind))

        shown = target.api.call("GET", f"/v2/images/{image_id}")
        if shown["status"] != "active" or shown["size"] != size or shown["checksum"] != digests[0]:
            raise RuntimeError(f"{target.name}: after upload the image is {shown['status']}, "
                               f"size {shown['size']}, checksum {shown['checksum']} "
                               f"(expected active, {size}, {digests[0]})")
        if shown.get("os_hash_value") not in (None, digests[1]):
            raise RuntimeError(f"{target.name}: os_hash_value does not match the file's sha512")

        os.sync()
        if cold_download:
            drop_page_cache()
            limit_read(source)  # the next upload reads its file from memory again
        with ServerWatch(backend) as behind, ServerWatch(target.pgid, reset_hwm=target.own) as watch:
            busy = machine_busy_seconds()
            down = curl(target.api.file_url(image_id), headers=IDENTITY)
            down["machine_cpu"] = machine_busy_seconds() - busy
        if down["status"] != 200 or down["downloaded"] != size:
            raise RuntimeError(f"{target.name} download: HTTP {down['status']}, "
                               f"{down['downloaded']} of {size} bytes received")
        figures.update(_transfer_figures("download", size, down, watch, behind))

        if verify:  # untimed: the bytes served are the bytes uploaded
            got = target.api.hash_download(image_id)
            if got != (size, *digests):
                raise RuntimeError(f"{target.name}: downloaded data differs from the file "
                                   f"(size {got[0]}, md5 {got[1]})")
            figures["verified"] = 1
    finally:
        target.api.call("DELETE", f"/v2/images/{image_id}", expect=(204, 404))
        target.live_images.discard(image_id)
    return figures


# -- S3: moto, plain boto3, and glancelite with the S3 store ------------------------------------

S3_ACCESS_KEY = "AKIABENCHTRANSFER000"
S3_SECRET_KEY = "bench/transfer/moto/accepts/any/key"
S3_BUCKET = "glancelite-bench-transfer"
# moto's ThreadedMotoServer in a process of its own (own GIL and process group, so that its
# CPU is measured apart from the plain boto3 client's); SIGTERM ends it.
MOTO_SERVER_CODE = """
import logging, signal, sys
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
print("ready", flush=True)
while True:
    signal.pause()
"""


class MotoServer:
    """moto's S3 on a free loopback port, in a child process with its own process group."""

    def __init__(self, directory):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(directory) / "moto.log"
        self.process = None

    def start(self, timeout=60):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=S3_ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=S3_SECRET_KEY)
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", MOTO_SERVER_CODE, str(self.port)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited ({self.process.returncode}):\n"
                                   f"{self.log_path.read_text()[-3000:]}")
            if b"ready" in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"moto server not up within {timeout}s")

    @property
    def pgid(self):
        return self.process.pid

    def client(self, threads):
        """A boto3 client set up as glancelite's S3 store sets up its own."""
        import boto3
        from botocore.config import Config
        check_loopback(self.url)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY,
            config=Config(s3={"addressing_style": "auto"}, signature_version="s3v4",
                          retries={"mode": "standard", "max_attempts": 3},
                          connect_timeout=10, read_timeout=60, tcp_keepalive=True,
                          max_pool_connections=max(10, 2 * threads),
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))

    def store_options(self, chunk_mib, threads):
        """[glance_store] of a glancelite-api storing into S3_BUCKET here."""
        return {"default_store": "s3", "s3_store_host": self.url,
                "s3_store_access_key": S3_ACCESS_KEY, "s3_store_secret_key": S3_SECRET_KEY,
                "s3_store_bucket": S3_BUCKET, "s3_store_create_bucket_on_put": "true",
                "s3_store_large_object_chunk_size": chunk_mib,
                "s3_store_thread_pools": threads}

    def stop(self):
        stop_process_group(self.process)


def plain_boto3_once(moto, client, source, chunk_mib, threads, run):
    """The S3 server's own speed: the test file uploaded with boto3's upload_fileobj (multipart,
    glancelite's part size and thread count) and downloaded with download_fileobj into
    /dev/null, then once more as one streamed get_object read 1 MiB at a time (how
    glancelite reads). CPU: this process (the client) and moto's process group."""
    from boto3.s3.transfer import TransferConfig
    size = os.path.getsize(source)
    gib = size / GIB
    key = f"plain-boto3-{run}-{os.getpid()}"
    transfer = TransferConfig(multipart_threshold=chunk_mib * MIB,
                              multipart_chunksize=chunk_mib * MIB,
                              max_concurrency=threads, use_threads=True)
    figures = {}
    try:
        os.sync()
        with open(source, "rb") as data:
            cpu0 = own_cpu()
            with ServerWatch(moto.pgid, reset_hwm=True) as behind:
                started = time.perf_counter()
                client.upload_fileobj(data, S3_BUCKET, key, Config=transfer)
                elapsed = time.perf_counter() - started
            figures.update(upload_mibps=size / MIB / elapsed,
                           upload_client_cpu=(own_cpu() - cpu0) / gib,
                           upload_backend_cpu=behind.cpu / gib,
                           upload_backend_rss_mib=behind.max_growth_mib)
        stored = client.head_object(Bucket=S3_BUCKET, Key=key)["ContentLength"]
        if stored != size:
            raise RuntimeError(f"plain boto3 upload stored {stored} of {size} bytes")

        with open(os.devnull, "wb") as sink:
            cpu0 = own_cpu()
            with ServerWatch(moto.pgid) as behind:
                started = time.perf_counter()
                client.download_fileobj(S3_BUCKET, key, sink, Config=transfer)
                elapsed = time.perf_counter() - started
            figures.update(download_mibps=size / MIB / elapsed,
                           download_client_cpu=(own_cpu() - cpu0) / gib,
                           download_backend_cpu=behind.cpu / gib)

        cpu0 = own_cpu()
        got = 0
        with ServerWatch(moto.pgid) as behind:
            started = time.perf_counter()
            body = client.get_object(Bucket=S3_BUCKET, Key=key)["Body"]
            while chunk := body.read(BLOCK):
                got += len(chunk)
            elapsed = time.perf_counter() - started
        if got != size:
            raise RuntimeError(f"plain boto3 get_object read {got} of {size} bytes")
        figures.update(get_mibps=size / MIB / elapsed,
                       get_client_cpu=(own_cpu() - cpu0) / gib,
                       get_backend_cpu=behind.cpu / gib)
    finally:
        with contextlib.suppress(Exception):
            client.delete_object(Bucket=S3_BUCKET, Key=key)
    return figures


# -- profile -----------------------------------------------------------------------------------


def _transfer_figures(direction, size, result, watch, behind):
    """MiB/s and CPU-s/GiB of one transfer (`direction`: upload or download), from curl's
    result and the watches on the server and the store behind it."""
    gib = size / GIB
    figures = {f"{direction}_mibps": size / MIB / result["seconds"],
               f"{direction}_client_cpu": result["client_cpu"] / gib}
    if "machine_cpu" in result:
        figures[f"{direction}_machine_cpu"] = result["machine_cpu"] / gib
    if behind.cpu is not None:
        figures[f"{direction}_backend_cpu"] = behind.cpu / gib
    if watch.cpu is not None:  # a process group to watch was given
        figures[f"{direction}_rss_mib"] = watch.max_growth_mib
        figures[f"{direction}_cpu"] = watch.cpu / gib
        figures[f"{direction}_cpu_sys"] = watch.cpu_system / gib
    return figures


def profile_glancelite(target, curl, source, chunked, directory, native=False, top=15):
    """One upload and one download under py-spy; prints the hottest file:line by self samples."""
    spy = venv_tool("py-spy")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for phase in ("upload", "download"):
        output = directory / f"glancelite-{phase}.raw.txt"
        outputs[phase] = output
    # One py-spy per phase: start it, let it attach, run the phase, stop it with SIGINT.
    image = target.api.call("POST", "/v2/images", {
        "name": "bench-transfer-profile", "disk_format": "raw", "container_format": "bare"})
    image_id = image["id"]
    target.live_images.add(image_id)
    headers = dict(IDENTITY, **{"Content-Type": "application/octet-stream", "Expect": ""})
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    try:
        for phase, args, hdrs in (("upload", ["-T", str(source)], headers),
                                  ("download", [], IDENTITY)):
            os.sync()
            outputs[phase].unlink(missing_ok=True)
            # --native needs to pause the threads while it unwinds C stacks
            mode = ["--native"] if native else ["--nonblocking"]
            spy_proc = subprocess.Popen(
                [spy, "record", "--pid", str(target.pgid), "--subprocesses", "--rate", "250",
                 "--format", "raw", "--output", str(outputs[phase]), *mode],
                stdout=subprocess.DEVNULL, stderr=open(directory / f"py-spy-{phase}.log", "w"))
            time.sleep(2.0)
            curl(target.api.file_url(image_id), *args, headers=hdrs)
            spy_proc.send_signal(signal.SIGINT)
            try:
                spy_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy_proc.kill()
                spy_proc.wait()
    finally:
        target.api.call("DELETE", f"/v2/images/{image_id}", expect=(204, 404))
        target.live_images.discard(image_id)
    for phase, output in outputs.items():
        print(f"\nprofile {phase} (py-spy, self samples by file:line; raw stacks: {output})")
        if not output.exists():
            spy_log = directory / f"py-spy-{phase}.log"
            print(f"  no output; {spy_log}: {spy_log.read_text().strip()[-500:]}")
            continue
        self_samples, total = Counter(), 0
        for line in output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            total += int(count)
            self_samples[frames[-1]] += int(count)
        for frame, count in self_samples.most_common(top):
            waiting = any(w in frame for w in WAIT_FRAMES)
            print(f"  {100 * count / max(total, 1):5.1f}%  {frame}"
                  + ("   [waiting, not CPU]" if waiting else ""))


# frames where a thread blocks on a lock or a poll; py-spy does not always see them as idle
WAIT_FRAMES = ("Condition.wait", "Queue.get", "Queue.put", "select (selectors.py",
               "Arbiter.sleep", "Arbiter.wait_for_signals", "Event.wait", "pthread_cond_",
               "sem_wait", "epoll_wait", "__futex_abstimed_wait", "do_futex_wait")


# -- main ------------------------------------------------------------------------------------

def median(values):
    return statistics.median(values) if values else None


def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def verdict(ok):
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def git_head():
    """The commit under test (read-only git; the working tree may hold more)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if done.returncode == 0:
            return "HEAD " + done.stdout.strip() + " + working tree"
    return "(git revision unknown)"


def report(args, limits, targets, load_samples, started_at):
    size = args.size_mib
    lines = []
    out = lines.append
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"
    out(f"bench/transfer.py  {started_at}  size_mib={size} runs={args.runs} "
        f"upload={'chunked' if args.chunked else 'content-length'}"
        f"{'  download=cold' if args.cold_download else ''}  glancelite {git_head()} "
        f"({machine})")
    loads = " ".join("/".join(f"{x:.2f}" for x in sample) for sample in load_samples)
    out(f"load average (1/5/15 min) at start, before each run, at end: {loads}")

    def line(label, values, unit, digits=1, aggregate=median):
        """One figure: its median (or `aggregate`) over the runs, then every run's value."""
        shown = " ".join(fmt(v, digits) for v in values)
        value = aggregate(values) if values else None
        out(f"{label:<50} {fmt(value, digits):>8} {unit:<12} runs: {shown}")
        return value

    disk = line("limit disk write+fsync", limits["disk"], "MiB/s")
    disk_read = line("limit disk read of it (O_DIRECT, 4 MiB)", limits["disk_read"], "MiB/s")
    line("limit page-cache read", limits["read"], "MiB/s")
    hashed = line("limit md5+sha512 (2 threads, 1 MiB)", limits["hash"], "MiB/s")
    line("limit loopback PUT into recv_into sink", limits["sink"], "MiB/s")
    line("limit loopback GET from sendfile server", limits["sendfile"], "MiB/s")
    cpu_disk = line("limit CPU disk write+fsync", limits["disk_cpu"], "CPU-s/GiB", 2)
    cpu_hash = line("limit CPU md5+sha512", limits["hash_cpu"], "CPU-s/GiB", 2)
    cpu_sink = line("limit CPU recv_into sink (server side)", limits["sink_cpu"], "CPU-s/GiB", 2)
    cpu_sendfile = line("limit CPU sendfile (server side)", limits["sendfile_cpu"], "CPU-s/GiB", 2)
    out(f"{'upload CPU floor = sink + disk + hash':<50} {cpu_sink + cpu_disk + cpu_hash:>8.2f} "
        f"CPU-s/GiB")
    med = {}
    for target in targets:
        f = target.figures
        med[target.name] = m = {}
        m["up"] = line(f"{target.name} upload", f["upload_mibps"], "MiB/s")
        m["down"] = line(f"{target.name} download", f["download_mibps"], "MiB/s")
        m["up_cpu"] = line(f"{target.name} server CPU upload", f["upload_cpu"], "CPU-s/GiB", 2)
        m["down_cpu"] = line(f"{target.name} server CPU download", f["download_cpu"],
                             "CPU-s/GiB", 2)
        line(f"{target.name} server CPU upload, kernel part", f["upload_cpu_sys"],
             "CPU-s/GiB", 2)
        line(f"{target.name} server CPU download, kernel part", f["download_cpu_sys"],
             "CPU-s/GiB", 2)
        m["up_rss"] = line(f"{target.name} peak RSS growth upload (max of runs)",
                           f["upload_rss_mib"], "MiB", aggregate=max)
        m["down_rss"] = line(f"{target.name} peak RSS growth download (max of runs)",
                             f["download_rss_mib"], "MiB", aggregate=max)
        m["up_client_cpu"] = line(f"{target.name} client (curl) CPU upload",
                                  f["upload_client_cpu"], "CPU-s/GiB", 2)
        line(f"{target.name} client (curl) CPU download", f["download_client_cpu"],
             "CPU-s/GiB", 2)
        for direction in ("upload", "download"):
            line(f"{target.name} machine CPU {direction} (all, interrupts too)",
                 f.get(f"{direction}_machine_cpu", []), "CPU-s/GiB", 2)
        busy = line(f"{target.name} server CPU while not sent anything", f["idle_cpu_pct"],
                    "% of a core", aggregate=max)
        if busy is not None and busy > BUSY_IDLE_CPU_PCT:
            out(f"  WARNING: {target.name} was busy with other clients during the runs "
                f"(up to {busy:.0f}% of a core while idle); its figures include their load")
        out(f"{target.name + ' data verified (md5+sha512)':<50} "
            f"{sum(f['verified'])}/{len(f['upload_mibps'])} runs")

    out("targets:")
    results = {}
    lite = med["glancelite"]
    glance = med.get("glance")
    floor = min(disk, hashed)
    ratio = lite["up"] / floor
    results["upload_speed"] = ratio >= UPLOAD_FRACTION_TARGET
    out(f"  upload speed   {lite['up']:.1f} MiB/s = {ratio:.2f} x min(disk {disk:.1f}, hash "
        f"{hashed:.1f})   target >= {UPLOAD_FRACTION_TARGET:.2f}   "
        f"{verdict(results['upload_speed'])}")
    # The limits are measured alone, but an upload shares the cores with the client, and any
    # server must at least receive and hash every byte: above this no upload can go here.
    cores = os.cpu_count()
    ceiling = cores * 1024 / (cpu_hash + cpu_sink + lite["up_client_cpu"])
    out(f"    (CPU ceiling of any upload, every core busy and the write free: {cores} / (hash "
        f"{cpu_hash:.2f} + receive {cpu_sink:.2f} + curl {lite['up_client_cpu']:.2f} "
        f"CPU-s/GiB) = {ceiling:.0f} MiB/s = {ceiling / floor:.2f} x min(disk, hash))")
    results["upload_cpu"] = None if lite["up_cpu"] is None else lite["up_cpu"] <= UPLOAD_CPU_TARGET
    out(f"  upload CPU     {fmt(lite['up_cpu'], 2)} CPU-s/GiB   target <= {UPLOAD_CPU_TARGET:.1f}"
        f"   {verdict(results['upload_cpu'])}")
    if glance:
        ratio = lite["down"] / glance["down"]
        results["download_speed"] = ratio >= DOWNLOAD_SPEED_TARGET
        out(f"  download speed {lite['down']:.1f} MiB/s = {ratio:.2f} x Glance's "
            f"{glance['down']:.1f}   target >= {DOWNLOAD_SPEED_TARGET:.2f}   "
            f"{verdict(results['download_speed'])}")
        if glance["down_cpu"]:
            ratio = lite["down_cpu"] / glance["down_cpu"]
            results["download_cpu"] = ratio <= DOWNLOAD_CPU_TARGET
            out(f"  download CPU   {lite['down_cpu']:.2f} CPU-s/GiB = {ratio:.2f} x Glance's "
                f"{glance['down_cpu']:.2f}   target <= {DOWNLOAD_CPU_TARGET:.2f}   "
                f"{verdict(results['download_cpu'])}")
        else:
            out("  download CPU   n/a: no Glance CPU figure (give --glance-pgid)")
        # Glance's download comes from the page cache its upload filled. From the disk no
        # download beats the disk; from the page cache none costs less than bare sendfile.
        out(f"    (from the disk a download reaches at most {disk_read:.0f} MiB/s = "
            f"{disk_read / glance['down']:.2f} x Glance's speed; from the page cache it costs "
            f"at least bare sendfile's {cpu_sendfile:.2f} CPU-s/GiB = "
            + (f"{cpu_sendfile / glance['down_cpu']:.2f} x Glance's CPU)" if glance["down_cpu"]
               else "? x Glance's CPU)"))
        out(f"  (for reference: Glance upload {glance['up']:.1f} MiB/s, "
            f"{fmt(glance['up_cpu'], 2)} CPU-s/GiB; glancelite upload = "
            f"{lite['up'] / glance['up']:.2f} x Glance)")
    else:
        out("  download speed / CPU: n/a (no --glance-url)")
    peak = max(lite["up_rss"] or 0, lite["down_rss"] or 0)
    results["rss"] = peak < RSS_GROWTH_TARGET_MIB
    out(f"  worker RSS     peak growth {peak:.1f} MiB during a transfer   target < "
        f"{RSS_GROWTH_TARGET_MIB}   {verdict(results['rss'])}")
    met = [k for k, v in results.items() if v]
    missed = [k for k, v in results.items() if v is False]
    out(f"  summary: met {len(met)}/{len(met) + len(missed)}"
        + (f"; missed: {', '.join(missed)}" if missed else ""))
    print("\n".join(lines), flush=True)
    return {"lines": lines, "medians": med, "results": results,
            "limit_medians": {key: median(values) for key, values in limits.items()}}


def report_s3(args, plain, target, moto_version):
    """The S3 part: plain boto3 against moto (the S3 server's own speed) and glancelite with
    the S3 store against the same moto, and glancelite ÷ plain boto3."""
    lines = []
    out = lines.append
    f = target.figures
    out(f"S3: moto {moto_version} (ThreadedMotoServer, own process, loopback), "
        f"{args.s3_size_mib} MiB object, part {args.s3_chunk_mib} MiB, "
        f"{args.s3_threads} threads (glancelite: s3_store_large_object_chunk_size, "
        f"s3_store_thread_pools)")

    def line(label, values, unit, digits=1, aggregate=median):
        shown = " ".join(fmt(v, digits) for v in values)
        value = aggregate(values) if values else None
        out(f"{label:<50} {fmt(value, digits):>8} {unit:<12} runs: {shown}")
        return value

    up = line("plain boto3 upload_fileobj (multipart)", plain["upload_mibps"], "MiB/s")
    down = line("plain boto3 download_fileobj (ranged, threads)", plain["download_mibps"],
                "MiB/s")
    get = line("plain boto3 get_object, 1 stream, 1 MiB reads", plain["get_mibps"], "MiB/s")
    line("plain boto3 client CPU upload", plain["upload_client_cpu"], "CPU-s/GiB", 2)
    line("plain boto3 client CPU download_fileobj", plain["download_client_cpu"],
         "CPU-s/GiB", 2)
    line("plain boto3 client CPU get_object", plain["get_client_cpu"], "CPU-s/GiB", 2)
    line("moto CPU, plain upload", plain["upload_backend_cpu"], "CPU-s/GiB", 2)
    line("moto CPU, plain download_fileobj", plain["download_backend_cpu"], "CPU-s/GiB", 2)
    line("moto CPU, plain get_object", plain["get_backend_cpu"], "CPU-s/GiB", 2)
    line("moto peak RSS growth, plain upload (max of runs)", plain["upload_backend_rss_mib"],
         "MiB", aggregate=max)
    lite_up = line("glancelite-s3 upload (curl -> API -> S3)", f["upload_mibps"], "MiB/s")
    lite_down = line("glancelite-s3 download (S3 -> API -> curl)", f["download_mibps"],
                     "MiB/s")
    line("glancelite-s3 server CPU upload", f["upload_cpu"], "CPU-s/GiB", 2)
    line("glancelite-s3 server CPU download", f["download_cpu"], "CPU-s/GiB", 2)
    line("moto CPU, glancelite upload", f["upload_backend_cpu"], "CPU-s/GiB", 2)
    line("moto CPU, glancelite download", f["download_backend_cpu"], "CPU-s/GiB", 2)
    line("glancelite-s3 peak RSS growth upload (max of runs)", f["upload_rss_mib"], "MiB",
         aggregate=max)
    line("glancelite-s3 peak RSS growth download (max)", f["download_rss_mib"], "MiB",
         aggregate=max)
    line("glancelite-s3 client (curl) CPU upload", f["upload_client_cpu"], "CPU-s/GiB", 2)
    line("glancelite-s3 client (curl) CPU download", f["download_client_cpu"], "CPU-s/GiB", 2)
    busy = line("glancelite-s3 server CPU while not sent anything", f["idle_cpu_pct"],
                "% of a core", aggregate=max)
    if busy is not None and busy > BUSY_IDLE_CPU_PCT:
        out(f"  WARNING: glancelite-s3 was busy while idle (up to {busy:.0f}% of a core)")
    out(f"{'glancelite-s3 data verified (md5+sha512)':<50} "
        f"{sum(f['verified'])}/{len(f['upload_mibps'])} runs")
    ratios = {"upload": lite_up / up, "download": lite_down / down,
              "download_vs_get": lite_down / get}
    out("S3 ratios (glancelite through the API ÷ plain boto3 against the same moto, medians):")
    out(f"  upload   {lite_up:.1f} / {up:.1f} MiB/s = {ratios['upload']:.2f}")
    out(f"  download {lite_down:.1f} / {down:.1f} MiB/s = {ratios['download']:.2f}   "
        f"(vs one get_object stream {get:.1f}: {ratios['download_vs_get']:.2f})")
    print("\n".join(lines), flush=True)
    return {"s3_lines": lines, "s3_ratios": ratios}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="test file size (1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs; figures are medians (3)")
    parser.add_argument("--glance-url", help="a Glance v2 endpoint on loopback to compare with")
    parser.add_argument("--glance-pgid", type=int,
                        help="process group of that Glance, for its CPU and RSS figures")
    parser.add_argument("--keep-cache", action="store_true",
                        help="filesystem_store_drop_behind = false: uploads stay in the page "
                             "cache, so the download reads from memory instead of the disk")
    parser.add_argument("--chunked", action="store_true",
                        help="upload with Transfer-Encoding: chunked (glanceclient's way)")
    parser.add_argument("--cold-download", action="store_true",
                        help="empty the page cache before every download (needs root), so "
                             "both services read the image from the disk")
    parser.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    parser.add_argument("--profile", metavar="DIR",
                        help="afterwards, profile one glancelite upload+download with py-spy")
    parser.add_argument("--profile-native", action="store_true",
                        help="with --profile: py-spy --native (C frames too)")
    parser.add_argument("--s3", action="store_true",
                        help="also measure glancelite with the S3 store against moto, next to "
                             "plain boto3 against the same moto")
    parser.add_argument("--s3-size-mib", type=int, default=256,
                        help="object size for --s3 (256; moto keeps objects in RAM)")
    parser.add_argument("--s3-chunk-mib", type=int, default=10,
                        help="part size, MiB (10: s3_store_large_object_chunk_size default)")
    parser.add_argument("--s3-threads", type=int, default=10,
                        help="parts in flight (10: s3_store_thread_pools default)")
    parser.add_argument("--no-verify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.runs < 1:
        parser.error("--size-mib and --runs must be positive")
    if args.s3_size_mib < 1 or args.s3_chunk_mib < 5 or args.s3_threads < 1:
        parser.error("--s3-size-mib and --s3-threads must be positive, --s3-chunk-mib >= 5")
    if args.glance_url:
        check_loopback(args.glance_url)
    if args.glance_pgid and not group_pids(args.glance_pgid):
        parser.error(f"no process in process group {args.glance_pgid}")
    if args.cold_download and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        parser.error("--cold-download needs root: it writes /proc/sys/vm/drop_caches")
    return args


def make_test_file(path, size_mib):
    """Random bytes (incompressible, no sparse tricks); returns (md5, sha512)."""
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    with open(path, "wb") as out:
        for _ in range(size_mib):
            chunk = os.urandom(MIB)
            md5.update(chunk)
            sha512.update(chunk)
            out.write(chunk)
    return md5.hexdigest(), sha512.hexdigest()


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    workdir = Path(tempfile.mkdtemp(prefix="glancelite-bench-transfer."))
    server = bare = moto = s3_server = s3_target = None
    targets = []
    try:
        curl = Curl()
        source = workdir / "image.bin"
        log(f"writing {args.size_mib} MiB of random data to {source} ...")
        digests = make_test_file(source, args.size_mib)
        log("starting glancelite-api (2 workers) ...")
        server = OwnGlancelite(workdir / "glancelite")
        if args.keep_cache:
            server.store["filesystem_store_drop_behind"] = "false"
        server.directory.mkdir()
        server.start()
        targets.append(Target("glancelite", server.url, server.pgid, own=True))
        if args.glance_url:
            if not args.glance_pgid:
                log("no --glance-pgid: Glance's CPU and RSS are not measured")
            glance = Target("glance", args.glance_url, args.glance_pgid, own=False)
            glance.api.call("GET", "/versions", expect=(200, 300))
            targets.append(glance)
        if args.s3:
            import moto as moto_package
            log(f"starting moto (S3) and a glancelite-api with the S3 store (2 workers, "
                f"part {args.s3_chunk_mib} MiB, {args.s3_threads} threads) ...")
            moto = MotoServer(workdir).start()
            s3_client = moto.client(args.s3_threads)
            s3_client.create_bucket(Bucket=S3_BUCKET)
            if args.s3_size_mib == args.size_mib:
                s3_source, s3_digests = source, digests
            else:
                s3_source = workdir / "s3-image.bin"
                log(f"writing {args.s3_size_mib} MiB of random data to {s3_source} ...")
                s3_digests = make_test_file(s3_source, args.s3_size_mib)
            s3_server = OwnGlancelite(workdir / "glancelite-s3",
                                      store=moto.store_options(args.s3_chunk_mib, args.s3_threads))
            s3_server.directory.mkdir()
            s3_server.start()
            s3_target = Target("glancelite-s3", s3_server.url, s3_server.pgid, own=True)
            plain = defaultdict(list)
        bare = BareServer(source)
        limits = defaultdict(list)
        load_samples = [loadavg()]
        for run in range(1, args.runs + 1):
            load_samples.append(loadavg())
            log(f"run {run}/{args.runs}: limits ...")
            for key, value in measure_limits(source, workdir, bare, curl).items():
                limits[key].append(value)
            # alternate the order so neither service always goes first
            for target in (targets if run % 2 else targets[::-1]):
                log(f"run {run}/{args.runs}: {target.name} ...")
                figures = transfer_once(target, curl, source, digests, args.chunked, run,
                                        verify=not args.no_verify,
                                        cold_download=args.cold_download)
                for key, value in figures.items():
                    target.figures[key].append(value)
                log("  " + " ".join(f"{k}={v:.2f}" for k, v in figures.items()))
            if args.s3:
                steps = [("plain boto3", plain, plain_boto3_once,
                          (moto, s3_client, s3_source, args.s3_chunk_mib, args.s3_threads, run),
                          {}),
                         ("glancelite-s3", s3_target.figures, transfer_once,
                          (s3_target, curl, s3_source, s3_digests, args.chunked, run),
                          {"verify": not args.no_verify, "backend": moto.pgid})]
                for name, store, step, positional, named in (steps if run % 2 else steps[::-1]):
                    log(f"run {run}/{args.runs}: S3, {name} ...")
                    figures = step(*positional, **named)
                    for key, value in figures.items():
                        store[key].append(value)
                    log("  " + " ".join(f"{k}={v:.2f}" for k, v in figures.items()))
        load_samples.append(loadavg())
        summary = report(args, limits, targets, load_samples, started_at)
        if args.s3:
            summary.update(report_s3(args, plain, s3_target, moto_package.__version__))
        if args.json:
            Path(args.json).write_text(json.dumps({
                "started_at": started_at, "size_mib": args.size_mib, "runs": args.runs,
                "chunked": args.chunked, "load": load_samples, "limits": limits,
                "figures": {t.name: t.figures for t in targets},
                "s3_figures": ({"plain_boto3": plain, "glancelite-s3": s3_target.figures}
                               if args.s3 else None),
                **summary}, indent=2) + "\n")
        if args.profile:
            profile_glancelite(targets[0], curl, source, args.chunked, args.profile,
                               native=args.profile_native)
        return 0
    finally:
        for target in targets + ([s3_target] if s3_target else []):
            target.cleanup()
        if bare is not None:
            bare.close()
        for process in (server, s3_server, moto):
            if process is not None:
                process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
