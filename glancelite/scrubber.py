"""Deleting image bytes: delayed delete (`pending_delete`) and the scrubber, as in Glance.

DELETE takes the image row out of the API at once (404 for everybody, as a deleted
image). When the image has bytes in our store, the row goes to `pending_delete` and keeps
the locations of those bytes: that is the scrub queue. The scrubber removes the bytes of
each queued image and only then marks it `deleted`; a location whose bytes cannot be
removed (store down) stays queued and the next run retries it, so a failed store call
never leaves bytes that no row points to.

With `delayed_delete = False` (the default) DELETE scrubs the image itself before it
answers; with `delayed_delete = True` the bytes stay for `scrub_time` seconds, during
which `glancelite-manage scrub --restore ID` can bring the image back, as
`glance-scrubber --restore` does. The scrub runs from `glancelite-manage scrub` (cron) or
from a background thread in every API worker (`scrub_interval`). Runs in several
processes at once do not get in each other's way: each image is scrubbed under a lease
(glancelite/leases.py), and restore only takes an image no scrubber is working on.
"""
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, exists, or_, select, update

from glancelite.db.models import Image, ImageLocation, ImageMember, ImageProperty, ImageTag
from glancelite.timeutil import utcnow

LOG = logging.getLogger(__name__)


def defer(image, urls):
    """In the DELETE's transaction: queue the image for scrubbing, keeping only the
    locations whose bytes are ours to remove (other locations are references)."""
    image.status = "pending_delete"
    for location in [loc for loc in image.locations if loc.url not in urls]:
        image.locations.remove(location)


@dataclass
class ScrubReport:
    scrubbed: list = field(default_factory=list)
    failed: list = field(default_factory=list)


class Scrubber:
    def __init__(self, leases, store, scrub_time):
        self.leases = leases
        self.engine = leases.engine
        self.store = store
        self.scrub_time = timedelta(seconds=scrub_time)

    def due(self, limit=None):
        """Ids of pending_delete images whose delay is over and that nobody is scrubbing."""
        query = (select(Image.id).where(*self._claimable(ignore_delay=False))
                 .order_by(Image.deleted_at, Image.id))
        with self.engine.connect() as connection:
            return list(connection.scalars(query.limit(limit)))

    def run(self, limit=None):
        """Scrub every image that is due; what was scrubbed and what must be retried."""
        report = ScrubReport()
        for image_id in self.due(limit):
            outcome = self.scrub(image_id)
            if outcome is not None:
                (report.scrubbed if outcome else report.failed).append(image_id)
        return report

    def scrub(self, image_id, ignore_delay=False):
        """Remove one pending_delete image's bytes, then mark it deleted. True when done,
        False when a store call failed (queued for the next run), None when the image was
        not ours to scrub (not due, restored, or another scrubber has it)."""
        lease = self.leases.new(image_id, "scrubber")
        with self.engine.begin() as connection:
            won = connection.execute(
                update(Image).where(Image.id == image_id, *self._claimable(ignore_delay))
                .values(**lease.columns())).rowcount
        if not won:
            return None
        self.leases.hold(lease)
        try:
            complete = self._remove_bytes(image_id) and not lease.lost.is_set()
            with self.engine.begin() as connection:
                mine = (Image.id == image_id, Image.lease_owner == lease.owner)
                if not complete:
                    connection.execute(update(Image).where(*mine)
                                       .values(lease_owner=None, lease_heartbeat=None))
                    return False
                done = connection.execute(
                    update(Image).where(*mine)
                    .values(status="deleted", updated_at=utcnow(), lease_owner=None,
                            lease_heartbeat=None)).rowcount
                if done:
                    for table in (ImageProperty, ImageTag, ImageMember, ImageLocation):
                        connection.execute(delete(table).where(table.image_id == image_id))
            return bool(done)
        finally:
            self.leases.drop(lease)

    def _remove_bytes(self, image_id):
        """Delete each queued location's bytes, dropping its row once they are gone."""
        with self.engine.connect() as connection:
            queued = connection.execute(select(ImageLocation.id, ImageLocation.url)
                                        .where(ImageLocation.image_id == image_id)).all()
        complete = True
        for location_id, url in queued:
            try:
                self.store.delete(url)
            except Exception as exc:
                LOG.warning("scrubbing image %s: cannot delete %s yet: %s", image_id, url, exc)
                complete = False
                continue
            with self.engine.begin() as connection:
                connection.execute(delete(ImageLocation).where(ImageLocation.id == location_id))
        return complete

    def restore(self, image_id):
        """pending_delete → active again, if its bytes are still there; True on success."""
        has_bytes = exists(select(ImageLocation.id).where(ImageLocation.image_id == image_id))
        with self.engine.begin() as connection:
            return bool(connection.execute(
                update(Image).where(Image.id == image_id, Image.status == "pending_delete",
                                    Image.lease_owner.is_(None), has_bytes)
                .values(status="active", deleted=False, deleted_at=None,
                        updated_at=utcnow())).rowcount)

    def _claimable(self, ignore_delay):
        conditions = [Image.deleted.is_(True), Image.status == "pending_delete",
                      or_(Image.lease_owner.is_(None), Image.lease_heartbeat < self.leases.cutoff())]
        if not ignore_delay:
            conditions.append(Image.deleted_at <= utcnow() - self.scrub_time)
        return conditions
