"""The filesystem store's write path, with and without dropping written pages behind it."""
import hashlib
import os

import pytest

from glancelite.store.filesystem import WRITEBACK_STEP, FilesystemStore


@pytest.mark.parametrize("drop_behind", [True, False])
def test_bytes_written_across_writeback_steps_are_exact(tmp_path, drop_behind):
    store = FilesystemStore(tmp_path / "images", drop_behind=drop_behind)
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

    blob = store.add("7b3e5a40-9c1f-4d2e-8a6b-0f1e2d3c4b5a", chunks())
    path = tmp_path / "images" / "7b3e5a40-9c1f-4d2e-8a6b-0f1e2d3c4b5a"
    assert blob.size == sum(sizes) == path.stat().st_size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest.hexdigest()
    assert [entry.name for entry in (tmp_path / "images").iterdir()] == [path.name]
