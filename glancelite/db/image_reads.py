"""Read-only loading of one image as plain rows, for GET /v2/images/{id}.

Showing an image is the most frequent request; building ORM objects for the row and its
collections is most of its cost. The rows returned here have the attribute names of the
ORM objects (image.properties[i].name, image.tags[i].value, image.locations[i].url), so
access rules, policy targets and the view work on either.
"""
from types import SimpleNamespace

from sqlalchemy import select

from glancelite.db.models import Image, ImageLocation, ImageProperty, ImageTag, db

_IMAGES = Image.__table__


def read_image(image_id):
    """The image with its properties, tags and locations, or None."""
    row = db.session.execute(select(_IMAGES).where(_IMAGES.c.id == image_id)).first()
    if row is None:
        return None
    properties = db.session.execute(select(ImageProperty.name, ImageProperty.value)
                                    .where(ImageProperty.image_id == image_id)).all()
    tags = db.session.execute(select(ImageTag.value).where(ImageTag.image_id == image_id)).all()
    locations = db.session.execute(
        select(ImageLocation.url, ImageLocation.meta_data)
        .where(ImageLocation.image_id == image_id).order_by(ImageLocation.id)).all()
    return SimpleNamespace(**row._mapping, properties=properties, tags=tags, locations=locations)
