"""Glance's two JSON-patch dialects for images, parsed into a list of Operations.

v2.1 (`application/openstack-images-v2.1-json-patch`) is RFC 6902 style
(`{"op": "add", "path": "/x", "value": ...}`) where `add` overwrites; v2.0 (the old
draft) names the op as the key (`{"add": "/x", "value": ...}`) and `add` refuses an
existing key. Everything that can be judged without the image is judged here, in the
order Glance's deserializer judges it, so a bad request fails the same way whether or not
the image exists: shape, op, JSON pointer, depth, read-only and reserved names, the
presence of `value`, then the value against the image schema.
"""
import re
from dataclasses import dataclass

from glancelite.errors import BadRequest, Forbidden
from glancelite.schemas import READ_ONLY_ATTRIBUTES, is_reserved

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"
MEDIA_TYPES = (V20, V21)
OPS = ("add", "remove", "replace")
# PATCH refuses `id` too; it is only settable at create.
_READ_ONLY = READ_ONLY_ATTRIBUTES + ("id",)
# `locations` is addressed per element for add/remove and as a whole for replace.
_LOCATION_DEPTH = {"add": 2, "remove": 2, "replace": 1}
_BAD_TILDE = re.compile(r"~(?![01])")


@dataclass(frozen=True)
class Operation:
    op: str
    path: tuple
    value: object = None
    upsert: bool = True  # False in v2.0: add on an existing key is a conflict

    @property
    def key(self):
        return self.path[0]


def parse(body, media_type, schema):
    """Operations of a decoded PATCH body; `schema` (an ImageSchema) checks the values."""
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    operations = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        op, pointer = _op_and_pointer(raw, media_type)
        path = _segments(pointer)
        _check_path(op, path)
        value = None
        if op != "remove":
            if "value" not in raw:
                raise BadRequest(f'Operation "{op}" requires a member named "value".')
            value = raw["value"]
            schema.validate({path[0]: [value] if len(path) > 1 else value})
        operations.append(Operation(op, path, value, upsert=media_type == V21))
    return operations


def _op_and_pointer(raw, media_type):
    if media_type == V20:
        named = [op for op in OPS if op in raw]
        if not named:
            raise BadRequest('Operation objects must contain exactly one member named "add", '
                             '"remove", or "replace".')
        if len(named) > 1:
            raise BadRequest('Operation objects must contain only one member named "add", '
                             '"remove", or "replace".')
        return named[0], raw[named[0]]
    op = raw.get("op")
    if op is None:
        raise BadRequest("Unable to find `op` in JSON Schema change. It must be one of the "
                         "following: add, remove, replace.")
    if op not in OPS:
        raise BadRequest(f"Invalid operation: `{op}`. It must be one of the following: add, "
                         f"remove, replace.")
    if "path" not in raw:
        raise BadRequest("Unable to find 'path' in JSON Schema change")
    return op, raw["path"]


def _segments(pointer):
    """Decode a JSON pointer into keys: `~1` is `/`, `~0` is `~`, blanks are stripped."""
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise BadRequest(f'Pointer `{pointer}` does not start with "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise BadRequest(f'Pointer `{pointer}` end with "/".')
    relative = pointer.lstrip("/")
    if "//" in relative:
        raise BadRequest(f'Pointer `{pointer}` contains adjacent "/".')
    if _BAD_TILDE.search(relative):
        raise BadRequest(f'Pointer `{pointer}` contains "~" not part of a recognized escape '
                         f'sequence.')
    return tuple(part.replace("~1", "/").replace("~0", "~").strip()
                 for part in relative.split("/"))


def _check_path(op, path):
    root = path[0]
    depth = _LOCATION_DEPTH[op] if root == "locations" else 1
    if len(path) != depth:
        raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
    if root in _READ_ONLY:
        raise Forbidden(f"Attribute '{root}' is read-only.")
    if is_reserved(root):
        raise Forbidden(f"Attribute '{root}' is reserved.")
