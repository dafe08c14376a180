"""leases on an image's bytes (uploads, scrubbing)

Revision ID: 0004
Revises: 0003

`lease_owner` names the process working on an image's bytes right now — an upload while
the image is `saving` (or was deleted under it), or the scrubber removing the bytes of a
`pending_delete` image — and `lease_heartbeat` is when that owner last said it was alive.
A lease whose heartbeat is older than `upload_lease_timeout` belongs to a dead process:
the reaper removes its partial bytes and puts the image back to `queued`. The index lets
the reaper find expired leases without reading every image. Images left `saving` by a
version without leases get an already-stale lease, so the reaper cleans them up too.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("images") as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_heartbeat", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_images_lease_heartbeat", ["lease_heartbeat"], unique=False)
    images = sa.table("images", sa.column("status", sa.String), sa.column("updated_at", sa.DateTime),
                      sa.column("lease_owner", sa.String), sa.column("lease_heartbeat", sa.DateTime))
    op.execute(images.update().where(images.c.status == "saving")
               .values(lease_owner="migration-0004", lease_heartbeat=images.c.updated_at))


def downgrade():
    with op.batch_alter_table("images") as batch_op:
        batch_op.drop_index("ix_images_lease_heartbeat")
        batch_op.drop_column("lease_heartbeat")
        batch_op.drop_column("lease_owner")
