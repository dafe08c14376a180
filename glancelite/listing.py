"""Service for GET /v2/images: which images a caller's list may hold, their order, the page.

The rules are Glance's: a list shows less than GET can (others' community images only on
request, shared images only for the asked member status, owner-less private images only
to admins), and paging is by keyset on the full sort order, so a page never repeats or
skips rows whatever the sort keys.
"""
from dataclasses import dataclass

from glancelite.db import image_queries as sql
from glancelite.db.models import Image, db
from glancelite.errors import BadRequest

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at")
VISIBILITY_FILTERS = ("public", "private", "shared", "community", "all")
MEMBER_STATUS_FILTERS = ("pending", "accepted", "rejected", "all")
# Appended to every sort order (when not already in it) so that it is total.
TIE_BREAKERS = ("created_at", "id")


@dataclass(frozen=True)
class Comparison:
    """`column <op> value` on a core image column; op is eq, neq, gt, gte, lt, lte or in
    (value then a tuple; an empty one matches nothing) or outside (value a (start, end)
    pair: the column lies before start or at/after end)."""
    column: str
    op: str
    value: object


@dataclass(frozen=True)
class ListQuery:
    """A validated list request."""
    limit: int | None = None            # None: limit_param_default
    marker: str | None = None
    sort: tuple = (("created_at", "desc"),)   # (key, "asc" | "desc") pairs as requested
    tie_direction: str = "desc"         # direction of the appended tie-breakers
    comparisons: tuple = (Comparison("os_hidden", "eq", False),)
    properties: tuple = ()              # (name, value) pairs, all required
    tags: tuple = ()                    # all required
    visibility: str | None = None       # one of VISIBILITY_FILTERS, or "" matching nothing
    member_status: str = "accepted"     # one of MEMBER_STATUS_FILTERS


@dataclass(frozen=True)
class Page:
    images: list
    next_marker: str | None             # set iff the page is full: there may be more


class ImageListing:
    def __init__(self, conf, authz):
        self.authz = authz
        self.default_limit = conf["DEFAULT"]["limit_param_default"]
        self.max_limit = conf["DEFAULT"]["api_limit_max"]

    def list(self, ctx, query):
        self.authz.require(ctx, "get_images", {"project_id": ctx.project_id})
        limit = min(self.default_limit if query.limit is None else query.limit, self.max_limit)
        after = None if query.marker is None else self._marker(ctx, query.marker)
        keys = [key for key, _direction in query.sort]
        order = query.sort + tuple((key, query.tie_direction) for key in TIE_BREAKERS
                                   if key not in keys)
        criteria = [sql.listed(), self._scope(ctx, query), *self._filters(query)]
        images = sql.page(criteria, order, after, limit) if limit else []
        full = bool(images) and len(images) == limit
        # as in Glance, `next` follows the database page even if get_image hides some rows
        visible = [image for image in images if self.authz.can_get(ctx, image)]
        return Page(visible, images[-1].id if full else None)

    def _marker(self, ctx, marker):
        """The marker must name an image the caller could GET (it need not be listed)."""
        image = db.session.get(Image, marker)
        if not self.authz.may_see(ctx, image):
            raise BadRequest(f"No image found with ID {marker}")
        return image

    @staticmethod
    def _scope(ctx, query):
        """Admins: everything. Others: public and community images, their own, and shared
        images whose membership has the asked status. Then a visibility filter keeps only
        that kind; without one, community images are kept only when they are the caller's."""
        project = ctx.project_id
        if ctx.is_admin:
            scope = sql.everything()
        else:
            scope = sql.visibility_is("public", "community")
            if project is not None:
                status = None if query.member_status == "all" else query.member_status
                scope = scope | sql.owned_by(project) | sql.shared_with(project, status)
        if query.visibility == "all":
            return scope
        if query.visibility is not None:
            return scope & sql.visibility_is(query.visibility)
        if project is None:
            return scope & ~sql.visibility_is("community")
        return scope & (sql.owned_by(project) | ~sql.visibility_is("community"))

    @staticmethod
    def _filters(query):
        for comparison in query.comparisons:
            yield sql.compare(comparison.column, comparison.op, comparison.value)
        for name, value in query.properties:
            yield sql.has_property(name, value)
        for tag in query.tags:
            yield sql.has_tag(tag)
