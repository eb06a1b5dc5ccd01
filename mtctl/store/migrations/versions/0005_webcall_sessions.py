"""Web Call sessions, the ring_webcall view that reads them, and registrations in epoch seconds.

- webcall_session: "user U's Web Call is running on extension W" (SPEC §3), at most one per user
  and one per extension.
- ring_webcall (replaced): an exclusive user's Web Call extensions whose registered Web Call
  phone means "Web Call running": first the extension of the user's session (while it is one of
  the user's Web Call extensions), then the user's individually assigned ones. A pool
  extension without the user's session is not listed: someone else's browser may be there.
- location.expires and location.last_modified become BIGINT epoch seconds (the exported config
  sets usrloc's expires_type = 1). Kamailio wrote them in its host's local time, in a column
  without time zone; the values already there are converted as if that time were UTC
  (registrations refresh within their expiry anyway).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RING_WEBCALL_0004 = """CREATE VIEW ring_webcall AS
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
        JOIN extension w ON w.id = g.extension_id"""

RING_WEBCALL = """CREATE VIEW ring_webcall AS
        SELECT e.number AS number, w.number AS webcall_number, 0 AS source, 0 AS rank
        FROM webcall_session s
        JOIN app_user u ON u.id = s.user_id
        JOIN extension e ON e.id = u.login_extension_id
        JOIN extension w ON w.id = s.extension_id
        WHERE EXISTS (SELECT 1 FROM user_webcall_extension uw
                      WHERE uw.user_id = u.id AND uw.extension_id = w.id)
           OR EXISTS (SELECT 1 FROM webcall_group_extension g
                      WHERE g.group_id = u.webcall_group_id AND g.extension_id = w.id)
        UNION ALL
        SELECT e.number, w.number, 1, uw.rank
        FROM app_user u
        JOIN extension e ON e.id = u.login_extension_id
        JOIN user_webcall_extension uw ON uw.user_id = u.id
        JOIN extension w ON w.id = uw.extension_id"""

TIMES = ("expires", "last_modified")
OLD_DEFAULTS = {"expires": "2030-05-28 21:32:15", "last_modified": "2000-01-01 00:00:01"}


def upgrade() -> None:
    op.create_table(
        "webcall_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("extension_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"],
                                name=op.f("fk_webcall_session_user_id_app_user"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["extension_id"], ["extension.id"],
                                name=op.f("fk_webcall_session_extension_id_extension"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webcall_session")),
        sa.UniqueConstraint("user_id", name=op.f("uq_webcall_session_user_id")),
        sa.UniqueConstraint("extension_id", name=op.f("uq_webcall_session_extension_id")),
    )
    op.execute("DROP VIEW ring_webcall")
    op.execute(RING_WEBCALL)
    _location_times(to_epoch=True)


def downgrade() -> None:
    _location_times(to_epoch=False)
    op.execute("DROP VIEW ring_webcall")
    op.execute(RING_WEBCALL_0004)
    op.drop_table("webcall_session")


def _location_times(*, to_epoch: bool) -> None:
    new_type = sa.BigInteger() if to_epoch else sa.DateTime()
    old_type = sa.DateTime() if to_epoch else sa.BigInteger()
    if op.get_bind().dialect.name == "sqlite":
        # Julian day numbers (or text) <-> epoch seconds, converted while the column holds
        # numbers: the batch copy CASTs to the declared type, which would cut text short.
        if to_epoch:
            _sqlite_values("CAST(ROUND((julianday({c}) - 2440587.5) * 86400) AS INTEGER)")
        with op.batch_alter_table("location") as batch:
            for column in TIMES:
                batch.alter_column(column, type_=new_type, existing_type=old_type,
                                   existing_nullable=False,
                                   server_default="0" if to_epoch else OLD_DEFAULTS[column])
        if not to_epoch:
            _sqlite_values("julianday({c}, 'unixepoch')")
        return
    for column in TIMES:
        using = (f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)" if to_epoch
                 else f"to_timestamp({column}) AT TIME ZONE 'UTC'")
        op.alter_column("location", column, server_default=None, existing_type=old_type,
                        existing_nullable=False)
        op.alter_column("location", column, type_=new_type, existing_type=old_type,
                        existing_nullable=False, postgresql_using=using)
        op.alter_column("location", column,
                        server_default="0" if to_epoch else OLD_DEFAULTS[column],
                        existing_type=new_type, existing_nullable=False)


def _sqlite_values(expression: str) -> None:
    for column in TIMES:
        op.execute(f"UPDATE location SET {column} = {expression.format(c=column)}")  # noqa: S608
