"""Read-only loading of one image as plain rows, for GET /v2/images/{id}.

Showing an image is the most frequent request; building ORM objects for the row and its
collections, and even building the SELECT, was most of its cost. So one statement, built
once, returns the image row joined to (kind, a, b) rows for its properties, tags and
locations, and the result has the attribute names of the ORM objects
(image.properties[i].name, image.tags[i].value, image.locations[i].url), so access rules,
policy targets and the view work on either.
"""
import json
from types import SimpleNamespace

from sqlalchemy import Integer, Text, bindparam, cast, literal_column, null, select, true, union_all

from glancelite.db.models import Image, ImageLocation, ImageProperty, ImageTag, db

_PROPERTY, _TAG, _LOCATION = 0, 1, 2


def _constant(number):
    return literal_column(str(number), Integer)


def _one_image_statement():
    images = Image.__table__
    properties, tags, locations = (ImageProperty.__table__, ImageTag.__table__,
                                   ImageLocation.__table__)
    image_id = bindparam("image_id")
    children = union_all(  # each branch filtered by the id itself, so each uses its index
        select(_constant(_PROPERTY).label("kind"), properties.c.name.label("a"),
               properties.c.value.label("b"), _constant(0).label("position"))
        .where(properties.c.image_id == image_id),
        select(_constant(_TAG), tags.c.value, cast(null(), Text), _constant(0))
        .where(tags.c.image_id == image_id),
        select(_constant(_LOCATION), locations.c.url, cast(locations.c.metadata, Text),
               locations.c.id)
        .where(locations.c.image_id == image_id),
    ).subquery("children")
    return (select(images, children.c.kind, children.c.a, children.c.b)
            .select_from(images.outerjoin(children, true()))
            .where(images.c.id == image_id)
            .order_by(children.c.kind, children.c.position))


_ONE_IMAGE = _one_image_statement()
_IMAGE_COLUMNS = tuple(column.key for column in Image.__table__.columns)


def read_image(image_id):
    """The image with its properties, tags and locations, or None."""
    with db.engine.connect() as connection:  # no ORM session: nothing here is written
        rows = connection.execute(_ONE_IMAGE, {"image_id": image_id}).all()
    if not rows:
        return None
    image = SimpleNamespace(**dict(zip(_IMAGE_COLUMNS, rows[0])),
                            properties=[], tags=[], locations=[])
    for *_image, kind, a, b in rows:
        if kind == _PROPERTY:
            image.properties.append(SimpleNamespace(name=a, value=b))
        elif kind == _TAG:
            image.tags.append(SimpleNamespace(value=a))
        elif kind == _LOCATION:
            image.locations.append(SimpleNamespace(url=a, meta_data=json.loads(b)))
    return image
