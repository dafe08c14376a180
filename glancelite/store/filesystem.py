"""Filesystem store: one file per image in `filesystem_store_datadir`.

Bytes go to a hidden temporary file in the same directory, are fsync'd and then renamed
to the image id, so a reader never sees a partial image and a crash leaves only a
`.part` file that no row points to. Locations are `file://` URLs; with
`filesystem_store_metadata_file` each location also carries the `{id, mountpoint}`
metadata that compute nodes use to map the URL onto their own mount of the share.
"""
import ctypes
import errno
import json
import os
import re
import uuid
from urllib.parse import unquote, urlparse

from glancelite.store.base import StoredBlob, StoreFull, StoreUnavailable

PART_SUFFIX = ".part"
# Start writing dirty pages out every 16 MiB while the upload runs, so the final fsync finds
# little left to do instead of the whole image (about 0.5 s of wall time per GiB); with
# drop_behind, the step before is then waited for and dropped from the page cache.
WRITEBACK_STEP = 16 << 20
_SYNC_FILE_RANGE_WAIT_BEFORE, _SYNC_FILE_RANGE_WRITE, _SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4
_IMAGE_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class FilesystemStore:
    name = "file"

    def __init__(self, datadir, file_perm=0, metadata_file=None, drop_behind=True):
        self.datadir = os.path.realpath(datadir)
        self.drop_behind = drop_behind
        self.file_perm = file_perm
        self.metadata = _load_metadata(metadata_file) if metadata_file else {}
        os.makedirs(self.datadir, exist_ok=True)

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
                size = self._write(fd, chunks)
                os.fsync(fd)
                if self.file_perm:
                    os.fchmod(fd, self.file_perm)
            finally:
                os.close(fd)
            os.rename(temporary, final)
            _fsync_directory(self.datadir)
        except BaseException as exc:
            _remove_quietly(temporary)
            if isinstance(exc, OSError):
                raise _store_error(exc) from exc
            raise
        return StoredBlob(url=self.url_for(image_id), size=size, metadata=dict(self.metadata))

    def _write(self, fd, chunks):
        """Write every chunk; the bytes written."""
        size = previous = flushed = 0
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
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


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _store_error(exc):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(str(exc))
    return StoreUnavailable(str(exc))
