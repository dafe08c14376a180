"""The filesystem store's write path, with and without dropping written pages behind it."""
import hashlib
import mmap
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from glancelite.store.filesystem import WRITEBACK_STEP, FilesystemStore
from tests.support.page_cache import cached_fraction

IMAGE_ID = "7b3e5a40-9c1f-4d2e-8a6b-0f1e2d3c4b5a"


@pytest.fixture(params=["disk", "tmpfs"])
def store_parent(request, tmp_path):
    """Where the store directory lives: on the disk (O_DIRECT is possible) or on tmpfs (it is
    not: buffered writes, with writeback and drop-behind)."""
    if request.param == "disk":
        yield tmp_path
        return
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm (tmpfs) on this machine")
    parent = tempfile.mkdtemp(dir="/dev/shm", prefix="glancelite-test-")
    try:
        yield Path(parent)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.parametrize("drop_behind", [True, False])
def test_bytes_written_across_writeback_steps_are_exact(store_parent, drop_behind):
    """Chunks of odd lengths from a bytearray (not page-aligned, so O_DIRECT refuses them)
    land byte for byte on every write path."""
    store = FilesystemStore(store_parent / "images", drop_behind=drop_behind)
    chunk = bytearray(1 << 20)
    digest = hashlib.sha256()
    sizes = []

    def chunks():  # one reused buffer, as the upload path lends them
        for number in range(3 * WRITEBACK_STEP // len(chunk) + 1):
            length = len(chunk) - number % 7  # some chunks short
            chunk[:length] = os.urandom(length)
            view = memoryview(chunk)[:length]
            digest.update(view)
            sizes.append(len(view))
            yield view

    blob = store.add(IMAGE_ID, chunks())
    path = store_parent / "images" / IMAGE_ID
    assert blob.size == sum(sizes) == path.stat().st_size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest.hexdigest()
    assert [entry.name for entry in (store_parent / "images").iterdir()] == [path.name]


@pytest.mark.parametrize("drop_behind", [True, False])
def test_an_upload_fills_the_page_cache_only_without_drop_behind(tmp_path, drop_behind):
    """With drop_behind on a disk-backed file system the image goes around the page cache, so
    an upload does not push out what downloads are reading; without it the new image stays
    cached for its first download."""
    store = FilesystemStore(tmp_path / "images", drop_behind=drop_behind)
    buffers = [memoryview(mmap.mmap(-1, 1 << 20)) for _ in range(2)]  # page-aligned, as lent
    digest = hashlib.sha256()

    def chunks():
        for number in range(40):
            buffer = buffers[number % 2]
            buffer[:] = os.urandom(len(buffer))
            digest.update(buffer)
            yield buffer
        tail = buffers[0][:12345]  # the short last chunk
        tail[:] = os.urandom(len(tail))
        digest.update(tail)
        yield tail

    store.add(IMAGE_ID, chunks())
    path = tmp_path / "images" / IMAGE_ID
    assert path.stat().st_size == 40 * (1 << 20) + 12345
    cached = cached_fraction(path)
    if drop_behind:
        assert cached < 0.05
    else:
        assert cached > 0.95
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest.hexdigest()
