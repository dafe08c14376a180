"""Authorization: policy.json decisions and property protection, applied by the services.

Each service checks the policy name Glance v2 checks at the same call, with the same target
(reference table B.4), on top of the ownership and visibility rules of access.py — which
Glance enforced in code even when every policy is `""`, so the seed's policy.json stays safe.
A denied image-scoped check answers 404 instead of 403 when the caller may not even
`get_image` the image, so a policy never reveals that an image exists.
"""
from collections.abc import Mapping

from glancelite import access
from glancelite.errors import Forbidden, NotFound

_IMAGE_ATTRIBUTES = ("id", "name", "status", "owner", "visibility", "protected")


class ImageTarget(Mapping):
    """What image rules can refer to: %(project_id)s is the owner, %(member_id)s the
    caller's project when the image is shared with it, plus attributes and properties.
    Built lazily: most rules (`""`, `role:...`) never look at the target, and a list of
    1000 images checks get_image 1000 times."""

    def __init__(self, ctx, image):
        self.ctx = ctx
        self.image = image
        self._all = None

    def _build(self):
        if self._all is None:
            image = self.image
            target = {prop.name: prop.value for prop in image.properties}
            target.update({key: getattr(image, key) for key in _IMAGE_ATTRIBUTES})
            target["project_id"] = image.owner
            if image.visibility == "shared" and self.ctx.project_id not in (None, image.owner):
                target["member_id"] = self.ctx.project_id
            self._all = target
        return self._all

    def __getitem__(self, key):
        return self._build()[key]

    def __iter__(self):
        return iter(self._build())

    def __len__(self):
        return len(self._build())


def image_target(ctx, image):
    return ImageTarget(ctx, image)


class Authorizer:
    def __init__(self, policy, protection=None):
        self.policy = policy
        self.protection = protection

    def allows(self, ctx, name, target):
        return self.policy.enforce(name, target, ctx.policy_credentials())

    def require(self, ctx, name, target, message=None):
        if not self.allows(ctx, name, target):
            raise Forbidden(message or f"You are not authorized to complete {name} action.")

    def can_get(self, ctx, image):
        return self.allows(ctx, "get_image", image_target(ctx, image))

    def may_see(self, ctx, image):
        """Whether a loaded image (or None) exists for the caller: not deleted, visible
        under the ownership rules and allowed by get_image."""
        return (image is not None and not image.deleted and access.can_see(ctx, image)
                and self.can_get(ctx, image))

    def require_for_image(self, ctx, image, name, message=None):
        """403 when `name` is denied on this image, 404 if get_image is denied too."""
        if self.allows(ctx, name, image_target(ctx, image)):
            return
        if not self.can_get(ctx, image):
            raise NotFound(f"No image found with ID {image.id}")
        raise Forbidden(message or f"You are not authorized to complete {name} action.")

    def require_visibility_change(self, ctx, visibility, target):
        """Making an image public or community needs publicize_image / communitize_image."""
        name = {"public": "publicize_image", "community": "communitize_image"}.get(visibility)
        if name is not None:
            self.require(ctx, name, target)

    # -- property protection ---------------------------------------------------------------

    def property_allowed(self, ctx, name, op):
        """Decisions are remembered for the request: a list repeats the same few names."""
        if self.protection is None:
            return True
        key = (name, op)
        decision = ctx.decisions.get(key)
        if decision is None:
            decision = self.protection.allowed(name, op, ctx.roles + ctx.service_roles,
                                               ctx.policy_credentials())
            ctx.decisions[key] = decision
        return decision

    def readable_properties(self, ctx, image):
        """The extra properties the caller may read; the others are silently left out."""
        properties = {prop.name: prop.value for prop in image.properties}
        if self.protection is None:
            return properties
        return {name: value for name, value in properties.items()
                if self.property_allowed(ctx, name, "read")}

    def require_property(self, ctx, name, op):
        if not self.property_allowed(ctx, name, op):
            raise Forbidden(f"Attribute '{name}' is reserved.", detail=True)
