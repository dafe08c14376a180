"""Service for /v2/images/{id}/members: which projects a shared image is offered to.

Glance's rules (legacy policies): only `shared` images have members; the owner or an
admin adds and removes them; only the member project itself (or an admin) answers with
a status; a member sees nothing but its own row. Request bodies are checked before the
image is looked up, as Glance's deserializer does.
"""
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from glancelite import access
from glancelite.authz import image_target
from glancelite.db.models import Image, ImageMember, db
from glancelite.errors import BadRequest, Conflict, Forbidden, NotFound, RequestEntityTooLarge
from glancelite.schemas import MEMBER_STATUSES
from glancelite.timeutil import utcnow

MEMBER_MAX = 255


class MemberService:
    def __init__(self, conf, images):
        self.images = images
        self.quota = conf["DEFAULT"]["image_member_quota"]

    def list(self, ctx, image_id):
        """Every row for the owner or an admin; only the caller's own row for a member."""
        image = self._shared_image(ctx, image_id, Forbidden(
            f"Not allowed to list members for image {image_id}: "
            f"Only shared images have members."))
        self.images.authz.require_for_image(ctx, image, "get_members")
        query = select(ImageMember).where(ImageMember.image_id == image.id)
        if not access.owns(ctx, image):
            query = query.where(ImageMember.member == ctx.project_id)
        return db.session.scalars(
            query.order_by(ImageMember.created_at, ImageMember.member)).all()

    def get(self, ctx, image_id, member_id):
        image = self._shared_image(ctx, image_id,
                                   NotFound("Only shared images have members."))
        self.images.authz.require_for_image(ctx, image, "get_member")
        if not access.owns(ctx, image) and member_id != ctx.project_id:
            raise _not_listed(image_id, member_id)
        return self._row(image_id, member_id)

    def add(self, ctx, image_id, body):
        member_id = _member_to_add(body)
        denied = Forbidden(f"Not allowed to create members for image {image_id}.")
        image = self._shared_image(ctx, image_id, denied)
        self.images.authz.require_for_image(ctx, image, "add_member")
        if not access.owns(ctx, image):
            raise denied
        # Serialises adds to one image (PostgreSQL; SQLite's write lock does it there),
        # so concurrent adds cannot overrun the quota between the insert and the count.
        db.session.execute(select(Image.id).where(Image.id == image.id).with_for_update())
        now = utcnow()
        row = ImageMember(image_id=image.id, member=member_id, status="pending",
                          created_at=now, updated_at=now)
        db.session.add(row)
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            raise Conflict(f"Member {member_id} is duplicated for image {image_id}") from None
        self._check_quota(image_id)
        return _committed(row)

    def update(self, ctx, image_id, member_id, body):
        status = _requested_status(body)
        denied = Forbidden(f"Not allowed to update members for image {image_id}.")
        image = self._shared_image(ctx, image_id, denied)
        target = {**image_target(ctx, image), "member_id": member_id}  # the member acted on
        self.images.authz.require(ctx, "modify_member", target, denied.message)
        if not ctx.is_admin:
            if access.owns(ctx, image):
                raise denied
            if member_id != ctx.project_id:
                raise _not_listed(image_id, member_id)
        row = self._row(image_id, member_id)
        if status not in MEMBER_STATUSES:
            raise BadRequest('Incorrect request: Status must be "pending", "accepted" or '
                             '"rejected".')
        row.status = status
        row.updated_at = utcnow()
        try:
            db.session.flush()
        except StaleDataError:  # removed by the owner meanwhile
            db.session.rollback()
            raise _not_listed(image_id, member_id) from None
        return _committed(row)

    def delete(self, ctx, image_id, member_id):
        denied = Forbidden(f"Not allowed to delete members for image {image_id}.")
        image = self._shared_image(ctx, image_id, denied)
        self.images.authz.require_for_image(ctx, image, "delete_member")
        if not access.owns(ctx, image):
            raise denied
        removed = db.session.execute(delete(ImageMember).where(
            ImageMember.image_id == image.id, ImageMember.member == member_id)).rowcount
        if not removed:
            db.session.rollback()
            raise _not_listed(image_id, member_id)
        db.session.commit()

    def _shared_image(self, ctx, image_id, not_shared):
        """The image (404 when the caller cannot see it); `not_shared` unless it is shared."""
        image = self.images.get(ctx, image_id, not_found=f"Image {image_id} not found.")
        if image.visibility != "shared":
            raise not_shared
        return image

    @staticmethod
    def _row(image_id, member_id):
        row = db.session.get(ImageMember, (image_id, member_id))
        if row is None:
            raise _not_listed(image_id, member_id)
        return row

    def _check_quota(self, image_id):
        if self.quota < 0:
            return
        attempted = db.session.scalar(select(func.count()).select_from(ImageMember)
                                      .where(ImageMember.image_id == image_id))
        if attempted > self.quota:
            db.session.rollback()
            raise RequestEntityTooLarge(
                f"Image member limit exceeded for image {image_id}: The limit has been "
                f"exceeded on the number of allowed image members for this image. "
                f"Attempted: {attempted}, Maximum: {self.quota}:")


def _member_to_add(body):
    """The project id from a POST body, with the messages of Glance's deserializer."""
    shape = 'Expected a member in the form: {"member": "image_id"}'
    if not isinstance(body, dict):
        raise BadRequest(shape)
    if "member" not in body:
        raise BadRequest("Member to be added not specified")
    member_id = body["member"]
    if not member_id:
        raise BadRequest("Member can't be empty")
    if not isinstance(member_id, str):
        raise BadRequest(shape)
    if len(member_id) > MEMBER_MAX:
        raise BadRequest(f"Member should not be greater than {MEMBER_MAX} characters.")
    return member_id


def _requested_status(body):
    if not isinstance(body, dict):
        raise BadRequest('Expected a status in the form: {"status": "status"}')
    if "status" not in body:
        raise BadRequest("Status not specified")
    return body["status"]


def _not_listed(image_id, member_id):
    return NotFound(f"{member_id} not found in the member list of the image {image_id}.")


def _committed(row):
    """Commit, keeping the row's values: a concurrent removal must not turn the reply
    into a reload of a vanished row."""
    db.session.expunge(row)
    db.session.commit()
    return row
