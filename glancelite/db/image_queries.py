"""SQL for the image list: predicates on `images`, and a keyset-paged SELECT per page.

Predicates combine with `&`, `|` and `~`. Membership, tag and property tests are
uncorrelated `id IN (SELECT ...)` subqueries: each runs once on its own index instead of
once per candidate row. NULL sorts as the smallest value on both databases.
"""
import operator

from sqlalchemy import BigInteger, Integer, and_, false, literal, or_, select, true

from glancelite.db.image_reads import IMAGES, read_images
from glancelite.db.models import Image, ImageMember, ImageProperty, ImageTag

_OPERATORS = {"eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge,
              "lt": operator.lt, "lte": operator.le}


def _column(name):
    return IMAGES.c[name]


def everything():
    return true()


def listed():
    """Deleted and killed images are never listed."""
    return (Image.deleted == false()) & (Image.status != "killed")


def visibility_is(*visibilities):
    return Image.visibility.in_(visibilities)


def owned_by(project):
    return Image.owner == project


def shared_with(project, member_status=None):
    """Shared images with `project` as a member (in `member_status`, or in any)."""
    members = select(ImageMember.image_id).where(ImageMember.member == project)
    if member_status is not None:
        members = members.where(ImageMember.status == member_status)
    return (Image.visibility == "shared") & Image.id.in_(members)


def has_property(name, value):
    return Image.id.in_(select(ImageProperty.image_id)
                        .where(ImageProperty.name == name, ImageProperty.value == value))


def has_tag(tag):
    return Image.id.in_(select(ImageTag.image_id).where(ImageTag.value == tag))


def compare(name, op, value):
    column = _column(name)
    if op == "in":
        return column.in_(value)
    if op == "outside":  # a [start, end) interval
        return or_(column < value[0], column >= value[1])
    if isinstance(column.type, Integer):  # any int64 operand, even against a 32-bit column
        value = literal(value, BigInteger)
    return _OPERATORS[op](column, value)


def page(criteria, order, after, limit):
    """Images meeting every criterion, sorted by `order` ((column, "asc"|"desc") pairs,
    ending in a unique column), strictly after the image `after` if given; at most
    `limit`, as plain rows with their tags, properties and locations (image_reads)."""
    statement = select(IMAGES).where(*criteria)
    if after is not None:
        statement = statement.where(_after(order, after))
    statement = statement.order_by(*(_sorted(name, direction) for name, direction in order))
    return read_images(statement.limit(limit))


def _sorted(name, direction):
    column = _column(name)
    if direction == "asc":
        return column.asc().nulls_first() if column.nullable else column.asc()
    return column.desc().nulls_last() if column.nullable else column.desc()


def _after(order, image):
    """(k1 beyond v1) or (k1 = v1 and k2 beyond v2) or ... for the marker's values v,
    plus a looser bound on k1 alone that lets an index on k1 start at the marker."""
    alternatives, ties = [], []
    for name, direction in order:
        column, value = _column(name), getattr(image, name)
        alternatives.append(and_(*ties, _beyond(column, direction, value)))
        ties.append(column.is_(None) if value is None else column == value)
    name, direction = order[0]
    return and_(_from(_column(name), direction, getattr(image, name)), or_(*alternatives))


def _beyond(column, direction, value):
    """Values strictly after `value` in this direction, NULL being the smallest."""
    if direction == "asc":
        return column.is_not(None) if value is None else column > value
    if value is None:
        return false()
    if column.nullable:
        return (column < value) | column.is_(None)
    return column < value


def _from(column, direction, value):
    """Values at or after `value`, in an index-friendly form where there is one."""
    if direction == "asc":
        return true() if value is None else column >= value
    if value is None:
        return column.is_(None)
    return true() if column.nullable else column <= value
