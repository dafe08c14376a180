"""`fetch IMAGE_ID`: bring one image into `instances_path/_base/sha1(id)`, verified.

The steps of the reference's fetcher spec (§2.4), in order:

1. Take nova's lock for the base file. If the file is there, touch it and report a
   cache hit (with --verify, re-hash it first and fetch again if it is bad).
2. GET the image: it must be active, with a size; note the hash to verify: os_hash_value
   when this host has its algorithm, else the md5 `checksum`, as glanceclient does
   (--check-md5 checks md5 as well, in a second hash thread).
3. Direct locations: the 2.17 locations API, else `locations`, else `direct_url`, each
   mapped onto a local mount (locations.py). The copy to `<base>.part` runs in the
   kernel (copy_file_range) while a hash thread reads what landed in the .part file
   through a shared mapping, so the digest is of our bytes whatever the source does.
   A location that cannot be opened, is not a regular file of the right size, or hashes
   wrong is skipped, with the reason kept for the report.
4. Otherwise stream GET /v2/images/ID/file, hashing in a thread as blocks arrive; a
   dropped connection resumes with `Range: bytes=N-` and `If-Range: <ETag>` (a 200
   answer means the data changed: start over).
5. Verify, check the format (inspection.py), convert to raw if force_raw_images says so,
   fsync, rename onto the base name, fsync the directory.

Holes stay holes: source holes on the direct path, all-zero blocks on the HTTP path.
Memory is bounded by the hash queue: a few blocks of BLOCK bytes (none on the direct
path, which hashes the page cache).
"""
import contextlib
import errno
import hashlib
import logging
import mmap
import os
import stat
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from glancelite.compute import inspection, locations, locking
from glancelite.compute.registry import NETWORK_ERRORS, Forbidden, NotFound, RegistryError, Unreachable
from glancelite.durable import fsync_path
from glancelite.hashing import ParallelHashes

LOG = logging.getLogger(__name__)

BLOCK = 4 << 20
_ZERO = bytes(BLOCK)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_HASH_MISMATCH = 3
EXIT_NOT_FOUND = 4
EXIT_FORBIDDEN = 5
EXIT_UNREACHABLE = 6
EXIT_REJECTED = 7          # glancelite: the data failed format inspection
EXIT_INTERRUPTED = 130

XATTR_PREFIX = "user.glancelite."
NOT_READY = ("queued", "saving", "uploading", "importing")


class FetchError(Exception):
    def __init__(self, message, exit_code=EXIT_FAILED, skipped=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.skipped = skipped or []


class _Skip(Exception):
    """This source cannot be used (the message says why); try the next one."""

    def __init__(self, message, mismatch=False):
        super().__init__(message)
        self.mismatch = mismatch


class _LocalWriteError(Exception):
    pass


@dataclass
class Result:
    image_id: str
    method: str                  # direct-file | http | cache-hit
    source: str
    path: str
    bytes: int
    seconds: float
    hash_algo: str | None
    verified: bool
    resumes: int = 0
    lock_wait_seconds: float = 0.0
    format: str | None = None
    converted: bool = False
    skipped: list = field(default_factory=list)

    @property
    def mib_per_s(self):
        if self.method == "cache-hit" or self.seconds <= 0:
            return 0.0
        return self.bytes / (1 << 20) / self.seconds

    def as_dict(self):
        document = asdict(self)
        document["seconds"] = round(self.seconds, 4)
        document["lock_wait_seconds"] = round(self.lock_wait_seconds, 4)
        document["mib_per_s"] = round(self.mib_per_s, 1)
        return document

    def line(self):
        if self.method == "cache-hit":
            check = (f"{self.hash_algo} verified" if self.verified
                     else "not re-hashed (--verify does)")
            return f"{self.image_id} cache-hit {self.path} {self.bytes} bytes {check}"
        check = (f"{self.hash_algo} verified" if self.verified
                 else "NOT verified (no hash, or --trust-store)")
        text = (f"{self.image_id} {self.method} {self.source} {self.bytes} bytes "
                f"{self.seconds:.2f}s {self.mib_per_s:.1f} MiB/s {check} -> {self.path}")
        if self.resumes:
            text += f" (resumed {self.resumes}x)"
        if self.converted:
            text += f" (converted {self.format} to raw)"
        return text


# -- hashes ----------------------------------------------------------------------------------

def expected_digests(image, allow_md5_fallback=False, require_hash=False, all_hashes=False):
    """{algorithm: hex} to verify against, and the main algorithm's name (None: no hash).

    Like glanceclient, os_hash_value when it can be checked here, else the md5 `checksum`;
    `all_hashes` checks md5 as well (in a second hash thread).
    """
    expected = {}
    algorithm = (image.get("os_hash_algo") or "").lower()
    value = image.get("os_hash_value")
    if algorithm and value:
        if algorithm in hashlib.algorithms_available:
            expected[algorithm] = value.lower()
        elif not (allow_md5_fallback and image.get("checksum")):
            raise FetchError(f"os_hash_algo {algorithm!r} is not available here; "
                             f"--allow-md5-fallback verifies the md5 checksum instead",
                             EXIT_HASH_MISMATCH)
    if image.get("checksum") and (all_hashes or not expected):
        expected["md5"] = image["checksum"].lower()
    if not expected:
        if require_hash:
            raise FetchError(f"image {image.get('id')} has neither os_hash_value nor checksum "
                             f"(--require-hash)", EXIT_HASH_MISMATCH)
        LOG.warning("image %s has no hash: the copy cannot be verified", image.get("id"))
        return {}, None
    main = algorithm if algorithm in expected else "md5"
    return expected, main


class _Hashes:
    """ParallelHashes (one thread per algorithm) that can be checked against `expected`."""

    def __init__(self, expected):
        self.expected = expected
        self.parallel = ParallelHashes(*expected) if expected else None

    def update(self, view):
        if self.parallel is not None:
            self.parallel.update(view)

    def check(self):
        """The algorithms that did not match (empty: all matched); waits for the threads."""
        if self.parallel is not None:
            digests = self.parallel.hexdigests()
            self.parallel = None
            self.bad = [name for name, value in self.expected.items() if digests[name] != value]
        return getattr(self, "bad", [])

    def abandon(self):
        if self.parallel is not None:
            self.parallel.abandon()
            self.parallel = None


def hash_file(path, expected, block=BLOCK):
    """Re-hash a file; returns the algorithms that did not match."""
    hashes = _Hashes(expected)
    try:
        with open(path, "rb", buffering=0) as handle:
            while True:
                buffer = bytearray(block)
                count = handle.readinto(buffer)
                if not count:
                    break
                hashes.update(memoryview(buffer)[:count])
    except BaseException:
        hashes.abandon()
        raise
    return hashes.check()


# -- the .part file ------------------------------------------------------------------------

class _PartFile:
    """`<base>.part`, written sequentially; zero blocks become holes."""

    def __init__(self, path):
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _LocalWriteError(f"cannot create {path}: {exc}") from exc
        self.written = 0

    def write(self, buffer, count):
        """Write the first `count` bytes of a bytearray."""
        try:
            if count == BLOCK and buffer == _ZERO:
                os.lseek(self.fd, count, os.SEEK_CUR)
            else:
                view = memoryview(buffer)[:count]
                while view:
                    view = view[os.write(self.fd, view):]
        except OSError as exc:
            raise _LocalWriteError(f"writing {self.path}: {exc}") from exc
        self.written += count

    def restart(self):
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.written = 0

    def finish(self):
        """Cut to size (a trailing hole), fsync, close."""
        try:
            os.ftruncate(self.fd, self.written)
            os.fsync(self.fd)
        except OSError as exc:
            raise _LocalWriteError(f"syncing {self.path}: {exc}") from exc
        finally:
            self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def discard(self):
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _set_xattrs(path, values):
    for key, value in values.items():
        if value is None:
            continue
        try:
            os.setxattr(path, XATTR_PREFIX + key, str(value).encode())
        except OSError:
            return      # file system without user xattrs: cache list asks the registry


def read_xattr(path, key):
    try:
        return os.getxattr(path, XATTR_PREFIX + key).decode()
    except OSError:
        return None


def touch(path):
    """Mark use as nova does (mtime = now), ignoring EACCES like _update_utime_ignore_eacces."""
    try:
        os.utime(path, None)
    except PermissionError:
        pass


# -- the fetcher -----------------------------------------------------------------------------

class Fetcher:
    def __init__(self, conf, registry, allow_legacy=False, require_hash=False,
                 allow_md5_fallback=False, inspect=True, lock_timeout=None, http_only=False,
                 all_hashes=False, trust_store=False):
        self.conf = conf
        self.registry = registry
        self.allow_legacy = allow_legacy
        self.require_hash = require_hash
        self.allow_md5_fallback = allow_md5_fallback
        self.inspect = inspect
        self.lock_timeout = lock_timeout
        self.http_only = http_only
        self.all_hashes = all_hashes
        self.trust_store = trust_store
        self.retry_delay = 0.25

    def target(self, image_id):
        return os.path.join(self.conf.base_dir, locking.cache_name(image_id))

    def fetch(self, image_id, verify_cached=False):
        if not image_id or "\x00" in image_id:
            raise FetchError("empty or invalid image id", EXIT_USAGE)
        name = locking.cache_name(image_id)
        target = os.path.join(self.conf.base_dir, name)
        os.makedirs(self.conf.base_dir, exist_ok=True)
        try:
            with locking.image_lock(self.conf.lock_dir, name, self.lock_timeout) as waited:
                result = self._fetch_locked(image_id, target, verify_cached)
                result.lock_wait_seconds = waited
                return result
        except locking.LockTimeout as exc:
            raise FetchError(f"image {image_id}: {exc}", EXIT_FAILED) from exc
        except _LocalWriteError as exc:
            raise FetchError(f"image {image_id}: {exc}", EXIT_FAILED) from exc

    def _fetch_locked(self, image_id, target, verify_cached):
        started = time.monotonic()
        skipped = []
        if os.path.exists(target):
            hit = self._cache_hit(image_id, target, verify_cached, started, skipped)
            if hit is not None:
                return hit
        for stale in (target + ".part", target + ".converted"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)      # we hold the lock: whoever wrote it is gone
        image = self._image(image_id)
        expected, main = expected_digests(image, self.allow_md5_fallback, self.require_hash,
                                          self.all_hashes)
        mismatches = 0
        if not self.http_only:
            for mapped in self._direct_candidates(image, skipped):
                try:
                    if self.trust_store:
                        result = self._try_direct(image, mapped, target, {}, None, started)
                    else:
                        result = self._try_direct(image, mapped, target, expected, main, started)
                except _Skip as skip:
                    if skip.mismatch:
                        mismatches += 1
                    LOG.warning("image %s: location %s not used: %s", image_id, mapped.url, skip)
                    skipped.append({"url": mapped.url, "reason": str(skip)})
                    continue
                result.skipped = skipped
                return result
        try:
            result = self._http(image, target, expected, main, started)
        except _Skip as skip:
            code = EXIT_HASH_MISMATCH if skip.mismatch else EXIT_UNREACHABLE
            skipped.append({"url": "http", "reason": str(skip)})
            raise FetchError(f"image {image_id}: {skip}", code, skipped) from None
        except FetchError as exc:
            exc.skipped = skipped + exc.skipped
            raise
        result.skipped = skipped
        if mismatches:
            LOG.warning("image %s: %d direct location(s) had bad data; the HTTP copy was "
                        "good", image_id, mismatches)
        return result

    # -- steps -------------------------------------------------------------------------

    def _cache_hit(self, image_id, target, verify, started, skipped):
        hash_algo = None
        verified = False
        if verify:
            image = self._image(image_id)
            expected, hash_algo = expected_digests(image, self.allow_md5_fallback,
                                                   self.require_hash, self.all_hashes)
            if read_xattr(target, "converted"):
                skipped.append({"url": target, "reason": "converted to raw: the registry's "
                                "hash does not apply; not re-hashed"})
            elif expected:
                bad = hash_file(target, expected)
                if bad:
                    LOG.warning("image %s: cached %s does not match the registry (%s); "
                                "fetching it again", image_id, target, ", ".join(bad))
                    skipped.append({"url": target, "reason": f"cached copy failed "
                                    f"{', '.join(bad)}; removed"})
                    os.unlink(target)
                    return None
                verified = True
        touch(target)
        return Result(image_id=image_id, method="cache-hit", source=target, path=target,
                      bytes=os.stat(target).st_size, seconds=time.monotonic() - started,
                      hash_algo=hash_algo, verified=verified, skipped=skipped,
                      format=read_xattr(target, "format"),
                      converted=bool(read_xattr(target, "converted")))

    def _image(self, image_id):
        try:
            image = self.registry.image(image_id)
        except NotFound as exc:
            raise FetchError(f"image {image_id} not found", EXIT_NOT_FOUND) from exc
        except Forbidden as exc:
            raise FetchError(str(exc), EXIT_FORBIDDEN) from exc
        except Unreachable as exc:
            raise FetchError(f"registry unreachable: {exc}", EXIT_UNREACHABLE) from exc
        except RegistryError as exc:
            raise FetchError(str(exc), EXIT_FAILED) from exc
        status = image.get("status")
        if status == "deactivated":
            raise FetchError(f"image {image_id} is deactivated", EXIT_FORBIDDEN)
        if status in NOT_READY:
            raise FetchError(f"image {image_id} is not ready (status {status})", EXIT_NOT_FOUND)
        if status != "active":
            raise FetchError(f"image {image_id} is not active (status {status})", EXIT_NOT_FOUND)
        if not isinstance(image.get("size"), int) or image["size"] < 0:
            raise FetchError(f"image {image_id} has no size: no data to fetch", EXIT_NOT_FOUND)
        return image

    def _direct_candidates(self, image, skipped):
        schemes = self.conf.allowed_direct_url_schemes
        if not schemes:
            return
        api_locations = None
        if not isinstance(image.get("locations"), list):
            with contextlib.suppress(RegistryError):
                api_locations = self.registry.locations(image["id"])
        for url, metadata in locations.candidates(image, api_locations):
            try:
                yield locations.map_location(url, metadata, self.conf.filesystems, schemes,
                                             self.allow_legacy)
            except locations.Refused as refused:
                LOG.info("image %s: location %s not used: %s", image["id"], url, refused)
                skipped.append({"url": url, "reason": str(refused)})

    def _commit(self, image, part, hashes, target, main, started, method, source, resumes=0):
        """Verify, inspect, fsync and rename; raises _Skip on a hash mismatch."""
        bad = hashes.check()
        if bad:
            part.discard()
            raise _Skip(f"{', '.join(bad)} mismatch", mismatch=True)
        try:
            part.finish()
        except BaseException:
            part.discard()
            raise
        found, converted, final_source = None, False, part.path
        try:
            if self.inspect:
                found = inspection.inspect(part.path, image.get("disk_format"),
                                           self.conf.vmdk_allowed_types)
                if self.conf.force_raw_images and found not in ("raw", "iso"):
                    final_source = target + ".converted"
                    inspection.convert_to_raw(part.path, final_source, found)
                    fsync_path(final_source)
                    converted = True
            _set_xattrs(final_source, {
                "image_id": image["id"], "hash": f"{main}:{hashes.expected[main]}" if main else None,
                "format": found, "converted": found if converted else None})
            os.rename(final_source, target)
            fsync_path(os.path.dirname(target))
        except inspection.Rejected as exc:
            raise FetchError(f"image {image['id']}: rejected: {exc}", EXIT_REJECTED) from exc
        finally:
            for leftover in (part.path, target + ".converted"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
        return Result(image_id=image["id"], method=method, source=source, path=target,
                      bytes=image["size"], seconds=time.monotonic() - started, hash_algo=main,
                      verified=main is not None, resumes=resumes, format=found,
                      converted=converted)

    def _try_direct(self, image, mapped, target, expected, main, started):
        try:
            fd = os.open(mapped.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            reason = "is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise _Skip(f"cannot open {mapped.path}: {reason}") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Skip(f"{mapped.path} is not a regular file")
            if not locations.still_contained(fd, mapped):
                raise _Skip(f"{mapped.path} was swapped for a file outside {mapped.mountpoint}")
            if info.st_size != image["size"]:
                raise _Skip(f"{mapped.path} has {info.st_size} bytes, the image {image['size']}")
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            part = _PartFile(target + ".part")
            hashes = _Hashes(expected)
            try:
                _copy_and_hash(fd, mapped.path, part, image["size"], hashes)
            except BaseException:
                hashes.abandon()
                part.discard()
                raise
        finally:
            os.close(fd)
        return self._commit(image, part, hashes, target, main, started, "direct-file",
                            f"file://{mapped.local}")

    def _http(self, image, target, expected, main, started):
        """Stream the data, resuming with Range/If-Range after a dropped connection."""
        image_id, size = image["id"], image["size"]
        part = _PartFile(target + ".part")
        hashes = _Hashes(expected)
        etag, resumes, failures, source = None, 0, 0, None
        try:
            while True:
                try:
                    response = self.registry.open_data(image_id, part.written, etag)
                except NotFound as exc:
                    raise FetchError(f"image {image_id}: no data ({exc})", EXIT_NOT_FOUND) from exc
                except Forbidden as exc:
                    raise FetchError(str(exc), EXIT_FORBIDDEN) from exc
                except Unreachable as exc:
                    raise _Skip(f"download failed: {exc}") from exc
                except RegistryError as exc:
                    raise FetchError(str(exc), EXIT_FAILED) from exc
                try:
                    if part.written and response.status == 200:
                        LOG.warning("image %s: the server sent the whole image again; "
                                    "starting over", image_id)
                        hashes.abandon()
                        hashes = _Hashes(expected)
                        part.restart()
                    elif response.status == 206:
                        _check_content_range(response, part.written, size)
                    elif response.status != 200:
                        raise _Skip(f"unexpected HTTP {response.status}")
                    etag = etag or response.headers.get("ETag")
                    source = source or urlsplit(response.url)._replace(query="").geturl()
                    done = self._receive(response, part, hashes, size)
                finally:
                    response.close()
                if done:
                    break
                failures += 1
                if failures > max(self.conf.num_retries, 0):
                    raise _Skip(f"connection dropped {failures} times; gave up at "
                                f"{part.written} of {size} bytes")
                resumes += 1
                LOG.warning("image %s: connection dropped at %d of %d bytes; resuming",
                            image_id, part.written, size)
                time.sleep(self.retry_delay * failures)
        except BaseException:
            hashes.abandon()
            part.discard()
            raise
        return self._commit(image, part, hashes, target, main, started, "http", source,
                            resumes)

    def _receive(self, response, part, hashes, size):
        """Copy the body to the part file; False when the connection dropped early."""
        while part.written < size:
            buffer = bytearray(min(BLOCK, size - part.written))
            try:
                count = response.readinto(buffer)
            except NETWORK_ERRORS as exc:      # the socket only: writes raise _LocalWriteError
                LOG.info("download interrupted: %s", exc)
                return False
            if not count:
                return False
            hashes.update(memoryview(buffer)[:count])
            part.write(buffer, count)
        return True


_NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM)
_LOCAL_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def _next_data(fd, offset, size):
    """Where the next data at or after `offset` starts (SEEK_DATA); `size` if only a hole
    is left; `offset` when the file system cannot tell."""
    try:
        return os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as exc:
        return size if exc.errno == errno.ENXIO else offset


def _copy_and_hash(source, name, part, size, hashes):
    """Copy `source` into the part file at equal offsets and hash what landed there.

    The copy is copy_file_range(2) (in the kernel, no user-space buffer) when source and
    target allow it, else pread/pwrite. Blocks that are holes in the source stay holes. The
    hash threads read the part file through a read-only shared mapping, so the digest is
    of the bytes we wrote, whatever happens to the source meanwhile, and no block is
    copied into Python memory at all.
    """
    try:
        os.ftruncate(part.fd, size)
    except OSError as exc:
        raise _LocalWriteError(f"sizing {part.path}: {exc}") from exc
    part.written = size
    if size == 0:
        return
    mapping = mmap.mmap(part.fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    view = memoryview(mapping)
    kernel_copy = True
    try:
        offset = 0
        while offset < size:
            end = min(offset + BLOCK, size)
            position = offset if _next_data(source, offset, size) < end else end
            while position < end:
                try:
                    if kernel_copy:
                        copied = os.copy_file_range(source, part.fd, end - position, position,
                                                    position)
                    else:
                        data = os.pread(source, end - position, position)
                        copied = len(data)
                        written = 0
                        while written < copied:
                            written += os.pwrite(part.fd, data[written:], position + written)
                except OSError as exc:
                    if kernel_copy and exc.errno in _NO_KERNEL_COPY:
                        kernel_copy = False
                        continue
                    if exc.errno in _LOCAL_ERRORS:
                        raise _LocalWriteError(f"writing {part.path}: {exc}") from exc
                    raise _Skip(f"reading {name}: {exc.strerror}") from exc
                if not copied:
                    raise _Skip(f"{name} got shorter while being copied")
                position += copied
            hashes.update(view[offset:end])
            offset = end
        hashes.check()                  # the threads are done with the mapping after this
    finally:
        hashes.abandon()
        view.release()
        try:
            mapping.close()
        except BufferError:             # a slice still referenced: the GC will unmap it
            pass


def _check_content_range(response, start, size):
    value = response.headers.get("Content-Range", "")
    try:
        unit, rest = value.split(" ", 1)
        span, total = rest.split("/")
        first = int(span.split("-")[0])
    except ValueError as exc:
        raise _Skip(f"bad Content-Range {value!r}") from exc
    if unit != "bytes" or first != start or (total != "*" and int(total) != size):
        raise _Skip(f"Content-Range {value!r} does not continue at byte {start} of {size}")


