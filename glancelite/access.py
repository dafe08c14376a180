"""Who may see and who may change an image (Glance's rules under its legacy policies).

Seeing: admins; everyone for public and community images and images without an owner;
the owner's project; and, for shared images, member projects in any member status.
Changing: the owner's project or an admin. policy.json decisions (a later layer) are
applied on top of these, never instead of them.
"""
from glancelite.db.models import ImageMember, db
from glancelite.errors import Forbidden


def is_member(ctx, image):
    if ctx.project_id is None:
        return False
    return db.session.get(ImageMember, (image.id, ctx.project_id)) is not None


def can_see(ctx, image):
    if ctx.is_admin or image.owner is None or image.visibility in ("public", "community"):
        return True
    if ctx.project_id is not None and ctx.project_id == image.owner:
        return True
    return image.visibility == "shared" and is_member(ctx, image)


def owns(ctx, image):
    return ctx.is_admin or (ctx.project_id is not None and ctx.project_id == image.owner)


def require_owner(ctx, image, message="You do not own this image"):
    if not owns(ctx, image):
        raise Forbidden(message)
