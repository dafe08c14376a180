"""PATCH operations on `/locations`, refused unless the URL lies inside our own store.

Glance lets a client point an image at any URL its stores can read; with the filesystem
store that meant `file:///etc/passwd` (OSSN-0065). Here a location is accepted only when
the store owns the URL (a file directly inside the store directory), bytes exist there
and they are not another image's own blob (deleting that image would delete them).
A location that is not the image's own blob is only a reference: deleting the image or
removing the location never deletes such bytes.
"""
from dataclasses import dataclass, field

from glancelite.errors import BadRequest, Conflict, Forbidden, RequestEntityTooLarge
from glancelite.hashing import ParallelHashes
from glancelite.transfer import CHUNK_SIZE

VERBS = {"add": "add", "remove": "remove", "replace": "update"}
_VALIDATION_KEYS = {"checksum", "os_hash_algo", "os_hash_value"}


@dataclass
class LocationDraft:
    url: str
    metadata: dict
    size: int
    validation: dict = field(default_factory=dict)


def apply(op, image, locations, store, show_locations, quota):
    """Apply one /locations operation to the `locations` list (LocationDrafts) in place."""
    verb = VERBS[op.op]
    if op.op == "replace" and not op.value:
        raise Forbidden("Cannot set locations to empty list.", detail=True)
    if not show_locations:
        raise Forbidden(f"It's not allowed to {verb} locations if locations are invisible.")
    if op.op == "replace":
        if not isinstance(op.value, list):
            raise BadRequest("Invalid locations: expected a list of {url, metadata} objects.")
        locations[:] = [_checked(value, store, image.id) for value in op.value]
    elif op.op == "add":
        locations.insert(_index(op.path[1], len(locations) + 1, allow_end=True),
                         _checked(op.value, store, image.id))
    else:
        if image.status == "queued":
            raise Conflict("It's not allowed to remove locations if image status is queued.")
        index = _index(op.path[1], len(locations), allow_end=False)
        if len(locations) == 1:
            raise Forbidden("Cannot remove last location in the image.", detail=True)
        del locations[index]
    urls = [location.url for location in locations]
    if len(set(urls)) != len(urls):
        raise BadRequest("Invalid location: duplicate location URL.")
    if quota >= 0 and len(locations) > quota:
        raise RequestEntityTooLarge(f"The limit has been exceeded on the number of allowed image "
                                    f"locations. Attempted: {len(locations)}, Maximum: {quota}")


def digests(store, location, algorithm):
    """Hash the bytes at a new location (never trust a client's word for them); they must
    agree with any validation_data given. Reads the whole object: adding a location to a
    large image takes as long as hashing it."""
    hashes = ParallelHashes("md5", algorithm)
    source = store.open(location.url, 0)
    try:
        chunks = iter(lambda: source.read(CHUNK_SIZE), b"") if hasattr(source, "read") else source
        for chunk in chunks:
            hashes.update(chunk)
    except BaseException:
        hashes.abandon()
        raise
    finally:
        getattr(source, "close", lambda: None)()
    found = hashes.hexdigests()
    result = {"checksum": found["md5"], "os_hash_value": found[algorithm]}
    claimed = location.validation
    if claimed.get("os_hash_algo", algorithm) != algorithm:
        raise BadRequest(f"Invalid validation_data: this site hashes with {algorithm}.")
    for key in ("checksum", "os_hash_value"):
        if key in claimed and claimed[key] != result[key]:
            raise BadRequest(f"Invalid validation_data: {key} does not match the data at "
                             f"{location.url}.")
    return result


def consistent_sizes(image, locations):
    """The size all locations agree on; it must match data the image already has."""
    sizes = {location.size for location in locations}
    if len(sizes) > 1 or (image.size is not None and sizes and sizes != {image.size}):
        raise BadRequest("Invalid location: the data at the locations differs in size from the "
                         "image.")
    return sizes.pop() if sizes else image.size


def _checked(value, store, image_id):
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) \
            or not isinstance(value.get("metadata", {}), dict):
        raise BadRequest("Invalid location: expected an object with 'url' and 'metadata'.")
    url = value["url"]
    if not store.owns(url):
        raise BadRequest(f"Invalid location: {url} is not inside a configured store.")
    if store.blob_owner(url) not in (None, image_id):
        raise BadRequest(f"Invalid location: {url} holds another image's data.")
    size = store.size_of(url)
    if not size:
        raise BadRequest(f"Invalid location: there is no image data at {url}.")
    validation = value.get("validation_data") or {}
    if not isinstance(validation, dict) or not set(validation) <= _VALIDATION_KEYS:
        raise BadRequest("Invalid validation_data: only checksum, os_hash_algo and "
                         "os_hash_value are allowed.")
    return LocationDraft(url=url, metadata=value.get("metadata", {}), size=size,
                         validation=validation)


def _index(segment, length, allow_end):
    if segment == "-" and allow_end:
        return length - 1
    if not segment.isdigit() or int(segment) >= length:
        raise BadRequest(f"Invalid position for a location: '{segment}'.")
    return int(segment)

