"""Service for PATCH /v2/images/{id}: Glance's JSON-patch operations, applied atomically.

The operations are applied in order to a draft of the image (its writable attributes,
extra properties and tag set); the first one that breaks a rule fails the request and
nothing is written. When all pass, the difference between draft and row is saved in the
same transaction that read the row, and that transaction starts by writing the row, so the
database serialises concurrent PATCHes of one image (a row lock on PostgreSQL, the write
lock on SQLite): each one reads what the previous one committed and no change is lost.
"""
from dataclasses import dataclass

from sqlalchemy import update

from glancelite import access, patch
from glancelite.db.models import Image, ImageProperty, ImageTag, db
from glancelite.errors import BadRequest, Conflict, Forbidden, GlanceError
from glancelite.images import check_extra_keys, check_not_negative
from glancelite.schemas import CORE_ATTRIBUTES, READ_ONLY_ATTRIBUTES, is_reserved
from glancelite.timeutil import utcnow

_WRITABLE = tuple(key for key in CORE_ATTRIBUTES
                  if key not in READ_ONLY_ATTRIBUTES and key != "id")
_COLUMNS = tuple(key for key in _WRITABLE if key != "tags")
# disk_format and container_format describe data that is not there yet.
_FORMAT_STATUSES = ("queued", "importing")
_LOCATION_VERBS = {"add": "add", "remove": "remove", "replace": "update"}


@dataclass
class _Draft:
    attributes: dict
    properties: dict

    @classmethod
    def of(cls, image):
        attributes = {key: getattr(image, key) for key in _COLUMNS}
        attributes["tags"] = {tag.value for tag in image.tags}
        return cls(attributes, {prop.name: prop.value for prop in image.properties})


class ImageUpdater:
    def __init__(self, conf, images):
        self.images = images
        self.show_locations = conf["DEFAULT"]["show_multiple_locations"]

    def update(self, ctx, image_id, media_type, body):
        """Apply a PATCH body of the given media type; the image as saved."""
        operations = patch.parse(body, media_type, self.images.schema)
        if not operations:
            return self.images.get(ctx, image_id)
        _claim(image_id)
        try:
            image = self.images.get(ctx, image_id)
            draft = _Draft.of(image)
            for operation in operations:
                self._apply(ctx, image, draft, operation)
            self._check_property_quota(image, draft)
            _save(image, draft)
        except GlanceError:
            db.session.rollback()
            raise
        db.session.commit()
        return image

    def _apply(self, ctx, image, draft, op):
        if op.key == "locations":
            self._refuse_locations(op)
        # Glance checks this for replace only, and an `add /owner` slips through (bug).
        if op.key == "owner" and op.op != "remove" and not ctx.is_admin:
            raise Forbidden("Owner can't be updated by non admin.", detail=True)
        if op.key == "visibility" and op.value == "public" and not ctx.is_admin:
            raise Forbidden("You are not authorized to complete publicize_image action.")
        access.require_owner(ctx, image)
        if op.op == "remove":
            _remove(draft, op.key)
            return
        exists = op.key in _WRITABLE or op.key in draft.properties
        if op.op == "replace" and not exists:
            raise Conflict(f"Property {op.key} does not exist.", detail=True)
        if op.op == "add" and exists and not op.upsert:
            raise Conflict(f"Property {op.key} already present.", detail=True)
        if op.key in _WRITABLE:
            self._set_attribute(image, draft, op.key, op.value)
        else:
            check_extra_keys([op.key])
            # Only the well-known properties (kernel_id, ...) accept null; Glance shows it as "".
            draft.properties[op.key] = "" if op.value is None else op.value

    def _refuse_locations(self, op):
        """Location management arrives with the image-data work; until then say so."""
        if op.op == "replace" and not op.value:
            raise Forbidden("Cannot set locations to empty list.", detail=True)
        verb = _LOCATION_VERBS[op.op]
        if not self.show_locations:
            raise Forbidden(f"It's not allowed to {verb} locations if locations are invisible.")
        raise BadRequest(f"Cannot {verb} locations: location management is not available yet.")

    def _set_attribute(self, image, draft, key, value):
        if key in ("disk_format", "container_format") and image.status not in _FORMAT_STATUSES:
            raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
        if key in ("min_ram", "min_disk"):
            check_not_negative({key: value})
        if key == "tags":
            value = set(value)
            self.images._check_quota("tags", len(value), self.images.tag_quota)
        draft.attributes[key] = value

    def _check_property_quota(self, image, draft):
        """Counted only when keys are added, so an image over a lowered quota can still shrink."""
        if draft.properties.keys() - {prop.name for prop in image.properties}:
            counted = sum(1 for key in draft.properties if not is_reserved(key))
            self.images._check_quota("properties", counted, self.images.property_quota)


def _claim(image_id):
    """Bump updated_at before reading: that write holds the row (PostgreSQL) or the database
    (SQLite) until commit, so this PATCH sees every earlier one and later ones wait for it."""
    db.session.execute(update(Image).where(Image.id == image_id).values(updated_at=utcnow()))


def _remove(draft, key):
    if key in _WRITABLE:
        raise Forbidden(f"Property {key} may not be removed.", detail=True)
    if key not in draft.properties:
        raise Conflict(f"Property {key} does not exist.", detail=True)
    del draft.properties[key]


def _save(image, draft):
    """Write only what differs, so a key removed and added again is an update, not a clash."""
    for key in _COLUMNS:
        if getattr(image, key) != draft.attributes[key]:
            setattr(image, key, draft.attributes[key])
    tags = draft.attributes["tags"]
    for tag in [tag for tag in image.tags if tag.value not in tags]:
        image.tags.remove(tag)
    kept = {tag.value for tag in image.tags}
    image.tags.extend(ImageTag(value=value) for value in tags - kept)
    properties = {prop.name: prop for prop in image.properties}
    for name, prop in properties.items():
        if name not in draft.properties:
            image.properties.remove(prop)
        elif prop.value != draft.properties[name]:
            prop.value = draft.properties[name]
    image.properties.extend(ImageProperty(name=name, value=value)
                            for name, value in draft.properties.items() if name not in properties)
