"""The lock nova takes around a base image: `instances_path/locks/nova-<sha1(image id)>`.

Nova's `Image.cache()` runs under `utils.synchronized(filename, external=True,
lock_path=instances_path/locks)`: oslo.concurrency's external lock, a POSIX record lock
(`fcntl.lockf`, through fasteners) on that file, plus an in-process semaphore. The same
two are taken here, so a fetch and a nova boot of the same image on one host (or on hosts
sharing `instances_path` over a file system with working POSIX locks) wait for each other.
flock(2) would not do: on Linux it does not conflict with lockf locks.
"""
import contextlib
import errno
import fcntl
import hashlib
import os
import threading
import time

PREFIX = "nova-"

_local_locks = {}
_local_guard = threading.Lock()


class LockTimeout(Exception):
    pass


def cache_name(image_id):
    """Nova's base file name: sha1 of the image id (imagecache.get_cache_fname)."""
    return hashlib.sha1(image_id.encode("utf-8"), usedforsecurity=False).hexdigest()


def lock_path(lock_dir, name):
    return os.path.join(lock_dir, PREFIX + name)


def _local(path):
    with _local_guard:
        return _local_locks.setdefault(path, threading.Lock())


@contextlib.contextmanager
def image_lock(lock_dir, name, timeout=None, blocking=True):
    """Hold nova's lock for base file `name`; yields the seconds spent waiting.

    `timeout` None waits forever; with blocking=False a held lock raises LockTimeout at
    once (used by prune, which skips busy files).
    """
    os.makedirs(lock_dir, exist_ok=True)
    path = lock_path(lock_dir, name)
    started = time.monotonic()
    local = _local(path)
    if not local.acquire(blocking, -1 if timeout is None or not blocking else timeout):
        raise LockTimeout(f"{path} is held by another thread")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lockf(fd, path, started, timeout, blocking)
            try:
                yield time.monotonic() - started
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        local.release()


def _lockf(fd, path, started, timeout, blocking):
    if blocking and timeout is None:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        return
    delay = 0.01
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
        if not blocking or time.monotonic() - started >= timeout:
            raise LockTimeout(f"{path} is held by another process")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
