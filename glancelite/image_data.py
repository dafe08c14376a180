"""Image data use cases: upload, download, deactivate and reactivate.

The status machine runs on compare-and-set UPDATEs (queued → saving → active), so two
uploads to one image, in any workers on any hosts, cannot both win; the loser gets 409.
The winner holds a lease on the image while it is `saving` (glancelite/leases.py), so
an upload whose worker dies is undone by whoever sees its lease expire.
Bytes are written first and the row turns active only after the store made them visible;
a failed upload removes its bytes and puts the image back to queued. An image deleted
while its upload ran ends with no row and no bytes.
"""
import logging
from dataclasses import dataclass

from sqlalchemy import case, update

from glancelite import access, formats
from glancelite.db.models import Image, ImageLocation, db
from glancelite.errors import BadRequest, Conflict, Forbidden, Gone, RequestEntityTooLarge, ServiceUnavailable
from glancelite.hashing import ParallelHashes
from glancelite.store.base import StoreFull, StoreUnavailable
from glancelite.timeutil import utcnow
from glancelite.transfer import ClientDisconnected, metered_chunks

LOG = logging.getLogger(__name__)


@dataclass
class Download:
    """What the HTTP layer needs to answer a download; `open(offset)` gives the bytes."""
    image: Image
    size: int
    etag: str | None
    checksum: str | None
    url: str
    store: object

    def open(self, offset=0, length=None):
        return self.store.open(self.url, offset, length)


class ImageDataService:
    def __init__(self, conf, images, store, leases):
        self.images = images
        self.store = store
        self.leases = leases
        self.size_cap = conf["DEFAULT"]["image_size_cap"]
        self.hash_algorithm = conf["DEFAULT"]["hashing_algorithm"]

    # -- upload ----------------------------------------------------------------------------

    def upload(self, ctx, image_id, readinto, expected_size, store=None):
        target = self.store.for_upload(store)  # X-Image-Meta-Store: unknown → 400 first
        image = self.images.get(ctx, image_id)
        self.images.authz.require_for_image(ctx, image, "upload_image")
        access.require_owner(ctx, image, f"Not allowed to upload image data for image {image_id}")
        if expected_size is not None and expected_size > self.size_cap:
            raise RequestEntityTooLarge("The incoming image is too large: The provided image is "
                                        "too large.")
        if not image.disk_format or not image.container_format:
            raise BadRequest("Properties disk_format, container_format must be set prior to "
                             "saving data.")
        lease = self._claim(image)
        try:
            self._upload(image, lease, readinto, expected_size, target)
        finally:
            self.leases.drop(lease)

    def _upload(self, image, lease, readinto, expected_size, target):
        image_id = image.id
        hashes = ParallelHashes("md5", self.hash_algorithm)
        sniffer = formats.FormatSniffer()
        chunks = lease.watch(sniffer.watch(metered_chunks(readinto, hashes, expected_size,
                                                          self.size_cap)))
        try:
            blob = target.add(image_id, chunks, size_hint=expected_size)
        except BaseException as exc:
            hashes.abandon()
            self._release(image_id, lease)
            error = _upload_error(image_id, exc)
            if error is exc:
                raise
            raise error from exc
        digests = hashes.hexdigests()
        values = dict(status="active", size=blob.size, checksum=digests["md5"],
                      os_hash_algo=self.hash_algorithm, os_hash_value=digests[self.hash_algorithm],
                      virtual_size=sniffer.virtual_size(image.disk_format, image.container_format,
                                                        blob.size))
        if not self._finish(image_id, values, blob, lease):
            self.store.delete(blob.url)
            self._release(image_id, lease)
            current = db.session.get(Image, image_id, populate_existing=True)
            if current is None or current.deleted:
                raise Gone(f"Image {image_id} was deleted during the upload.")
            lease.lost.set()
            lease.check()

    def _claim(self, image):
        """queued → saving under a new lease, which this process then keeps alive."""
        lease = self.leases.new(image.id)
        status = _compare_and_set(image.id, image.status, "queued", "saving", **lease.columns())
        if status is not None:
            raise Conflict(f"Image status transition from {status} to saving is not allowed")
        self.leases.hold(lease)
        return lease

    def _release(self, image_id, lease):
        """Give the lease up after a failed upload (its bytes are gone by now): back to
        queued, unless a delete got there first or another process took the lease over."""
        db.session.rollback()
        saving = Image.status == "saving"
        db.session.execute(update(Image).where(Image.id == image_id,
                                               Image.lease_owner == lease.owner)
                           .values(status=case((saving, "queued"), else_=Image.status),
                                   updated_at=case((saving, utcnow()), else_=Image.updated_at),
                                   lease_owner=None, lease_heartbeat=None))
        db.session.commit()

    def _finish(self, image_id, values, blob, lease):
        now = utcnow()
        won = db.session.execute(
            update(Image).where(Image.id == image_id, Image.status == "saving",
                                Image.deleted.is_(False), Image.lease_owner == lease.owner)
            .values(updated_at=now, lease_owner=None, lease_heartbeat=None, **values)).rowcount
        if not won:
            db.session.rollback()
            return False
        db.session.add(ImageLocation(image_id=image_id, url=blob.url, meta_data=blob.metadata,
                                     created_at=now))
        db.session.commit()
        return True

    # -- download --------------------------------------------------------------------------

    def download(self, ctx, image_id):
        """A Download for the image's data, or None when it has none (answered with 204)."""
        image = self.images.get(ctx, image_id)
        self.images.authz.require_for_image(ctx, image, "download_image")
        if image.status == "deactivated" and not ctx.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download is "
                            "forbidden.")
        if image.status not in ("active", "deactivated") or not image.locations:
            return None
        return Download(image=image, size=image.size, etag=image.os_hash_value,
                        checksum=image.checksum, url=image.locations[0].url, store=self.store)

    # -- deactivate / reactivate -----------------------------------------------------------

    def deactivate(self, ctx, image_id):
        self._toggle(ctx, image_id, "deactivate", source="active", target="deactivated")

    def reactivate(self, ctx, image_id):
        self._toggle(ctx, image_id, "reactivate", source="deactivated", target="active")

    def _toggle(self, ctx, image_id, action, source, target):
        image = self.images.get(ctx, image_id)
        self.images.authz.require_for_image(ctx, image, action)
        access.require_owner(ctx, image)
        status = _compare_and_set(image_id, image.status, source, target)
        if status not in (None, target):  # already `target`: nothing to do, as in Glance
            raise Forbidden(f"Not allowed to {action} image in status '{status}'")


def _compare_and_set(image_id, status, source, target, **values):
    """Move the image from `source` to `target`, given `status` as last read. Other requests
    may change the status between a read and the UPDATE, so a lost attempt reads it again and
    tries once more while it is still `source`. None when this request made the change, else
    the status that stopped it."""
    while status == source:
        if _transition(image_id, source, target, **values):
            return None
        current = db.session.get(Image, image_id, populate_existing=True)
        status = "deleted" if current is None or current.deleted else current.status
    return status


def _transition(image_id, source, target, **values):
    """Compare-and-set the status; True when this request made the change."""
    won = db.session.execute(
        update(Image).where(Image.id == image_id, Image.status == source, Image.deleted.is_(False))
        .values(status=target, updated_at=utcnow(), **values)).rowcount
    db.session.commit()
    return bool(won)


def _upload_error(image_id, exc):
    """The client-facing error for a failed upload (the image is already back to queued)."""
    if isinstance(exc, ClientDisconnected):
        LOG.warning("upload of %s: client disconnected (%s); image back to queued", image_id, exc)
        return BadRequest("The client disconnected before all image data was received.")
    if isinstance(exc, StoreFull):
        return RequestEntityTooLarge(f"Image storage media is full: {exc}")
    if isinstance(exc, StoreUnavailable):
        LOG.error("upload of %s: store failed: %s", image_id, exc)
        return ServiceUnavailable("The image store failed; retry later.", headers={"Retry-After": "5"})
    return exc
