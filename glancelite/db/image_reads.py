"""Read-only loading of images as plain rows, for showing and listing them.

Showing an image is the most frequent request and a list may hold a thousand images;
building ORM objects for each row and its collections was most of their cost. Here the
image rows come from a Core SELECT and their properties, tags and locations from one
UNION ALL of (image_id, kind, a, b) rows, and the result has the attribute names of the ORM
objects (image.properties[i].name, image.tags[i].value, image.locations[i].url), so access
rules, policy targets and the view work on either.
"""
import json
from types import SimpleNamespace

from sqlalchemy import Integer, Text, bindparam, cast, literal_column, null, select, true, union_all

from glancelite.db.models import Image, ImageLocation, ImageProperty, ImageTag, db

IMAGES = Image.__table__
_COLUMNS = tuple(column.key for column in IMAGES.columns)
_PROPERTY, _TAG, _LOCATION = 0, 1, 2


def _constant(number):
    return literal_column(str(number), Integer)


def _collections(matches):
    """(image_id, kind, a, b, position) rows of the images whose id `matches` (a function
    of a child table's image_id column giving a WHERE clause): each branch is filtered by
    itself, so each uses its own index. Locations keep the order they were added in."""
    properties, tags, locations = (ImageProperty.__table__, ImageTag.__table__,
                                   ImageLocation.__table__)
    return union_all(
        select(properties.c.image_id.label("image_id"), _constant(_PROPERTY).label("kind"),
               properties.c.name.label("a"), properties.c.value.label("b"),
               _constant(0).label("position"))
        .where(matches(properties.c.image_id)),
        select(tags.c.image_id, _constant(_TAG), tags.c.value, cast(null(), Text), _constant(0))
        .where(matches(tags.c.image_id)),
        select(locations.c.image_id, _constant(_LOCATION), locations.c.url,
               cast(locations.c.metadata, Text), locations.c.id)
        .where(matches(locations.c.image_id)),
    )


def _one_image_statement():
    """One round trip: the image row joined to each of its collection rows (or to one row
    of NULLs when it has none)."""
    image_id = bindparam("image_id")
    collections = _collections(lambda column: column == image_id).subquery("collections")
    return (select(IMAGES, collections.c.kind, collections.c.a, collections.c.b)
            .select_from(IMAGES.outerjoin(collections, true()))
            .where(IMAGES.c.id == image_id)
            .order_by(collections.c.kind, collections.c.position))


_ONE_IMAGE = _one_image_statement()


def read_image(image_id):
    """The image with its properties, tags and locations, or None."""
    with db.engine.connect() as connection:  # no ORM session: nothing here is written
        rows = connection.execute(_ONE_IMAGE, {"image_id": image_id}).all()
    if not rows:
        return None
    image = _image(rows[0])
    for *_image_columns, kind, a, b in rows:
        _add(image, kind, a, b)
    return image


def read_images(statement):
    """The images a SELECT of the images table returns (in its order, within its limit),
    each with its properties, tags and locations: two queries whatever the page size."""
    page_ids = select(statement.with_only_columns(IMAGES.c.id).subquery().c.id)
    collections = _collections(lambda column: column.in_(page_ids))
    with db.engine.connect() as connection:
        images = {row.id: _image(row) for row in connection.execute(statement)}
        if images:
            rows = connection.execute(collections.order_by("kind", "position"))
            for image_id, kind, a, b, _position in rows:
                if image_id in images:  # a row added since the page was read is left out
                    _add(images[image_id], kind, a, b)
    return list(images.values())


def _image(row):
    return SimpleNamespace(**dict(zip(_COLUMNS, row[:len(_COLUMNS)], strict=True)),
                           properties=[], tags=[], locations=[])


def _add(image, kind, a, b):
    if kind == _PROPERTY:
        image.properties.append(SimpleNamespace(name=a, value=b))
    elif kind == _TAG:
        image.tags.append(SimpleNamespace(value=a))
    elif kind == _LOCATION:
        image.locations.append(SimpleNamespace(url=a, meta_data=json.loads(b)))
