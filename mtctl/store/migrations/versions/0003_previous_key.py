"""The previous key of a phone, valid for a grace period after each rotation.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("phone") as batch:
        batch.add_column(sa.Column("prev_ha1", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("prev_ha1_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("prev_key_valid_until", sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("phone") as batch:
        batch.drop_column("prev_key_valid_until")
        batch.drop_column("prev_ha1_sha256")
        batch.drop_column("prev_ha1")
