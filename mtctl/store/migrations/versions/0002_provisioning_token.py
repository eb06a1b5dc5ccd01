"""Provisioning tokens: one per phone, kept only as a SHA-256 hash.

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
    op.create_table(
        "provisioning_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeem_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("device", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(["phone_id"], ["phone.id"],
                                name=op.f("fk_provisioning_token_phone_id_phone"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_token")),
        sa.UniqueConstraint("phone_id", name=op.f("uq_provisioning_token_phone_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_provisioning_token_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("provisioning_token")
