"""A call's branches are keyed by tm's branch number, as the exported Kamailio records them.

call_branch.branch_index: the branch's number in its call (Kamailio's $T_branch_idx), unique
per call and node, so the proxy's later writes (the branch's final reply) find their row.
Existing rows get their id (any unique number).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_branch") as batch:
        batch.add_column(sa.Column("branch_index", sa.Integer(), server_default="0",
                                   nullable=False))
    op.execute("UPDATE call_branch SET branch_index = id")
    with op.batch_alter_table("call_branch") as batch:
        batch.drop_index("ix_call_branch_call_id_node")
        batch.create_unique_constraint("uq_call_branch_call_id_node",
                                       ["call_id", "node", "branch_index"])


def downgrade() -> None:
    with op.batch_alter_table("call_branch") as batch:
        batch.drop_constraint("uq_call_branch_call_id_node", type_="unique")
        batch.create_index("ix_call_branch_call_id_node", ["call_id", "node"])
        batch.drop_column("branch_index")
