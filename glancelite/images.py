"""The image service: one function per use case, calling access rules, db and store in order.

Nothing here knows HTTP; failures are raised as glancelite.errors exceptions.
"""
import uuid

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from glancelite import access, scrubber
from glancelite.db import image_reads
from glancelite.db.models import Image, ImageProperty, ImageTag, db
from glancelite.errors import BadRequest, Conflict, Forbidden, NotFound, RequestEntityTooLarge
from glancelite.schemas import EXTRA_KEY_MAX, image_schema, is_reserved
from glancelite.timeutil import utcnow

# Keys a client can never send when creating an image (403 read-only), checked first.
_LINK_ATTRIBUTES = ("direct_url", "self", "file", "schema", "stores")
_CREATE_READ_ONLY = ("created_at", "updated_at", "status", "checksum", "os_hash_algo",
                     "os_hash_value", "size", "virtual_size")
_SETTABLE_CORE = ("name", "visibility", "protected", "os_hidden", "owner", "container_format",
                  "disk_format", "min_ram", "min_disk")

# Showing one image: its row, properties and locations in one joined query (locations are
# capped by image_location_quota, so the join stays small), tags in a second one.
_ONE_IMAGE = (joinedload(Image.properties), joinedload(Image.locations))


class ImageService:
    def __init__(self, conf, store, authz, leases=None, scrubber=None):
        self.conf = conf
        self.store = store
        self.authz = authz
        self.leases = leases      # glancelite.leases.Leases: expired uploads are reaped on sight
        self.scrubber = scrubber  # glancelite.scrubber.Scrubber: removes deleted images' bytes
        self.delayed_delete = conf["DEFAULT"]["delayed_delete"]
        defaults = conf["DEFAULT"]
        self.schema = image_schema(tuple(conf["image_format"]["disk_formats"]),
                                   tuple(conf["image_format"]["container_formats"]))
        self.tag_quota = defaults["image_tag_quota"]
        self.property_quota = defaults["image_property_quota"]

    # -- reading -------------------------------------------------------------------------

    def get(self, ctx, image_id, not_found=None):
        """The image if the caller may see it; otherwise 404 as if it did not exist."""
        fresh = not db.session().in_transaction()  # nothing of the caller's to commit under it
        image = db.session.get(Image, image_id, options=_ONE_IMAGE) if len(image_id) <= 36 else None
        if fresh and image is not None and self.leases is not None and self.leases.expired(image):
            self.leases.reap(image_id)  # a dead worker's upload: partial bytes go, back to queued
            db.session.rollback()
            image = db.session.get(Image, image_id, populate_existing=True)
        if not self.authz.may_see(ctx, image):
            raise NotFound(not_found or f"No image found with ID {image_id}")
        return image

    def show(self, ctx, image_id):
        """Like get(), for reading only: plain rows instead of ORM objects (a show is the
        hottest request). An image with an expired upload lease goes through get()."""
        image = image_reads.read_image(image_id) if len(image_id) <= 36 else None
        if image is not None and self.leases is not None and self.leases.expired(image):
            return self.get(ctx, image_id)
        if not self.authz.may_see(ctx, image):
            raise NotFound(f"No image found with ID {image_id}")
        return image

    # -- creating ------------------------------------------------------------------------

    def create(self, ctx, body):
        for key in _LINK_ATTRIBUTES:
            if key in body:
                raise Forbidden(f"Attribute '{key}' is read-only.")
        self.schema.validate(body)
        extra = {key: value for key, value in body.items() if key not in self.schema.fields
                 or self.schema.fields[key].extra_schema.get("is_base") is False}
        check_extra_keys(extra)
        for key in _CREATE_READ_ONLY:
            if key in body:
                raise Forbidden(f"Attribute '{key}' is read-only.")
        if "locations" in body:
            raise Forbidden("Attribute 'locations' is reserved.")
        owner = body.get("owner", ctx.owner)
        visibility = body.get("visibility", "shared")
        target = {"project_id": owner, "owner": owner, "visibility": visibility}
        self.authz.require(ctx, "add_image", target)
        if not ctx.is_admin and owner != ctx.owner:
            raise Forbidden(f"You are not permitted to create images owned by '{owner}'.")
        self.authz.require_visibility_change(ctx, visibility, target)
        for key in extra:
            self.authz.require_property(ctx, key, "create")
        check_not_negative(body)
        tags = set(body.get("tags", []))
        self._check_quota("tags", len(tags), self.tag_quota)
        self._check_quota("properties", len(extra), self.property_quota)

        now = utcnow()
        row = {"id": body.get("id") or str(uuid.uuid4()), "status": "queued",
               "visibility": visibility, "owner": owner, "protected": False, "os_hidden": False,
               "min_ram": 0, "min_disk": 0, "created_at": now, "updated_at": now,
               "deleted": False}
        row.update((key, body[key]) for key in _SETTABLE_CORE
                   if key in body and key not in ("owner", "visibility"))
        # Core INSERTs and a plain-row read back: building ORM objects and reloading them
        # after the commit cost more than the whole rest of a create.
        try:
            db.session.execute(insert(Image.__table__), [row])
            if extra:
                db.session.execute(insert(ImageProperty.__table__), [
                    {"image_id": row["id"], "name": k, "value": v} for k, v in extra.items()])
            if tags:
                db.session.execute(insert(ImageTag.__table__),
                                   [{"image_id": row["id"], "value": t} for t in tags])
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise Conflict(f"Image ID {row['id']} already exists!") from None
        return image_reads.read_image(row["id"])

    # -- deleting ------------------------------------------------------------------------

    def delete(self, ctx, image_id):
        image = self.get(ctx, image_id, not_found=f"Failed to find image {image_id} to delete")
        self.authz.require_for_image(ctx, image, "delete_image")
        access.require_owner(ctx, image)
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        now = utcnow()
        won = db.session.execute(
            update(Image).where(Image.id == image_id, Image.deleted.is_(False),
                                Image.protected.is_(False))
            .values(deleted=True, deleted_at=now, updated_at=now, status="deleted")
        ).rowcount
        if not won:
            db.session.rollback()
            raise NotFound(f"Failed to find image {image_id} to delete")
        db.session.expire(image)
        # only the image's own bytes (in whichever store); other locations are references
        urls = [location.url for location in image.locations
                if self.store.blob_owner(location.url) == image_id]
        if urls and self.scrubber is not None:
            scrubber.defer(image, urls)  # pending_delete: the bytes go before the row is deleted
            db.session.commit()
            if not self.delayed_delete:
                self.scrubber.scrub(image_id, ignore_delay=True)  # on a store error: next run
            return
        image.properties.clear()
        image.tags.clear()
        image.members.clear()
        image.locations.clear()
        db.session.commit()
        for url in urls:  # the row is gone first, so no active image ever lacks its bytes
            self.store.delete(url)

    # -- tags ----------------------------------------------------------------------------

    def add_tag(self, ctx, image_id, tag):
        if len(tag) > 255:
            raise BadRequest(f"Provided object does not match schema 'image': {tag!r} is too long")
        image = self.get(ctx, image_id, not_found=f"Image {image_id} not found.")
        self.authz.require_for_image(ctx, image, "modify_image")
        access.require_owner(ctx, image, f"Not allowed to update tags for image {image_id}.")
        if tag in {t.value for t in image.tags}:
            return
        self._check_quota("tags", len(image.tags) + 1, self.tag_quota)
        image.tags.append(ImageTag(value=tag))
        image.updated_at = utcnow()
        try:
            db.session.commit()
        except IntegrityError:  # a concurrent request added the same tag: same outcome
            db.session.rollback()

    def delete_tag(self, ctx, image_id, tag):
        image = self.get(ctx, image_id, not_found=f"Image {image_id} not found.")
        self.authz.require_for_image(ctx, image, "modify_image")
        access.require_owner(ctx, image, f"Not allowed to delete tags for image {image_id}.")
        matching = [t for t in image.tags if t.value == tag]
        if not matching:
            raise NotFound("The resource could not be found.")
        image.tags.remove(matching[0])
        image.updated_at = utcnow()
        db.session.commit()

    @staticmethod
    def _check_quota(kind, attempted, maximum):
        if maximum >= 0 and attempted > maximum:
            raise RequestEntityTooLarge(
                f"The limit has been exceeded on the number of allowed image {kind}. "
                f"Attempted: {attempted}, Maximum: {maximum}")


def check_extra_keys(extra):
    """Extra-property names: at most 255 characters, not in the reserved namespace."""
    for key in extra:
        if len(key) > EXTRA_KEY_MAX:
            raise BadRequest("Custom property should not be greater than 255 characters.")
    for key in extra:
        if is_reserved(key):
            raise Forbidden(f"Attribute '{key}' is reserved.", detail=True)


def check_not_negative(values):
    for key in ("min_ram", "min_disk"):
        if values.get(key, 0) < 0:
            raise BadRequest(f"Invalid value '{values[key]}' for parameter '{key}': "
                             f"Cannot be a negative value")

