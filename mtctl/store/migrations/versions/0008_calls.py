"""Real calls and registration events (SPEC §10).

- call_record, call_branch: written by the exported Kamailio for every call it routes and every
  branch it sends (times in epoch milliseconds).
- registration_event: one row per change of Kamailio's location table, written by triggers in
  the same statement as usrloc's own write, so no Kamailio configuration is involved and a
  registration can never be refused by it: INSERT = registered, UPDATE = refreshed, DELETE =
  expired when the contact's expiry had passed (at that expiry), else unregistered; the node
  is the one whose id the registering Kamailio writes as server_id. The registrations already
  live are recorded as registered now.

A later migration that rebuilds `location` (SQLite batch mode) must create the triggers again.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = "at_ms, event, auth_user, contact, user_agent, expires, node"

SQLITE_NOW_MS = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"
SQLITE_NOW_S = "CAST(strftime('%s', 'now') AS INTEGER)"
# the node that holds a registration: each node's Kamailio writes its node id as server_id
SQLITE_NODE = "COALESCE((SELECT name FROM node WHERE id = NEW.server_id), '')"
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER location_registered AFTER INSERT ON location BEGIN
        INSERT INTO registration_event ({COLUMNS})
        VALUES ({SQLITE_NOW_MS}, 'registered', NEW.username, NEW.contact, NEW.user_agent,
                NEW.expires, {SQLITE_NODE});
    END""",  # noqa: S608 (DDL from constants)
    f"""CREATE TRIGGER location_refreshed AFTER UPDATE ON location BEGIN
        INSERT INTO registration_event ({COLUMNS})
        VALUES ({SQLITE_NOW_MS}, 'refreshed', NEW.username, NEW.contact, NEW.user_agent,
                NEW.expires, {SQLITE_NODE});
    END""",  # noqa: S608 (DDL from constants)
    f"""CREATE TRIGGER location_removed AFTER DELETE ON location BEGIN
        INSERT INTO registration_event ({COLUMNS})
        SELECT CASE WHEN gone THEN OLD.expires * 1000 ELSE {SQLITE_NOW_MS} END,
               CASE WHEN gone THEN 'expired' ELSE 'unregistered' END,
               OLD.username, OLD.contact, OLD.user_agent, OLD.expires,
               {SQLITE_NODE.replace('NEW.', 'OLD.')}
        FROM (SELECT OLD.expires > 0 AND OLD.expires <= {SQLITE_NOW_S} AS gone);
    END""",  # noqa: S608 (DDL from constants)
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS location_removed",
               "DROP TRIGGER IF EXISTS location_refreshed",
               "DROP TRIGGER IF EXISTS location_registered"]

PG_NOW_MS = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
PG_TRIGGERS = [
    f"""CREATE FUNCTION location_event() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        gone boolean;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            gone := OLD.expires > 0
                    AND OLD.expires <= CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT);
            INSERT INTO registration_event ({COLUMNS})
            VALUES (CASE WHEN gone THEN OLD.expires * 1000 ELSE {PG_NOW_MS} END,
                    CASE WHEN gone THEN 'expired' ELSE 'unregistered' END,
                    OLD.username, OLD.contact, OLD.user_agent, OLD.expires,
                    COALESCE((SELECT name FROM node WHERE id = OLD.server_id), ''));
            RETURN OLD;
        END IF;
        INSERT INTO registration_event ({COLUMNS})
        VALUES ({PG_NOW_MS}, CASE WHEN TG_OP = 'INSERT' THEN 'registered' ELSE 'refreshed' END,
                NEW.username, NEW.contact, NEW.user_agent, NEW.expires,
                COALESCE((SELECT name FROM node WHERE id = NEW.server_id), ''));
        RETURN NEW;
    END $$""",  # noqa: S608 (DDL from constants)
    """CREATE TRIGGER location_event AFTER INSERT OR UPDATE OR DELETE ON location
        FOR EACH ROW EXECUTE FUNCTION location_event()""",
]
PG_DROP = ["DROP TRIGGER IF EXISTS location_event ON location",
           "DROP FUNCTION IF EXISTS location_event()"]


def upgrade() -> None:
    op.create_table(
        "call_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("node", sa.String(length=64), server_default="", nullable=False),
        sa.Column("caller", sa.String(length=255), server_default="", nullable=False),
        sa.Column("called", sa.String(length=64), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.Column("final_code", sa.Integer(), nullable=True),
        sa.Column("final_reason", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_record")),
        sa.UniqueConstraint("call_id", "node", name="uq_call_record_call_id_node"),
    )
    op.create_index("ix_call_record_called_started", "call_record", ["called", "started_ms"])
    op.create_index(op.f("ix_call_record_started_ms"), "call_record", ["started_ms"])
    op.create_table(
        "call_branch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("node", sa.String(length=64), server_default="", nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("ring_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("auth_user", sa.String(length=64), nullable=False),
        sa.Column("extension", sa.String(length=32), server_default="", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("contact", sa.String(length=512), server_default="", nullable=False),
        sa.Column("invited_ms", sa.BigInteger(), nullable=False),
        sa.Column("ended_ms", sa.BigInteger(), nullable=True),
        sa.Column("final_code", sa.Integer(), nullable=True),
        sa.Column("final_reason", sa.String(length=128), nullable=True),
        sa.Column("answered", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_branch")),
    )
    op.create_index("ix_call_branch_call_id_node", "call_branch", ["call_id", "node"])
    op.create_index(op.f("ix_call_branch_invited_ms"), "call_branch", ["invited_ms"])
    op.create_table(
        "registration_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("auth_user", sa.String(length=64), nullable=False),
        sa.Column("contact", sa.String(length=512), server_default="", nullable=False),
        sa.Column("user_agent", sa.String(length=255), server_default="", nullable=False),
        sa.Column("expires", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("node", sa.String(length=64), server_default="", nullable=False),
        sa.CheckConstraint("event IN ('registered', 'refreshed', 'unregistered', 'expired')",
                           name=op.f("ck_registration_event_event")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_event")),
    )
    op.create_index(op.f("ix_registration_event_at_ms"), "registration_event", ["at_ms"])
    op.create_index(op.f("ix_registration_event_auth_user"), "registration_event",
                    ["auth_user"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    now_ms = SQLITE_NOW_MS if sqlite else PG_NOW_MS
    op.execute(f"INSERT INTO registration_event ({COLUMNS}) "  # noqa: S608 (constants only)
               f"SELECT {now_ms}, 'registered', username, contact, user_agent, expires, "
               "COALESCE((SELECT name FROM node WHERE id = server_id), '') FROM location")
    for statement in SQLITE_TRIGGERS if sqlite else PG_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DROP if sqlite else PG_DROP:
        op.execute(statement)
    op.drop_table("registration_event")
    op.drop_table("call_branch")
    op.drop_table("call_record")
