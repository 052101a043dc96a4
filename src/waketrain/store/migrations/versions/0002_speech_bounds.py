"""speech bounds

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.add_column(sa.Column("speech_start_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("speech_end_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clips", schema=None) as batch_op:
        batch_op.drop_column("speech_end_seconds")
        batch_op.drop_column("speech_start_seconds")
