"""Image data: uploads from a file or stdin, verified and resumable downloads.

Uploads send `Content-Length` and `x-openstack-image-size` when the size is known (a file,
or --size), chunked otherwise. A terminal, an empty file or an empty pipe on stdin is not
image data (glanceclient would upload 0 bytes and make an empty active image).

Downloads go to FILE.part; the bytes are hashed on the way with `os_hash_algo` (any hashlib
algorithm) or md5 `checksum`, fsynced, then renamed to FILE. A mismatch removes the part
file and exits 3. An interrupted download keeps FILE.part, and `--resume` continues it with
`Range: bytes=N-` plus `If-Range: "<os_hash_value>"` (glancelite's ETag), hashing the bytes
already on disk first; a server that answers 200 instead of 206 gets the file started over.
"""
import hashlib
import os
import stat
import sys
from dataclasses import dataclass

import requests
from tqdm import tqdm

from glancelite.cli.errors import CommandError, CorruptDownload, HTTPError
from glancelite.cli.http import seg

CHUNK = 1 << 20
_STREAM_ERRORS = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                  requests.exceptions.ContentDecodingError, requests.exceptions.Timeout)


def progress_bar(enabled, total, initial=0, desc=None):
    """A tqdm bar on stderr with rate and ETA (ETA only when the size is known)."""
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, disable=not enabled, desc=desc, dynamic_ncols=True)


# -- uploads ---------------------------------------------------------------------------------

@dataclass
class DataSource:
    """Image data to upload: a binary stream, its size if known, and a peeked first chunk."""
    stream: object
    size: int | None
    label: str
    first: bytes = b""


def data_source(path, stdin, size_hint=None):
    """The data named by --file, else stdin's data, else None (no image data given)."""
    if path:
        try:
            stream = open(path, "rb")
        except OSError as exc:
            raise CommandError(f"Unable to open {path!r}: {exc.strerror}") from exc
        info = os.fstat(stream.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else size_hint
        return DataSource(stream, size, "--file")
    if stdin is None or stdin.closed or stdin.isatty():
        return None
    stream = stdin.buffer
    info = os.fstat(stream.fileno())
    if stat.S_ISREG(info.st_mode):
        size = info.st_size - stream.tell()
        return DataSource(stream, size, "stdin") if size > 0 else None
    first = stream.read1(CHUNK)
    if not first:
        return None
    return DataSource(stream, size_hint, "stdin", first)


class _SizedBody:
    """A file-like body of known length: requests sends Content-Length, not chunks."""

    def __init__(self, source, bar):
        self.source, self.bar = source, bar

    def __len__(self):
        return self.source.size

    def read(self, _amount=-1):
        chunk, self.source.first = self.source.first or self.source.stream.read(CHUNK), b""
        self.bar.update(len(chunk))
        return chunk


def _chunks(source, bar):
    chunk, source.first = source.first or source.stream.read(CHUNK), b""
    while chunk:
        bar.update(len(chunk))
        yield chunk
        chunk = source.stream.read(CHUNK)


def upload(client, image_id, source, progress=False, store=None):
    """PUT the data to /v2/images/ID/file."""
    headers = {"Content-Type": "application/octet-stream"}
    if source.size is not None:
        headers["x-openstack-image-size"] = str(source.size)
    if store:
        headers["X-Image-Meta-Store"] = store
    with progress_bar(progress, source.size, desc="upload") as bar:
        body = _SizedBody(source, bar) if source.size is not None else _chunks(source, bar)
        client.request("PUT", f"/v2/images/{seg(image_id)}/file", data=body, headers=headers)


def require_store(client, store):
    """--store needs a multi-store server (/v2/info/stores); say so as glance does."""
    try:
        stores = client.get("/v2/info/stores")
    except HTTPError as exc:
        if exc.status == 404:
            raise CommandError("Multi Backend support is not enabled") from exc
        raise
    if store not in [entry.get("id") for entry in stores.get("stores", [])]:
        raise CommandError(f"Store {store} is not valid")


# -- downloads -------------------------------------------------------------------------------

class Verifier:
    """The hash to check a download against: os_hash_algo/os_hash_value, else md5 checksum."""

    def __init__(self, hasher, expected):
        self.hasher, self.expected = hasher, expected

    @classmethod
    def for_image(cls, image, allow_md5_fallback):
        algo, value, checksum = image.get("os_hash_algo"), image.get("os_hash_value"), image.get("checksum")
        if algo and value:
            try:
                return cls(hashlib.new(algo), value)
            except ValueError:
                if not (allow_md5_fallback and checksum):
                    raise CommandError(f"The image's hash algorithm {algo} is not available on "
                                       f"this client; --allow-md5-fallback verifies with md5 "
                                       f"instead") from None
        if checksum:
            return cls(hashlib.md5(usedforsecurity=False), checksum)
        return None

    def fresh(self):
        return Verifier(hashlib.new(self.hasher.name), self.expected)

    def check(self):
        got = self.hasher.hexdigest()
        if got != self.expected.lower():
            raise CorruptDownload(got, self.expected)


def _open_data(client, image_id, headers):
    try:
        return client.request("GET", f"/v2/images/{seg(image_id)}/file", stream=True, headers=headers)
    except HTTPError as exc:
        if exc.status == 416 and headers:
            return None
        raise CommandError(f"Unable to download image '{image_id}'. ({exc})") from exc


def _image(client, image_id):
    try:
        return client.get(f"/v2/images/{seg(image_id)}")
    except HTTPError as exc:
        raise CommandError(f"Unable to download image '{image_id}'. ({exc})") from exc


def _hash_file(path, verifier, length):
    with open(path, "rb") as existing:
        for chunk in iter(lambda: existing.read(CHUNK), b""):
            verifier.hasher.update(chunk[:length])
            length -= len(chunk)
            if length <= 0:
                break


def _resume_offset(part, size, verifier):
    """Bytes of FILE.part worth keeping (0 to start over); their hash is fed to verifier."""
    try:
        have = os.path.getsize(part)
    except OSError:
        return 0
    if size is None or have > size:
        return 0
    if verifier is not None and have:
        _hash_file(part, verifier, have)
    return have


def download(client, image_id, target, progress=False, resume=False, allow_md5_fallback=False):
    """Download the image to `target` (None: stdout), verified; see the module docstring."""
    image = _image(client, image_id)
    verifier = Verifier.for_image(image, allow_md5_fallback)
    size = image.get("size")
    if target is None:
        _to_stdout(client, image_id, size, verifier, progress)
        return
    part = f"{target}.part"
    offset = _resume_offset(part, size, verifier) if resume else 0
    response = None
    if offset == 0 or offset < size:
        response, offset, verifier = _fetch(client, image, offset, verifier)
    written = offset
    try:
        with open(part, "ab" if offset else "wb") as out, \
                progress_bar(progress, size, offset, desc="download") as bar:
            if response is not None:
                written += _copy(response, out, verifier, bar)
            out.flush()
            os.fsync(out.fileno())
    except _STREAM_ERRORS as exc:
        raise CommandError(f"Download of image {image_id} was interrupted ({exc}); {part} keeps "
                           f"the bytes received: rerun with --resume to continue") from exc
    except KeyboardInterrupt:
        print(f"{part} keeps the bytes received: rerun with --resume to continue",
              file=sys.stderr)
        raise
    if size is not None and written != size:
        raise CommandError(f"Download of image {image_id} stopped at {written} of {size} bytes; "
                           f"{part} keeps them: rerun with --resume to continue")
    if verifier is None:
        print(f"Warning: image {image_id} has no checksum; the download was not verified",
              file=sys.stderr)
    else:
        try:
            verifier.check()
        except CorruptDownload:
            os.unlink(part)
            raise
    os.replace(part, target)


def _fetch(client, image, offset, verifier):
    """GET the data from `offset` on; (response, offset, verifier) with offset 0 and a fresh
    verifier when the server cannot continue there (then FILE.part starts over)."""
    image_id, headers = image["id"], {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if image.get("os_hash_value"):
            headers["If-Range"] = f'"{image["os_hash_value"]}"'
    response = _open_data(client, image_id, headers)
    if offset and not _continues_at(response, offset):
        offset, verifier = 0, verifier.fresh() if verifier else None
        if response is None or response.status_code != 200:  # a 200 is the whole image: use it
            if response is not None:
                response.close()
            response = _open_data(client, image_id, {})
    if response.status_code == 204:
        raise CommandError(f"Image {image_id} has no data.")
    return response, offset, verifier or _content_md5(response)


def _continues_at(response, offset):
    """True when the answer is the rest of the image from `offset` (206 at that start)."""
    if response is None or response.status_code != 206:
        return False
    content_range = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")


def _content_md5(response):
    """No hash on the image: the whole-body Content-MD5 header, as glanceclient falls back."""
    md5 = response.headers.get("Content-MD5")
    if response.status_code == 200 and md5 and len(md5) == 32:
        return Verifier(hashlib.md5(usedforsecurity=False), md5)
    return None


def _copy(response, out, verifier, bar):
    copied = 0
    with response:
        for chunk in response.iter_content(CHUNK):
            out.write(chunk)
            if verifier is not None:
                verifier.hasher.update(chunk)
            bar.update(len(chunk))
            copied += len(chunk)
    return copied


def _to_stdout(client, image_id, size, verifier, progress):
    if sys.stdout.isatty():
        raise CommandError("No redirection or local file specified for downloaded image data. "
                           "Please specify a local file with --file to save downloaded image or "
                           "redirect output to another source.")
    response = _open_data(client, image_id, {})
    if response.status_code == 204:
        raise CommandError(f"Image {image_id} has no data.")
    verifier = verifier or _content_md5(response)
    sys.stdout.flush()
    try:
        with progress_bar(progress, size, desc="download") as bar:
            _copy(response, sys.stdout.buffer, verifier, bar)
        sys.stdout.buffer.flush()
    except _STREAM_ERRORS as exc:
        raise CommandError(f"Download of image {image_id} was interrupted ({exc})") from exc
    if verifier is not None:
        verifier.check()
