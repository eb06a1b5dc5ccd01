"""Desk phones provisioned by MAC (SPEC §9): model profiles, phone MACs, key deliveries.

- phone_model.profile: how a model is provisioned (linphone, cisco-mpp, yealink); the seeded
  "Cisco 8841" gets cisco-mpp, the Linphone-based apps linphone, and a new seeded model
  "Yealink T54W" (Yealink, hardphone) yealink.
- phone.mac: 12 lowercase hex digits, unique.
- phone.key_delivered_at / key_delivered_to: the last time a desk phone fetched its file with a
  fresh key, and from which address (rotate-on-fetch); phone.key_due_at: `keys rotate` found
  the key due and left it for the phone's next fetch.
- secret: hashes of secrets mtctl checks (provisioning.device_password), apart from the
  settings so that export, apply and config list never see them.

Revision ID: 0007
Revises: 0006
"""

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies: a migration never imports the domain catalog.
PROFILES = {"Cisco 8841": "cisco-mpp", "VIVAit Call Business iOS": "linphone",
            "VIVAit Call Business Android": "linphone"}
YEALINK = {"name": "Yealink T54W", "vendor": "Yealink", "kind": "hardphone",
           "qr_provisionable": False, "profile": "yealink"}


@contextlib.contextmanager
def _views_set_aside() -> Iterator[None]:
    """SQLite rebuilds a table to add a constraint, which its views would not survive: drop them
    and create them again from their own text afterwards (PostgreSQL alters in place)."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    views = op.get_bind().execute(sa.text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid")).all()
    for name, _ in views:
        op.execute(f'DROP VIEW "{name}"')
    yield
    for _, sql in views:
        op.execute(sql)


def upgrade() -> None:
    with _views_set_aside():
        _upgrade()


def downgrade() -> None:
    with _views_set_aside():
        _downgrade()


def _upgrade() -> None:
    op.create_table(
        "secret",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_secret")),
    )
    with op.batch_alter_table("phone_model") as batch:
        batch.add_column(sa.Column("profile", sa.String(length=16), nullable=True))
        batch.create_check_constraint(
            "profile", "profile IN ('linphone', 'cisco-mpp', 'yealink')")
    with op.batch_alter_table("phone") as batch:
        batch.add_column(sa.Column("mac", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("key_delivered_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("key_delivered_to", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("key_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint(op.f("uq_phone_mac"), ["mac"])
    model = sa.table("phone_model", sa.column("name", sa.String), sa.column("vendor", sa.String),
                     sa.column("kind", sa.String), sa.column("qr_provisionable", sa.Boolean),
                     sa.column("profile", sa.String))
    for name, profile in PROFILES.items():
        op.execute(model.update().where(model.c.name == name).values(profile=profile))
    exists = op.get_bind().execute(
        sa.select(model.c.name).where(model.c.name == YEALINK["name"])).first()
    if exists is None:
        op.execute(model.insert().values(**YEALINK))


def _downgrade() -> None:
    # The seeded Yealink goes unless a phone uses it (then it stays, as a model of its own).
    op.execute("DELETE FROM phone_model WHERE name = 'Yealink T54W' AND NOT EXISTS "
               "(SELECT 1 FROM phone WHERE phone.model_id = phone_model.id)")
    with op.batch_alter_table("phone") as batch:
        batch.drop_constraint(op.f("uq_phone_mac"), type_="unique")
        batch.drop_column("key_due_at")
        batch.drop_column("key_delivered_to")
        batch.drop_column("key_delivered_at")
        batch.drop_column("mac")
    with op.batch_alter_table("phone_model") as batch:
        batch.drop_constraint(op.f("ck_phone_model_profile"), type_="check")
        batch.drop_column("profile")
    op.drop_table("secret")
