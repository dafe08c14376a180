"""What a store promises: streamed add, ranged read, delete, and which URLs it owns.

The service hashes and counts bytes while they flow (glancelite.transfer); a store only
moves them. A store must make a blob visible only once it is whole and must leave
nothing behind when `add` fails.
"""
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator, Protocol


class StoreFull(Exception):
    """The store has no room for the image."""


class StoreUnavailable(Exception):
    """The store cannot be reached or failed; the client may retry later."""


@dataclass(frozen=True)
class StoredBlob:
    url: str
    size: int
    metadata: dict = field(default_factory=dict)


class Store(Protocol):
    name: str

    def add(self, image_id: str, chunks: Iterable[bytes], size_hint: int | None = None) -> StoredBlob:
        """Write all chunks; visible only when complete. Any exception leaves nothing behind.
        A chunk is valid only until the next one is taken (its buffer is reused): a store
        that keeps bytes for later must copy them. `size_hint`: the size the client
        announced, if any (S3 sizes its parts by it)."""

    def url_for(self, image_id: str) -> str:
        """The URL `add` stores an image's own bytes under (only these are ever deleted)."""

    def blob_owner(self, url: str) -> str | None:
        """The image id whose own bytes `url` holds, None for any other object in the store."""

    def open(self, url: str, offset: int, length: int | None = None) -> BinaryIO | Iterator[bytes]:
        """The blob from `offset` on: a real file (served with sendfile) or an iterator.
        `length`, when given, is all the caller will read (S3 asks for just that range)."""

    def delete(self, url: str) -> None:
        """Remove the blob; a blob already gone is not an error."""

    def discard_partial(self, image_id: str) -> None:
        """Remove what unfinished `add`s of this image left (a dead worker's temporary file or
        pending multipart upload); never the finished blob. Nothing left is not an error."""

    def size_of(self, url: str) -> int | None:
        """Size of the blob at a URL this store owns, None when there is no such blob."""

    def owns(self, url: str) -> bool:
        """True only for URLs that point inside this store (checked before trusting a URL)."""
