"""Leases: which process is working on an image's bytes, and whether it is still alive.

An upload owns its image while it is `saving` through a lease: the image row names the
owner (`lease_owner`: host, pid and a random part, unique to the upload) and records when
that owner last said it was alive (`lease_heartbeat`). Each process refreshes the leases
it holds from one background thread (`LeaseKeeper`), every quarter of
`upload_lease_timeout`, for as long as the upload runs — so a slow client or a slow store
keeps its lease, and only a process that died (kill -9, OOM, a lost host) stops
refreshing it.

A lease older than the timeout is expired. Whoever sees one — the next request that
touches the image, a worker's periodic reaper, `glancelite-manage reap` — reaps it:

1. take the lease over by compare-and-set on the old owner, so only one reaper goes on
   and the old owner, should it still be alive after all, can neither refresh nor
   finish (its last compare-and-set names the owner too);
2. ask the store to discard the image's partial bytes (temporary file, pending multipart
   upload) — safe now, since nobody can start a new upload while the image is `saving` —
   and the whole blob of an upload killed after the store finished it but before the row
   recorded it (no location points to it);
3. put the image back to `queued` (a deleted image stays deleted) and clear the lease,
   again by compare-and-set on the reaper's own lease.

A reaper that dies between 1 and 3 leaves its own lease, which expires and is reaped in
turn. An image deleted under a running upload keeps the upload's lease until the
upload has cleaned up after itself, so partial bytes of a deleted image are found too.
The scrubber uses the same columns while it removes a `pending_delete` image's bytes.

Timestamps are taken from the clock of whoever writes them: hosts behind one database
need synchronised clocks (NTP), by much less than the timeout.
"""
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import case, select, update

from glancelite.db.models import Image, ImageLocation
from glancelite.errors import Conflict
from glancelite.timeutil import utcnow

LOG = logging.getLogger(__name__)
_HOST = socket.gethostname().split(".")[0][:24]


class LeaseLost(Conflict):
    """Another process took this upload's lease over (it was stalled past the timeout)."""


def new_owner(kind):
    """A lease owner id, unique to one piece of work: `kind:host:pid:random`."""
    return f"{kind}:{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass(eq=False)
class Lease:
    image_id: str
    owner: str
    lost: threading.Event = field(default_factory=threading.Event)

    def columns(self):
        """The values that put this lease on an image row."""
        return {"lease_owner": self.owner, "lease_heartbeat": utcnow()}

    def check(self):
        if self.lost.is_set():
            raise LeaseLost(f"The upload of image {self.image_id} stalled for longer than the "
                            f"upload lease timeout and was abandoned; upload it again.")

    def watch(self, chunks):
        """Pass chunks through, stopping the upload as soon as the lease is known lost."""
        for chunk in chunks:
            self.check()
            yield chunk
        self.check()


class LeaseKeeper:
    """One thread per process refreshing the heartbeat of every lease the process holds."""

    def __init__(self, engine, interval):
        self.engine = engine
        self.interval = interval
        self._held = {}
        self._lock = threading.Lock()
        self._pid = None

    def hold(self, lease):
        with self._lock:
            self._held[lease.owner] = lease
            if self._pid != os.getpid():  # first lease in this process (or after a fork)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()

    def drop(self, lease):
        with self._lock:
            self._held.pop(lease.owner, None)

    def _run(self):
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(self.interval)
            with self._lock:
                leases = list(self._held.values())
            for lease in leases:
                try:
                    self.beat(lease)
                except Exception as exc:  # the database is away: try again next round
                    LOG.warning("lease heartbeat of image %s failed: %s", lease.image_id, exc)

    def beat(self, lease):
        with self.engine.begin() as connection:
            kept = connection.execute(
                update(Image).where(Image.id == lease.image_id, Image.lease_owner == lease.owner)
                .values(lease_heartbeat=utcnow())).rowcount
        if not kept and not lease.lost.is_set():
            LOG.warning("lease %s on image %s was taken over", lease.owner, lease.image_id)
            lease.lost.set()


class Leases:
    """Leases of one database and store: taking, keeping, and reaping expired ones."""

    def __init__(self, engine, store, timeout):
        self.engine = engine
        self.store = store
        self.timeout = timedelta(seconds=timeout)
        self.keeper = LeaseKeeper(engine, interval=max(timeout / 4, 0.05))

    def new(self, image_id, kind="upload"):
        return Lease(image_id, new_owner(kind))

    def hold(self, lease):
        self.keeper.hold(lease)

    def drop(self, lease):
        self.keeper.drop(lease)

    def cutoff(self):
        return utcnow() - self.timeout

    def expired(self, image):
        """True when the image row carries a lease its owner stopped refreshing."""
        return (image.lease_owner is not None and image.lease_heartbeat is not None
                and image.lease_heartbeat < self.cutoff())

    # -- reaping -----------------------------------------------------------------------

    def reap(self, image_id=None):
        """Reap every expired upload lease (or only the one on `image_id`); the ids reaped."""
        query = select(Image.id, Image.lease_owner).where(
            Image.lease_heartbeat < self.cutoff(), Image.status.in_(("saving", "deleted")))
        if image_id is not None:
            query = query.where(Image.id == image_id)
        with self.engine.connect() as connection:
            candidates = connection.execute(query.order_by(Image.lease_heartbeat)).all()
        return [found for found, owner in candidates if self._reap_one(found, owner)]

    def _reap_one(self, image_id, old_owner):
        mine = new_owner("reaper")
        with self.engine.begin() as connection:
            won = connection.execute(
                update(Image).where(Image.id == image_id, Image.lease_owner == old_owner,
                                    Image.lease_heartbeat < self.cutoff())
                .values(lease_owner=mine, lease_heartbeat=utcnow())).rowcount
        if not won:
            return False  # refreshed after all, or another reaper got there first
        try:
            self.store.discard_partial(image_id)
            self._discard_unrecorded(image_id)
        except Exception as exc:  # our own lease expires and the next reaper retries
            LOG.warning("reaping image %s: partial bytes not removed yet: %s", image_id, exc)
            return False
        with self.engine.begin() as connection:
            saving = Image.status == "saving"
            done = connection.execute(
                update(Image).where(Image.id == image_id, Image.lease_owner == mine)
                .values(status=case((saving, "queued"), else_=Image.status),
                        updated_at=case((saving, utcnow()), else_=Image.updated_at),
                        lease_owner=None, lease_heartbeat=None)).rowcount
        if done:
            LOG.warning("image %s: the upload lease of %s expired; partial bytes removed, "
                        "image back to queued unless deleted", image_id, old_owner)
        return bool(done)

    def _discard_unrecorded(self, image_id):
        """The image's own blob when no location records it: bytes an upload finished
        just before its worker died, which no row would ever point to."""
        with self.engine.connect() as connection:
            recorded = set(connection.execute(select(ImageLocation.url).where(
                ImageLocation.image_id == image_id)).scalars())
        for own in self.store.urls_for(image_id):  # every backend: the upload used one of them
            if own not in recorded:
                self.store.delete(own)
