"""Streaming image data in: fixed-size reads, counted and hashed on the way to the store.

The generator enforces the size rules while bytes flow — `image_size_cap` and the size the
client announced — so a store never has to hold or re-read the whole image.
"""
from glancelite.errors import BadRequest, RequestEntityTooLarge

CHUNK_SIZE = 1 << 20


class ClientDisconnected(Exception):
    """The request body broke off: the client went away mid-upload."""


def metered_chunks(read, hashes, expected_size, size_cap):
    """Yield the body in chunks from `read(n)`, feeding `hashes` and checking sizes."""
    total = 0
    while True:
        try:
            chunk = read(CHUNK_SIZE)
        except Exception as exc:  # the server's body reader fails when the peer goes away
            raise ClientDisconnected(str(exc)) from exc
        if not chunk:
            break
        total += len(chunk)
        if total > size_cap:
            raise RequestEntityTooLarge("The incoming image is too large: The provided image is "
                                        "too large.")
        if expected_size is not None and total > expected_size:
            raise BadRequest(f"Image data exceeds the announced size of {expected_size} bytes.")
        hashes.update(chunk)
        yield chunk
    if expected_size is not None and total < expected_size:
        # With Content-Length framing this is also what a dropped connection looks like.
        raise BadRequest(f"Image data ended after {total} of the announced {expected_size} bytes.")
