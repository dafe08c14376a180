"""image locations

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "image_locations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"],
                                name=op.f("fk_image_locations_image_id_images"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_locations")),
    )
    with op.batch_alter_table("image_locations") as batch_op:
        batch_op.create_index("ix_image_locations_image_id", ["image_id"], unique=False)


def downgrade():
    with op.batch_alter_table("image_locations") as batch_op:
        batch_op.drop_index("ix_image_locations_image_id")
    op.drop_table("image_locations")
