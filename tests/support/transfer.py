"""Helpers for data-path tests: generated image files, raw sockets, worker memory."""
import hashlib
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

MIB = 1 << 20


def make_image_file(path, size_mib):
    """A file of pseudo-random bytes; returns its (md5, sha512) hex digests."""
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    block = os.urandom(MIB)
    with open(path, "wb") as handle:
        for index in range(size_mib):
            chunk = index.to_bytes(8, "big") + block[8:]
            md5.update(chunk)
            sha512.update(chunk)
            handle.write(chunk)
    return md5.hexdigest(), sha512.hexdigest()


def file_chunks(path, chunk=MIB):
    with open(path, "rb") as handle:
        while data := handle.read(chunk):
            yield data


def stored_files(datadir):
    """Every file in the store directory, temporary ones included."""
    return sorted(p.name for p in Path(datadir).iterdir()) if Path(datadir).exists() else []


def send_partial_upload(base_url, image_id, announced, sent, headers=None):
    """PUT announcing `announced` bytes, send `sent` of them, then drop the connection."""
    url = urlparse(base_url)
    lines = [f"PUT /v2/images/{image_id}/file HTTP/1.1", f"Host: {url.netloc}",
             "Content-Type: application/octet-stream", f"Content-Length: {announced}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.sendall(os.urandom(sent))
        time.sleep(0.2)


def worker_pids(pgid):
    """Process ids in the server's process group other than the gunicorn master."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and int(entry.name) != pgid:
            pids.append(int(entry.name))
    return pids


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """Samples every worker's RSS in a thread; `growth_mib` is the largest rise seen."""

    def __init__(self, pgid, interval=0.02):
        self.pids = worker_pids(pgid)
        self.baseline = {pid: rss_kib(pid) for pid in self.pids}
        self.peak = dict(self.baseline)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    self.peak[pid] = max(self.peak[pid], rss_kib(pid))
                except OSError:
                    pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self):
        return max(self.peak[pid] - self.baseline[pid] for pid in self.pids) / 1024
