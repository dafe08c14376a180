"""Read-only loading of images as plain rows, for showing and listing them.

Showing an image is the most frequent request and a list may hold a thousand images;
building ORM objects for each row and its collections was most of their cost. Here the
image rows come from a Core SELECT and their properties, tags and locations from one
UNION ALL of (image_id, kind, a, b) rows (for one image: packed into its row as JSON), and
the result has the attribute names of the ORM objects (image.properties[i].name,
image.tags[i].value, image.locations[i].url), so access rules, policy targets and the view
work on either.

Showing one image skips SQLAlchemy's execution layer too (`_PreparedRead`): with several
request threads, each Python step between the driver's GIL releases is paid again by
every thread waiting for the GIL, and Core's per-execution bookkeeping tripled the cost of
a show's query under load (bench/README.md, "Metadata hotspots").
"""
import functools
import json
from types import SimpleNamespace

from sqlalchemy import Integer, Text, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

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


class _JsonRows(FunctionElement):
    """Aggregate: a JSON array (as text) holding one JSON array of the arguments per row, in
    no particular order; NULL (PostgreSQL) or [] (SQLite) without rows."""
    inherit_cache = True
    name = "json_rows"
    type = Text()


@compiles(_JsonRows, "sqlite")
def _json_rows_sqlite(element, compiler, **kw):
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(_JsonRows, "postgresql")
def _json_rows_postgresql(element, compiler, **kw):
    return f"CAST(json_agg(json_build_array({compiler.process(element.clauses, **kw)})) AS TEXT)"


def _one_image_statement():
    """One round trip and one row: the image row and its collections packed as JSON (each
    row handed over to Python costs more than the row itself)."""
    image_id = bindparam("image_id")
    collections = _collections(lambda column: column == image_id).subquery("collections")
    packed = select(_JsonRows(collections.c.kind, collections.c.a, collections.c.b,
                              collections.c.position)).scalar_subquery()
    return select(IMAGES, packed.label("collections")).where(IMAGES.c.id == image_id)


class _PreparedRead:
    """A SELECT compiled once for a dialect and run on a pooled DBAPI connection: the SQL
    text, the order of its parameters, and the converters SQLAlchemy would apply to each
    result column (SQLite keeps datetimes as text and booleans as integers)."""

    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positions = compiled.positiontup if compiled.positional else None
        self.converters = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in statement.selected_columns]

    def first(self, engine, params):
        """The first result row as a tuple of converted values, or None."""
        if self.positions is not None:
            params = tuple(params[name] for name in self.positions)
        connection = engine.raw_connection()  # checked in again (and rolled back) on close
        try:
            cursor = connection.cursor()
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
            cursor.close()
        finally:
            connection.close()
        if row is None:
            return None
        return tuple(value if convert is None or value is None else convert(value)
                     for convert, value in zip(self.converters, row, strict=True))


_ONE_IMAGE = _one_image_statement()


@functools.cache
def _one_image_read(dialect):
    return _PreparedRead(_ONE_IMAGE, dialect)


def read_image(image_id):
    """The image with its properties, tags and locations, or None."""
    engine = db.engine  # no ORM session: nothing here is written
    row = _one_image_read(engine.dialect).first(engine, {"image_id": image_id})
    if row is None:
        return None
    image = _image(row)
    for kind, a, b, _position in sorted(json.loads(row[-1] or "[]"),
                                        key=lambda item: (item[0], item[3])):
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
