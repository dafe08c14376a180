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

from glancelite import access, locations, patch
from glancelite.authz import image_target
from glancelite.db.models import Image, ImageLocation, ImageProperty, ImageTag, db
from glancelite.errors import BadRequest, Conflict, Forbidden, GlanceError
from glancelite.images import check_extra_keys, check_not_negative
from glancelite.schemas import CORE_ATTRIBUTES, READ_ONLY_ATTRIBUTES, is_reserved
from glancelite.timeutil import utcnow

_WRITABLE = tuple(key for key in CORE_ATTRIBUTES
                  if key not in READ_ONLY_ATTRIBUTES and key != "id")
_COLUMNS = tuple(key for key in _WRITABLE if key != "tags")
# disk_format and container_format describe data that is not there yet.
_FORMAT_STATUSES = ("queued", "importing")


@dataclass
class _Draft:
    attributes: dict
    properties: dict
    locations: list

    @classmethod
    def of(cls, image):
        attributes = {key: getattr(image, key) for key in _COLUMNS}
        attributes["tags"] = {tag.value for tag in image.tags}
        return cls(attributes, {prop.name: prop.value for prop in image.properties},
                   [locations.LocationDraft(loc.url, loc.meta_data, image.size)
                    for loc in image.locations])


class ImageUpdater:
    def __init__(self, conf, images):
        self.images = images
        self.show_locations = conf["DEFAULT"]["show_multiple_locations"]
        self.location_quota = conf["DEFAULT"]["image_location_quota"]
        self.hash_algorithm = conf["DEFAULT"]["hashing_algorithm"]

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
            dropped = self._save_locations(image, draft)
            _save(image, draft)
        except GlanceError:
            db.session.rollback()
            raise
        db.session.commit()
        for url in dropped:
            self.images.store.delete(url)
        return image

    def _apply(self, ctx, image, draft, op):
        authz = self.images.authz
        if op.key == "locations":
            policy = "delete_image_location" if op.op == "remove" else "set_image_location"
            authz.require_for_image(ctx, image, policy)
            access.require_owner(ctx, image)
            locations.apply(op, image, draft.locations, self.images.store, self.show_locations,
                            self.location_quota)
            return
        # Glance checks this for replace only, and an `add /owner` slips through (bug).
        if op.key == "owner" and op.op != "remove" and not ctx.is_admin:
            raise Forbidden("Owner can't be updated by non admin.", detail=True)
        authz.require_for_image(ctx, image, "modify_image")
        if op.key == "visibility" and op.op != "remove":
            authz.require_visibility_change(ctx, op.value, image_target(ctx, image))
        access.require_owner(ctx, image)
        if op.key not in _WRITABLE:
            self._check_protection(ctx, draft, op)
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

    def _check_protection(self, ctx, draft, op):
        """Property protection as Glance applies it to PATCH: a key the caller cannot read
        does not exist for it; changing a readable key needs update, removing it delete,
        and adding a key it cannot see needs create."""
        authz = self.images.authz
        visible = op.key in draft.properties and authz.property_allowed(ctx, op.key, "read")
        if op.op in ("replace", "remove") and not visible:
            raise Conflict(f"Property {op.key} does not exist.", detail=True)
        needed = {"remove": "delete", "replace": "update"}.get(op.op)
        authz.require_property(ctx, op.key, needed or ("update" if visible else "create"))

    def _save_locations(self, image, draft):
        """Write changed locations; a queued image given data this way becomes active.
        Returns the URLs of the image's own bytes that no location points to any more."""
        old = [location.url for location in image.locations]
        new = [location.url for location in draft.locations]
        if old == new and [loc.meta_data for loc in image.locations] == \
                [loc.metadata for loc in draft.locations]:
            return []
        added = [loc for loc in draft.locations if loc.url not in old]
        size = locations.consistent_sizes(image, added)
        digests = [locations.digests(self.images.store, loc, self.hash_algorithm) for loc in added]
        if len({d["os_hash_value"] for d in digests}) > 1:
            raise BadRequest("Invalid location: the locations hold different data.")
        if image.status == "queued":
            image.status, image.size = "active", size
            image.checksum, image.os_hash_value = digests[0]["checksum"], digests[0]["os_hash_value"]
            image.os_hash_algo = self.hash_algorithm
        elif digests and digests[0]["os_hash_value"] != image.os_hash_value:
            raise BadRequest("Invalid location: its data differs from the image's data.")
        now = utcnow()
        image.locations.clear()
        db.session.flush()
        image.locations.extend(ImageLocation(url=loc.url, meta_data=loc.metadata, created_at=now)
                               for loc in draft.locations)
        store = self.images.store  # the image's own bytes, in whichever store holds them
        return [url for url in old if url not in new and store.blob_owner(url) == image.id]

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

