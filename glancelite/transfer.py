"""Streaming image data in: full 1 MiB chunks read into a few reused buffers, counted and
hashed on the way to the store.

The generator enforces the size rules while bytes flow — `image_size_cap` and the size the
client announced — so a store never has to hold or re-read the whole image. Reusing the
buffers (instead of a new bytes object per read) saves the allocator and the kernel from
mapping and zeroing fresh memory for every MiB: a chunk is valid only until the next one
is asked for, and a buffer is refilled only once the hash threads are done with it.
"""
import mmap

from glancelite.errors import BadRequest, RequestEntityTooLarge

CHUNK_SIZE = 1 << 20
# Buffers in turn: one being filled, the rest with the hash threads or the store. They are
# anonymous mappings, page-aligned, so the file store can write them with O_DIRECT.
_BUFFERS = 8


class ClientDisconnected(Exception):
    """The request body broke off: the client went away mid-upload."""


def metered_chunks(readinto, hashes, expected_size, size_cap):
    """Yield the body from `readinto(buffer)` as memoryviews, feeding `hashes` (a
    ParallelHashes) and checking sizes."""
    buffers = [memoryview(mmap.mmap(-1, CHUNK_SIZE)) for _ in range(_BUFFERS)]
    total = count = 0
    while True:
        buffer = buffers[count % _BUFFERS]
        hashes.wait_hashed(count - _BUFFERS + 1)  # the chunk this buffer held before
        filled = _fill(readinto, buffer)
        if not filled:
            break
        total += filled
        if total > size_cap:
            raise RequestEntityTooLarge("The incoming image is too large: The provided image is "
                                        "too large.")
        if expected_size is not None and total > expected_size:
            raise BadRequest(f"Image data exceeds the announced size of {expected_size} bytes.")
        chunk = buffer[:filled]
        hashes.update(chunk)
        yield chunk
        count += 1
    if expected_size is not None and total < expected_size:
        # With Content-Length framing this is also what a dropped connection looks like.
        raise BadRequest(f"Image data ended after {total} of the announced {expected_size} bytes.")


def _fill(readinto, buffer):
    """Read until the buffer is full or the body ends; the number of bytes read."""
    filled = 0
    while filled < len(buffer):
        try:
            received = readinto(buffer[filled:])
        except Exception as exc:  # the body reader fails when the peer goes away
            raise ClientDisconnected(str(exc)) from exc
        if not received:
            break
        filled += received
    return filled
