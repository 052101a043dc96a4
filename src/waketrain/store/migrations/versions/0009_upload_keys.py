"""clips remember the upload's idempotency key

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clips") as table:
        table.add_column(sa.Column("upload_key", sa.String(length=160), nullable=True))
        table.create_unique_constraint("uq_clips_upload_key", ["upload_key"])


def downgrade() -> None:
    with op.batch_alter_table("clips") as table:
        table.drop_constraint("uq_clips_upload_key", type_="unique")
        table.drop_column("upload_key")
