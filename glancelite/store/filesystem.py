"""Filesystem store: one file per image in `filesystem_store_datadir`.

Bytes go to a hidden temporary file in the same directory, are fsync'd and then renamed
to the image id, so a reader never sees a partial image and a crash leaves only a
`.part` file that no row points to. Locations are `file://` URLs; with
`filesystem_store_metadata_file` each location also carries the `{id, mountpoint}`
metadata that compute nodes use to map the URL onto their own mount of the share.

With `drop_behind` (the default) an upload does not fill the page cache: on a file system
with a block device of its own the full chunks go around it (O_DIRECT), elsewhere what is on
disk is dropped from it as the upload goes.
"""
import ctypes
import errno
import json
import os
import re
import uuid
from urllib.parse import unquote, urlparse

from glancelite.durable import fsync_path
from glancelite.store.base import StoredBlob, StoreFull, StoreUnavailable

PART_SUFFIX = ".part"
# Buffered writes start writing dirty pages out every 16 MiB while the upload runs, so the
# final fsync finds little left to do instead of the whole image (about 0.5 s of wall time
# per GiB); with drop_behind, the step before is then waited for and dropped from the cache.
WRITEBACK_STEP = 16 << 20
_SYNC_FILE_RANGE_WAIT_BEFORE, _SYNC_FILE_RANGE_WRITE, _SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4
# O_DIRECT needs buffer address, length and offset aligned to the device's logical block;
# 4 KiB covers every common device (buffers from transfer.py are page-aligned).
DIRECT_ALIGNMENT = 4096
_IMAGE_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class FilesystemStore:
    name = "file"

    def __init__(self, datadir, file_perm=0, metadata_file=None, drop_behind=True):
        self.datadir = os.path.realpath(datadir)
        self.drop_behind = drop_behind
        os.makedirs(self.datadir, exist_ok=True)
        self.direct_writes = drop_behind and _on_block_device(self.datadir)
        self.file_perm = file_perm
        self.metadata = _load_metadata(metadata_file) if metadata_file else {}

    def _path(self, image_id):
        return os.path.join(self.datadir, image_id)

    def url_for(self, image_id):
        return f"file://{self._path(image_id)}"

    def add(self, image_id, chunks, size_hint=None):
        final = self._path(image_id)
        temporary = os.path.join(self.datadir, f".{image_id}.{uuid.uuid4().hex}{PART_SUFFIX}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                size = self._write(fd, temporary, chunks)
                os.fsync(fd)
                if self.file_perm:
                    os.fchmod(fd, self.file_perm)
            finally:
                os.close(fd)
            os.rename(temporary, final)
            fsync_path(self.datadir)
        except BaseException as exc:
            _remove_quietly(temporary)
            if isinstance(exc, OSError):
                raise _store_error(exc) from exc
            raise
        return StoredBlob(url=self.url_for(image_id), size=size, metadata=dict(self.metadata))

    def _write(self, fd, path, chunks):
        """Write every chunk; the bytes written."""
        direct = _open_direct(path) if self.direct_writes else None
        if direct is None:
            return self._write_buffered(fd, chunks)
        try:
            return _write_direct(direct, fd, chunks)
        finally:
            os.close(direct)

    def _write_buffered(self, fd, chunks):
        """Write through the page cache, with writeback started (and, with drop_behind, the
        written pages dropped) one step behind."""
        size = previous = flushed = 0
        for chunk in chunks:
            _write_all(fd, chunk, size)
            size += len(chunk)
            if size - flushed >= WRITEBACK_STEP:
                _start_writeback(fd, flushed, size - flushed)
                if self.drop_behind and flushed:
                    _drop_written(fd, previous, flushed - previous)
                previous, flushed = flushed, size
        return size

    def blob_owner(self, url):
        """The image whose own bytes a URL holds (files named by an image id), else None."""
        name = os.path.basename(self._owned_path(url))
        return name if _IMAGE_ID.match(name) else None

    def open(self, url, offset, length=None):
        handle = open(self._owned_path(url), "rb")
        handle.seek(offset)
        return handle

    def delete(self, url):
        _remove_quietly(self._owned_path(url))

    def discard_partial(self, image_id):
        for name in os.listdir(self.datadir):
            if name.startswith(f".{image_id}.") and name.endswith(PART_SUFFIX):
                _remove_quietly(os.path.join(self.datadir, name))

    def size_of(self, url):
        try:
            return os.stat(self._owned_path(url)).st_size
        except (OSError, ValueError):
            return None

    def owns(self, url):
        try:
            self._owned_path(url)
        except ValueError:
            return False
        return True

    def _owned_path(self, url):
        """The real path of a file:// URL, refused unless it lies inside the data directory."""
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise ValueError(f"not a file URL of this store: {url}")
        given = unquote(parsed.path)
        path = os.path.realpath(given)
        if os.path.dirname(path) != self.datadir or os.path.basename(path).startswith("."):
            raise ValueError(f"outside the store directory: {url}")
        if path != given:  # `..`, `//` or a symlink: only the one spelling of a file counts
            raise ValueError(f"not the canonical URL of a file in the store: {url}")
        return path


def _load_metadata(path):
    """The {id, mountpoint} document compute nodes match against their own mounts."""
    with open(path) as handle:
        metadata = json.load(handle)
    if not isinstance(metadata, dict) or not {"id", "mountpoint"} <= set(metadata):
        raise ValueError(f"{path}: filesystem store metadata must be a JSON object with "
                         f"'id' and 'mountpoint'")
    return metadata


def _write_direct(direct, fd, chunks):
    """Write whole aligned chunks through `direct` (an O_DIRECT descriptor), the rest (the
    short last chunk) through `fd`; a buffer the kernel refuses as unaligned (EINVAL) sends
    it and everything after it through `fd`."""
    size = 0
    for chunk in chunks:
        if direct is not None and len(chunk) % DIRECT_ALIGNMENT == 0:
            try:
                _write_all(direct, chunk, size)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                direct = None
        if direct is None or len(chunk) % DIRECT_ALIGNMENT:
            _write_all(fd, chunk, size)
        size += len(chunk)
    return size


def _write_all(fd, chunk, offset):
    view = memoryview(chunk)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _on_block_device(path):
    """Whether `path` lies on a file system with a block device of its own (ext4, XFS):
    O_DIRECT there is a DMA from our buffer. Network, FUSE and memory file systems have
    anonymous devices (major 0), and on NFS every direct write would be a synchronous round
    trip, so they keep the buffered path."""
    return hasattr(os, "O_DIRECT") and os.major(os.stat(path).st_dev) != 0


def _open_direct(path):
    """A second descriptor on `path` that bypasses the page cache, or None where the file
    system refuses O_DIRECT."""
    try:
        return os.open(path, os.O_WRONLY | os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


def _sync_file_range():
    """glibc's sync_file_range(2), or None where it does not exist (not Linux, not glibc)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return function


_SYNC_FILE_RANGE = _sync_file_range()


def _start_writeback(fd, offset, length):
    """Ask the kernel to begin writing a range out, without waiting (an optimisation only:
    the fsync before the rename is what makes the image durable)."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _drop_written(fd, offset, length):
    """Wait until a range is on disk, then let the kernel reuse its pages (clean pages only
    can be dropped, hence the wait; where sync_file_range is missing this only advises)."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WAIT_BEFORE
                         | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _store_error(exc):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(str(exc))
    return StoreUnavailable(str(exc))
