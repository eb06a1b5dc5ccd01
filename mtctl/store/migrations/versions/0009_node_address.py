"""Nodes are servers (SPEC §8): a node's SIP address, and the views a node's Kamailio reads.

- node.sip_address: where the node's Kamailio listens (HOST:PORT), NULL until set.
- ring_node: a called number's extension and the node it lives on (id, name, address); a
  node's Kamailio relays calls for another node's numbers there.
- phone_node: a SIP auth user and the node of its extension; a node's Kamailio accepts a
  REGISTER only from phones of its own extensions.

Registrations carry their node in location.server_id (Kamailio's core server_id, which the
exported node config sets to the node's id).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

VIEWS = {
    # varchar, not text: db_postgres reads text columns as BLOBs.
    "ring_node": """CREATE VIEW ring_node AS
        SELECT e.number AS number, n.id AS node_id, CAST(n.name AS VARCHAR(64)) AS node,
               CAST(n.sip_address AS VARCHAR(261)) AS sip_address
        FROM extension e JOIN node n ON n.id = e.node_id""",
    "phone_node": """CREATE VIEW phone_node AS
        SELECT p.sip_auth_user AS auth_user, n.id AS node_id,
               CAST(n.name AS VARCHAR(64)) AS node,
               CAST(n.sip_address AS VARCHAR(261)) AS sip_address
        FROM phone p JOIN extension e ON e.id = p.extension_id
        JOIN node n ON n.id = e.node_id""",
}


def upgrade() -> None:
    # ALTER TABLE in place on both backends: rebuilding node (SQLite batch mode) would trip
    # over the location triggers of migration 0008, which read node.
    op.add_column("node", sa.Column("sip_address", sa.String(length=261), nullable=True))
    for statement in VIEWS.values():
        op.execute(statement)


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE node DROP COLUMN sip_address")  # SQLite 3.35+, in place
    else:
        op.drop_column("node", "sip_address")
