"""The image and member definitions: what the server validates and what /v2/schemas shows.

Every attribute is declared once, as a marshmallow field that also knows its JSON-schema
shape, so the schema clients download (glanceclient builds its flags and client-side
checks from it) can never drift from what the server accepts. Messages follow the
jsonschema wording Glance users see ("'x' is not one of [...]").
"""
import re
from functools import lru_cache

from marshmallow import INCLUDE, Schema, ValidationError, fields

from glancelite.errors import BadRequest

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]
VISIBILITIES = ["community", "public", "private", "shared"]
MEMBER_STATUSES = ["pending", "accepted", "rejected"]
_JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}


class JsonField(fields.Field):
    """A value checked the way jsonschema checks it: exact JSON type, then constraints."""

    def __init__(self, json_type, description, *, nullable=False, read_only=False,
                 max_length=None, enum=None, pattern=None, items=None, extra_schema=None,
                 **kwargs):
        super().__init__(allow_none=nullable, **kwargs)
        self.json_type = json_type
        self.description = description
        self.nullable = nullable
        self.read_only = read_only
        self.max_length = max_length
        self.enum = enum
        self.pattern = pattern
        self.items = items
        self.extra_schema = extra_schema or {}
        self.error_messages["null"] = f"None is not of type '{json_type}'"

    def _deserialize(self, value, attr, data, **kwargs):
        check_json_value(self, value)
        return value

    def json_schema(self):
        """This field's entry in the served JSON schema."""
        schema = {"type": ["null", self.json_type] if self.nullable else self.json_type,
                  "description": self.description}
        if self.read_only:
            schema["readOnly"] = True
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.enum is not None:
            schema["enum"] = ([None] if self.nullable else []) + list(self.enum)
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.items is not None:
            schema["items"] = self.items.json_schema()
            del schema["items"]["description"]
        schema.update(self.extra_schema)
        return schema


def check_json_value(field, value):
    """Raise ValidationError with jsonschema's wording when `value` breaks `field`."""
    if value is None and field.nullable:
        return
    expected = _JSON_TYPES[field.json_type]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValidationError(f"{value!r} is not of type '{field.json_type}'")
    if field.enum is not None and value not in field.enum:
        raise ValidationError(f"{value!r} is not one of {list(field.enum)!r}")
    if field.max_length is not None and len(value) > field.max_length:
        raise ValidationError(f"{value!r} is too long")
    if field.pattern is not None and not re.search(field.pattern, value):
        raise ValidationError(f"{value!r} does not match {field.pattern!r}")
    if field.items is not None:
        for item in value:
            check_json_value(field.items, item)


def _string(description, **kw):
    return JsonField("string", description, **kw)


def _read_only(json_type, description, **kw):
    return JsonField(json_type, description, read_only=True, nullable=kw.pop("nullable", True), **kw)


def _core_fields(disk_formats, container_formats):
    """The 24 base attributes of an image, in the order Glance's schema lists them."""
    return {
        "id": _string("An identifier for the image", pattern=UUID_PATTERN),
        "name": _string("Descriptive name for the image", nullable=True, max_length=255),
        "status": _read_only("string", "Status of the image", enum=STATUSES, nullable=False),
        "visibility": _string("Scope of image accessibility", enum=VISIBILITIES),
        "protected": JsonField("boolean", "If true, image will not be deletable."),
        "os_hidden": JsonField("boolean", "If true, image will not appear in default image list response."),
        "checksum": _read_only("string", "md5 hash of image contents.", max_length=32),
        "os_hash_algo": _read_only("string", "Algorithm to calculate the os_hash_value", max_length=64),
        "os_hash_value": _read_only("string", "Hexdigest of the image contents using the algorithm "
                                    "specified by the os_hash_algo", max_length=128),
        "owner": _string("Owner of the image", nullable=True, max_length=255),
        "size": _read_only("integer", "Size of image file in bytes"),
        "virtual_size": _read_only("integer", "Virtual size of image in bytes"),
        "container_format": _string("Format of the container", nullable=True, enum=container_formats),
        "disk_format": _string("Format of the disk", nullable=True, enum=disk_formats),
        "created_at": _read_only("string", "Date and time of image registration", nullable=False),
        "updated_at": _read_only("string", "Date and time of the last image modification", nullable=False),
        "tags": JsonField("array", "List of strings related to the image",
                          items=_string("A tag", max_length=255)),
        "direct_url": _read_only("string", "URL to access the image file kept in external store",
                                 nullable=False),
        "min_ram": JsonField("integer", "Amount of ram (in MB) required to boot image."),
        "min_disk": JsonField("integer", "Amount of disk space (in GB) required to boot image."),
        "self": _read_only("string", "An image self url", nullable=False),
        "file": _read_only("string", "An image file url", nullable=False),
        "stores": _read_only("string", "Store in which image data resides.  Only present when the "
                             "operator has enabled multiple stores.  May be a comma-separated "
                             "list of store identifiers.", nullable=False),
        "schema": _read_only("string", "An image schema url", nullable=False),
        "locations": JsonField("array", "A set of URLs to access the image file kept in external store",
                               extra_schema={"items": _LOCATION_ITEM}),
    }


_LOCATION_ITEM = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "maxLength": 255},
        "metadata": {"type": "object"},
        "validation_data": {
            "description": "Values to be used to populate the corresponding image properties. "
                           "If the image status is not 'queued', values must exactly match "
                           "those already contained in the image properties.",
            "type": "object",
            "writeOnly": True,
            "additionalProperties": False,
            "properties": {
                "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                "os_hash_algo": {"type": "string", "maxLength": 64},
                "os_hash_value": {"type": "string", "maxLength": 128},
            },
            "required": ["os_hash_algo", "os_hash_value"],
        },
    },
    "required": ["url", "metadata"],
}


def _default_custom_fields():
    """Well-known extra properties Glance documents in its schema (is_base: false)."""
    def custom(field):
        field.extra_schema["is_base"] = False
        return field
    return {
        "kernel_id": custom(_string("ID of image stored in Glance that should be used as the kernel "
                                    "when booting an AMI-style image.", nullable=True,
                                    pattern=UUID_PATTERN)),
        "ramdisk_id": custom(_string("ID of image stored in Glance that should be used as the "
                                     "ramdisk when booting an AMI-style image.", nullable=True,
                                     pattern=UUID_PATTERN)),
        "instance_uuid": custom(_string("Metadata which can be used to record which instance this "
                                        "image is associated with. (Informational only, does not "
                                        "create an instance snapshot.)")),
        "architecture": custom(_string("Operating system architecture as specified in "
                                       "https://docs.openstack.org/python-glanceclient/latest/cli"
                                       "/property-keys.html")),
        "os_distro": custom(_string("Common name of operating system distribution as specified in "
                                    "https://docs.openstack.org/python-glanceclient/latest/cli"
                                    "/property-keys.html")),
        "os_version": custom(_string("Operating system version as specified by the distributor.")),
        "description": custom(_string("A human-readable string describing this image.")),
        "cinder_encryption_key_id": custom(_string("Identifier in the OpenStack Key Management "
                                                   "Service for the encryption key for the Block "
                                                   "Storage Service to use when mounting a volume "
                                                   "created from this image")),
        "cinder_encryption_key_deletion_policy": custom(_string(
            "States the condition under which the Image Service will delete the object associated "
            "with the 'cinder_encryption_key_id' image property.",
            enum=["on_image_deletion", "do_not_delete"])),
    }


READ_ONLY_ATTRIBUTES = ("created_at", "updated_at", "status", "checksum", "os_hash_algo",
                        "os_hash_value", "size", "virtual_size", "direct_url", "self", "file",
                        "schema", "stores")
RESERVED_ATTRIBUTES = ("location", "deleted", "deleted_at")
CORE_ATTRIBUTES = ("id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
                   "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size",
                   "container_format", "disk_format", "created_at", "updated_at", "tags",
                   "min_ram", "min_disk")
EXTRA_KEY_MAX = 255


def is_reserved(key):
    return key in RESERVED_ATTRIBUTES or key.startswith("os_glance")


class ImageSchema:
    """Validates image bodies and renders /v2/schemas/image for one configuration."""

    def __init__(self, disk_formats, container_formats):
        self.fields = {**_core_fields(disk_formats, container_formats), **_default_custom_fields()}
        writable = {name: field for name, field in self.fields.items() if not field.read_only}
        self._marshmallow = Schema.from_dict(writable, name="ImageBody")(unknown=INCLUDE)

    def validate(self, body):
        """Check a (possibly partial) image body; raise 400 with jsonschema-style text."""
        try:
            self._marshmallow.load(body, partial=True)
        except ValidationError as exc:
            field, messages = next(iter(exc.messages.items()))
            raise BadRequest(f"Provided object does not match schema 'image': {messages[0]}\n\n"
                             f"Failed validating in schema['properties']['{field}']") from None
        for key, value in body.items():
            if key not in self.fields and not isinstance(value, str):
                raise BadRequest(f"Provided object does not match schema 'image': {value!r} is not "
                                 f"of type 'string'\n\nFailed validating 'type' in "
                                 f"schema['additionalProperties']")

    def json_schema(self):
        return {
            "name": "image",
            "properties": {name: field.json_schema() for name, field in self.fields.items()},
            "additionalProperties": {"type": "string"},
            "links": [{"rel": "self", "href": "{self}"},
                      {"rel": "enclosure", "href": "{file}"},
                      {"rel": "describedby", "href": "{schema}"}],
        }

    def images_json_schema(self):
        return {
            "name": "images",
            "properties": {
                "images": {"type": "array", "items": self.json_schema()},
                "schema": {"type": "string"},
                "first": {"type": "string"},
                "next": {"type": "string"},
            },
            "links": [{"rel": "first", "href": "{first}"},
                      {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}],
        }


@lru_cache(maxsize=8)
def image_schema(disk_formats, container_formats):
    """The ImageSchema for a configuration (formats as tuples so it can be cached)."""
    return ImageSchema(disk_formats, container_formats)


MEMBER_FIELDS = {
    "member_id": _string("An identifier for the image member (tenantId)"),
    "image_id": _string("An identifier for the image", pattern=UUID_PATTERN),
    "created_at": _string("Date and time of image member creation"),
    "updated_at": _string("Date and time of last modification of image member"),
    "status": _string("The status of this image member", enum=MEMBER_STATUSES),
    "schema": _read_only("string", "An image member schema url", nullable=False),
}


def member_json_schema():
    return {"name": "member",
            "properties": {name: field.json_schema() for name, field in MEMBER_FIELDS.items()}}


def members_json_schema():
    return {"name": "members",
            "properties": {"members": {"type": "array", "items": member_json_schema()},
                           "schema": {"type": "string"}},
            "links": [{"rel": "describedby", "href": "{schema}"}]}


def metadefs_namespace_json_schema():
    """Minimal metadefs schemas: clients fetch them on every command, we serve no metadefs."""
    return {"name": "namespace", "additionalProperties": False,
            "properties": {
                "namespace": {"type": "string", "maxLength": 80,
                              "description": "The unique namespace text."},
                "display_name": {"type": "string", "maxLength": 80},
                "description": {"type": "string", "maxLength": 500},
                "visibility": {"type": "string", "enum": ["public", "private"]},
                "protected": {"type": "boolean"},
                "owner": {"type": "string", "maxLength": 255},
                "created_at": {"type": "string", "readOnly": True, "format": "date-time"},
                "updated_at": {"type": "string", "readOnly": True, "format": "date-time"},
                "schema": {"type": "string", "readOnly": True},
                "self": {"type": "string", "readOnly": True},
            },
            "required": ["namespace"]}


def metadefs_resource_type_json_schema():
    return {"name": "resource_type_association", "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "maxLength": 80,
                         "description": "Resource type names should be aligned with Heat "
                                        "resource types whenever possible."},
                "prefix": {"type": "string", "maxLength": 80},
                "properties_target": {"type": "string", "maxLength": 80},
                "created_at": {"type": "string", "readOnly": True, "format": "date-time"},
                "updated_at": {"type": "string", "readOnly": True, "format": "date-time"},
            },
            "required": ["name"]}
