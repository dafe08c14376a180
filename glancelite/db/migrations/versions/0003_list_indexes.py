"""indexes for the image list

Revision ID: 0003
Revises: 0002

One index per sortable column that lacked one, laid out as the list sorts: non-deleted
rows, the key, then the created_at/id tie-breakers, so that a page of any sort order is
read off an index instead of sorting every image. The list sorts NULL first ascending,
which PostgreSQL indexes must be told (SQLite puts NULL first anyway). Extra-property
values get a hash index on PostgreSQL (its btree refuses keys over ~2.7 kB; values are
unbounded text), a plain one on SQLite.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SORT_INDEXES = {
    "ix_images_sort_name": "name",
    "ix_images_sort_status": "status",
    "ix_images_sort_container_format": "container_format",
    "ix_images_sort_disk_format": "disk_format",
    "ix_images_sort_size": "size",
}
NULLABLE = {"name", "container_format", "disk_format", "size"}


def _key(column):
    if column in NULLABLE and op.get_bind().dialect.name == "postgresql":
        return sa.text(f"{column} NULLS FIRST")
    return column


def upgrade():
    for index, column in SORT_INDEXES.items():
        op.create_index(index, "images", ["deleted", _key(column), "created_at", "id"])
    op.create_index("ix_image_properties_value", "image_properties", ["value"],
                    postgresql_using="hash")


def downgrade():
    op.drop_index("ix_image_properties_value", table_name="image_properties")
    for index in SORT_INDEXES:
        op.drop_index(index, table_name="images")
