"""Kamailio reads this store directly: its version and location tables, and the views it queries.

Views (not in mtctl.store.tables: alembic's autogenerate ignores views):
- subscriber       auth_db, the current key (one row per SIP auth user: auth_db reads the first)
- subscriber_prev  auth_db, the previous key while its grace period runs
- ring_phone       every phone of an extension with what the ring semantics need
- ring_target      a called number: ring timeout, the display names the caller may see, Web Call mode
- ring_webcall     an exclusive user's Web Call extensions, in the order the ring function uses

Display names come out escaped for a SIP quoted-string (backslash and double quote escaped,
line breaks removed), so the routing script can put them in P-Asserted-Identity as they are.
Text the script reads is varchar: Kamailio's db_postgres reads `text` as a BLOB and unescapes it.

A later migration that rebuilds a table these views read (SQLite batch mode) must drop the
views first and create them again afterwards.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

VERSIONS = [("version", 1), ("location", 9), ("location_attrs", 1)]
VIEWS = ("ring_webcall", "ring_target", "ring_phone", "subscriber_prev", "subscriber")


def _quoted(expr: str, dialect: str) -> str:
    """EXPR as the inside of a SIP quoted-string."""
    nl = "char(13), char(10)" if dialect == "sqlite" else "chr(13), chr(10)"
    cr, lf = nl.split(", ")
    # varchar, not text: db_postgres reads text columns as BLOBs and unescapes backslashes.
    return (f"CAST(REPLACE(REPLACE(REPLACE(REPLACE({expr}, '\\', '\\\\'), '\"', '\\\"'), "
            f"{cr}, ''), {lf}, ' ') AS VARCHAR(512))")


def _view_sql(dialect: str) -> list[str]:
    empty = "''" if dialect == "sqlite" else "''::varchar"
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')" if dialect == "sqlite" else "now()"
    domain = "(SELECT value FROM setting WHERE \"key\" = 'sip.domain')"
    subscriber = """
        SELECT p.id AS id, p.sip_auth_user AS username, {domain} AS domain,
               {empty} AS password, p.{ha1} AS ha1, p.{ha1} AS ha1b,
               p.{ha1}_sha256 AS ha1_sha256
        FROM phone p WHERE p.{ha1} IS NOT NULL"""
    ext_name = _quoted("COALESCE(NULLIF(e.display_name, ''), e.number)", dialect)
    user_name = _quoted("u.display_name", dialect)
    return [
        "CREATE VIEW subscriber AS" + subscriber.format(domain=domain, empty=empty, ha1="ha1"),
        "CREATE VIEW subscriber_prev AS"
        + subscriber.format(domain=domain, empty=empty, ha1="prev_ha1")
        + f" AND p.prev_key_valid_until IS NOT NULL AND p.prev_key_valid_until > {now}",
        """CREATE VIEW ring_phone AS
        SELECT e.number AS number, p.position AS position, p.sip_auth_user AS auth_user,
               p.ring_order AS ring_order, p.enabled AS enabled,
               CASE WHEN m.kind = 'webcall' THEN 1 ELSE 0 END AS webcall
        FROM phone p
        JOIN extension e ON e.id = p.extension_id
        JOIN phone_model m ON m.id = p.model_id""",
        f"""CREATE VIEW ring_target AS
        SELECT e.number AS number, e.ring_timeout AS ring_timeout,
               {ext_name} AS extension_name,
               CASE WHEN u.id IS NULL THEN NULL ELSE {user_name} END AS user_name,
               COALESCE(u.webcall_mode, '') AS mode
        FROM extension e LEFT JOIN app_user u ON u.login_extension_id = e.id""",  # noqa: S608 (DDL from constants)
        """CREATE VIEW ring_webcall AS
        SELECT e.number AS number, w.number AS webcall_number, 0 AS source, uw.rank AS rank
        FROM app_user u
        JOIN extension e ON e.id = u.login_extension_id
        JOIN user_webcall_extension uw ON uw.user_id = u.id
        JOIN extension w ON w.id = uw.extension_id
        UNION ALL
        SELECT e.number, w.number, 1, g.rank
        FROM app_user u
        JOIN extension e ON e.id = u.login_extension_id
        JOIN webcall_group_extension g ON g.group_id = u.webcall_group_id
        JOIN extension w ON w.id = g.extension_id""",
    ]


def upgrade() -> None:
    version = op.create_table(
        "version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("table_version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version")),
        sa.UniqueConstraint("table_name", name="version_table_name_idx"),
    )
    op.bulk_insert(version, [{"table_name": name, "table_version": number}
                             for name, number in VERSIONS])
    op.create_table(
        "location",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ruid", sa.String(length=64), server_default="", nullable=False),
        sa.Column("username", sa.String(length=64), server_default="", nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=True),
        sa.Column("contact", sa.String(length=512), server_default="", nullable=False),
        sa.Column("received", sa.String(length=128), nullable=True),
        sa.Column("path", sa.String(length=512), nullable=True),
        sa.Column("expires", sa.DateTime(), server_default="2030-05-28 21:32:15",
                  nullable=False),
        sa.Column("q", sa.REAL(), server_default="1.0", nullable=False),
        sa.Column("callid", sa.String(length=255), server_default="Default-Call-ID",
                  nullable=False),
        sa.Column("cseq", sa.Integer(), server_default="1", nullable=False),
        sa.Column("last_modified", sa.DateTime(), server_default="2000-01-01 00:00:01",
                  nullable=False),
        sa.Column("flags", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cflags", sa.Integer(), server_default="0", nullable=False),
        sa.Column("user_agent", sa.String(length=255), server_default="", nullable=False),
        sa.Column("socket", sa.String(length=64), nullable=True),
        sa.Column("methods", sa.Integer(), nullable=True),
        sa.Column("instance", sa.String(length=255), nullable=True),
        sa.Column("reg_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("server_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("connection_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("keepalive", sa.Integer(), server_default="0", nullable=False),
        sa.Column("partition", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_location")),
        sa.UniqueConstraint("ruid", name="location_ruid_idx"),
    )
    op.create_index("location_account_contact_idx", "location",
                    ["username", "domain", "contact"], unique=False)
    op.create_index("location_expires_idx", "location", ["expires"], unique=False)
    op.create_index("location_tcpcon_idx", "location", ["connection_id"], unique=False)
    op.create_index("location_connection_idx", "location", ["server_id", "connection_id"],
                    unique=False)
    for statement in _view_sql(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_index("location_connection_idx", table_name="location")
    op.drop_index("location_tcpcon_idx", table_name="location")
    op.drop_index("location_expires_idx", table_name="location")
    op.drop_index("location_account_contact_idx", table_name="location")
    op.drop_table("location")
    op.drop_table("version")
