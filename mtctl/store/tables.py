"""The schema, as SQLAlchemy Core tables: the single source migrations are checked against.

Core tables rather than SQLModel classes: importing SQLModel (and pydantic) costs ~180 ms
at every start, which the listing commands cannot afford (see bench/).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

node = Table(
    "node", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    # Where the node's Kamailio listens, HOST:PORT (SPEC §8); NULL on a single-proxy site.
    Column("sip_address", String(261), nullable=True),
)

category = Table(
    "category", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
)

phone_model = Table(
    "phone_model", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("vendor", String(64), nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),
    Column("qr_provisionable", Boolean, nullable=False, server_default="0"),
    # How phones of this model get their account (SPEC §9): see domain/devices.py.
    Column("profile", String(16), nullable=True),
    CheckConstraint("kind IN ('hardphone', 'softphone', 'app', 'webcall')", name="kind"),
    CheckConstraint("profile IN ('linphone', 'cisco-mpp', 'yealink')", name="profile"),
)

template = Table(
    "template", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("for_webcall", Boolean, nullable=False, server_default="0"),
    Column("category_id", ForeignKey("category.id", ondelete="RESTRICT"), nullable=True),
    Column("secure", Boolean, nullable=False, server_default="0"),
    Column("key_lifetime_days", Integer, nullable=True),
    CheckConstraint("key_lifetime_days IS NULL OR key_lifetime_days > 0",
                    name="key_lifetime_days"),
)

extension = Table(
    "extension", metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("node_id", ForeignKey("node.id", ondelete="RESTRICT"), nullable=False, index=True),
    Column("display_name", String(128), nullable=True),
    Column("ring_timeout", Integer, nullable=False, server_default="20"),
    CheckConstraint("ring_timeout > 0", name="ring_timeout"),
)

webcall_group = Table(
    "webcall_group", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
)

webcall_group_extension = Table(
    "webcall_group_extension", metadata,
    Column("group_id", ForeignKey("webcall_group.id", ondelete="CASCADE"), primary_key=True),
    Column("extension_id", ForeignKey("extension.id", ondelete="RESTRICT"), primary_key=True,
           index=True),
    Column("rank", Integer, nullable=False, server_default="0"),
)

# "user" is reserved in PostgreSQL. The user's login extension makes the user its owner.
app_user = Table(
    "app_user", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(128), nullable=False),
    Column("login_extension_id", ForeignKey("extension.id", ondelete="RESTRICT"),
           nullable=False, unique=True),
    Column("webcall_mode", String(16), nullable=True),
    Column("webcall_license", String(16), nullable=True),
    Column("webcall_group_id", ForeignKey("webcall_group.id", ondelete="RESTRICT"),
           nullable=True, index=True),
    Column("webcall_position", Integer, nullable=True),
    CheckConstraint("webcall_mode IN ('exclusive', 'multiterminal')", name="webcall_mode"),
    CheckConstraint("webcall_license IN ('dedicated', 'pool')", name="webcall_license"),
)

user_webcall_extension = Table(
    "user_webcall_extension", metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("extension_id", ForeignKey("extension.id", ondelete="RESTRICT"), primary_key=True,
           index=True),
    Column("rank", Integer, nullable=False, server_default="0"),
)

# Web Call sessions (SPEC §3): "user U's Web Call is running on extension W", opened and closed
# by the Web Call login. At most one per user and one per extension.
webcall_session = Table(
    "webcall_session", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False,
           unique=True),
    Column("extension_id", ForeignKey("extension.id", ondelete="CASCADE"), nullable=False,
           unique=True),
    Column("since", DateTime(timezone=True), nullable=False),
)

# The user portal (SPEC §11). Only SHA-256 digests of the 256-bit link tokens and session ids
# are kept; a portal password only as a passlib hash.
portal_login_link = Table(
    "portal_login_link", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

portal_session = Table(
    "portal_session", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

portal_password = Table(
    "portal_password", metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

phone = Table(
    "phone", metadata,
    Column("id", Integer, primary_key=True),
    Column("extension_id", ForeignKey("extension.id", ondelete="CASCADE"), nullable=False),
    Column("node_id", ForeignKey("node.id", ondelete="RESTRICT"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("ring_order", Integer, nullable=False, server_default="1"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("model_id", ForeignKey("phone_model.id", ondelete="RESTRICT"), nullable=False,
           index=True),
    Column("template_id", ForeignKey("template.id", ondelete="RESTRICT"), nullable=False,
           index=True),
    Column("category_id", ForeignKey("category.id", ondelete="RESTRICT"), nullable=True,
           index=True),
    Column("location", String(128), nullable=True),
    Column("secure", Boolean, nullable=False, server_default="0"),
    Column("publishable", Boolean, nullable=False, server_default="0"),
    Column("sip_auth_user", String(64), nullable=False, unique=True),
    # Digests only (SPEC §4): HA1 = MD5(user:realm:password) and its SHA-256 form.
    Column("ha1", String(32), nullable=True),
    Column("ha1_sha256", String(64), nullable=True),
    Column("key_expires_at", DateTime(timezone=True), nullable=True, index=True),
    Column("key_updated_at", DateTime(timezone=True), nullable=True),
    # After a rotation the previous key stays valid for a grace period, so a device that has
    # not fetched its new provisioning yet keeps registering.
    Column("prev_ha1", String(32), nullable=True),
    Column("prev_ha1_sha256", String(64), nullable=True),
    Column("prev_key_valid_until", DateTime(timezone=True), nullable=True),
    # A desk phone's MAC (12 lowercase hex digits) and its rotate-on-fetch trail: when and to
    # which address its file last carried a fresh key, and since when `keys rotate` found its
    # key due (the next fetch replaces it).
    Column("mac", String(12), nullable=True, unique=True),
    Column("key_delivered_at", DateTime(timezone=True), nullable=True),
    Column("key_delivered_to", String(64), nullable=True),
    Column("key_due_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("extension_id", "position", name="uq_phone_extension_position"),
    CheckConstraint("position >= 0 AND position <= 7", name="position"),
    CheckConstraint("ring_order >= 0", name="ring_order"),
)

setting = Table(
    "setting", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Hashes (passlib) of secrets mtctl checks, such as provisioning.device_password: apart from
# the settings, so export, apply and `config list` never see them.
secret = Table(
    "secret", metadata,
    Column("key", String(64), primary_key=True),
    Column("hash", Text, nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("object", String(128), nullable=False, index=True),
    Column("changes", JSON, nullable=True),
)

# One live provisioning token per phone; only a SHA-256 of the 256-bit token is kept.
provisioning_token = Table(
    "provisioning_token", metadata,
    Column("id", Integer, primary_key=True),
    Column("phone_id", ForeignKey("phone.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("redeem_by", DateTime(timezone=True), nullable=False),
    Column("redeemed_at", DateTime(timezone=True), nullable=True),
    Column("device", String(256), nullable=True),
)


# Kamailio's own tables, in its exact 5.6 schema, so `mtctl export kamailio` can point a Kamailio
# straight at this store (migration 0004 also creates the views it reads: subscriber,
# subscriber_prev, ring_phone, ring_target, ring_webcall). Kamailio writes them; mtctl only reads.
kamailio_version = Table(
    "version", metadata,
    Column("id", Integer, primary_key=True),
    Column("table_name", String(32), nullable=False),
    Column("table_version", Integer, nullable=False, server_default="0"),
    UniqueConstraint("table_name", name="version_table_name_idx"),
)

# usrloc in db_mode 1 (write-through): one row per registered contact; server_id is the id of
# the node whose Kamailio holds it (0: the single-proxy export). The exported config sets
# usrloc's expires_type = 1, so expires and last_modified are epoch seconds (BIGINT), whatever
# the time zones of Kamailio, the database and mtctl (migration 0005).
location = Table(
    "location", metadata,
    Column("id", Integer, primary_key=True),
    Column("ruid", String(64), nullable=False, server_default=""),
    Column("username", String(64), nullable=False, server_default=""),
    Column("domain", String(64), nullable=True),
    Column("contact", String(512), nullable=False, server_default=""),
    Column("received", String(128), nullable=True),
    Column("path", String(512), nullable=True),
    Column("expires", BigInteger, nullable=False, server_default="0"),
    Column("q", REAL, nullable=False, server_default="1.0"),
    Column("callid", String(255), nullable=False, server_default="Default-Call-ID"),
    Column("cseq", Integer, nullable=False, server_default="1"),
    Column("last_modified", BigInteger, nullable=False, server_default="0"),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("cflags", Integer, nullable=False, server_default="0"),
    Column("user_agent", String(255), nullable=False, server_default=""),
    Column("socket", String(64), nullable=True),
    Column("methods", Integer, nullable=True),
    Column("instance", String(255), nullable=True),
    Column("reg_id", Integer, nullable=False, server_default="0"),
    Column("server_id", Integer, nullable=False, server_default="0"),
    Column("connection_id", Integer, nullable=False, server_default="0"),
    Column("keepalive", Integer, nullable=False, server_default="0"),
    Column("partition", Integer, nullable=False, server_default="0"),
    UniqueConstraint("ruid", name="location_ruid_idx"),
    Index("location_account_contact_idx", "username", "domain", "contact"),
    Index("location_expires_idx", "expires"),
    Index("location_tcpcon_idx", "connection_id"),
    Index("location_connection_idx", "server_id", "connection_id"),
)


# Real calls (SPEC §10), written by the exported Kamailio; mtctl reads them and prunes them.
# Times are epoch milliseconds (UTC by definition): Kamailio computes them from its clock with
# no time zone, and nodes in different zones agree.
call_record = Table(
    "call_record", metadata,
    Column("id", Integer, primary_key=True),
    Column("call_id", String(255), nullable=False),
    Column("node", String(64), nullable=False, server_default=""),
    Column("caller", String(255), nullable=False, server_default=""),
    Column("called", String(64), nullable=False),
    Column("started_ms", BigInteger, nullable=False, index=True),
    Column("ended_ms", BigInteger, nullable=True),
    # answered | no-answer | busy | cancelled | failed | silent; NULL while the call rings
    Column("outcome", String(16), nullable=True),
    Column("answered_by", String(64), nullable=True),  # the answering phone's SIP auth user
    Column("final_code", Integer, nullable=True),
    Column("final_reason", String(128), nullable=True),
    UniqueConstraint("call_id", "node", name="uq_call_record_call_id_node"),
    Index("ix_call_record_called_started", "called", "started_ms"),
)

# One row per branch the proxy sent: which phone, in which stage, and how it ended.
call_branch = Table(
    "call_branch", metadata,
    Column("id", Integer, primary_key=True),
    Column("call_id", String(255), nullable=False),
    Column("node", String(64), nullable=False, server_default=""),
    # tm's branch number in the call (migration 0010)
    Column("branch_index", Integer, nullable=False, server_default="0"),
    Column("stage", Integer, nullable=False),  # 1 = the first stage that rang
    Column("ring_order", Integer, nullable=False, server_default="0"),
    Column("auth_user", String(64), nullable=False),
    # the phone as the proxy knew it when it rang (an auth user stays with its phone for life)
    Column("extension", String(32), nullable=False, server_default=""),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("contact", String(512), nullable=False, server_default=""),
    Column("invited_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger, nullable=True),
    Column("final_code", Integer, nullable=True),
    Column("final_reason", String(128), nullable=True),
    Column("answered", Boolean, nullable=False, server_default="0"),
    UniqueConstraint("call_id", "node", "branch_index", name="uq_call_branch_call_id_node"),
    Index("ix_call_branch_invited_ms", "invited_ms"),
)

# Registration events per phone, written by triggers on Kamailio's location table (migration
# 0008): registered (a new contact), refreshed, unregistered (removed before it expired),
# expired (removed by usrloc's timer after its expiry).
registration_event = Table(
    "registration_event", metadata,
    Column("id", Integer, primary_key=True),
    Column("at_ms", BigInteger, nullable=False, index=True),
    Column("event", String(16), nullable=False),
    Column("auth_user", String(64), nullable=False, index=True),
    Column("contact", String(512), nullable=False, server_default=""),
    Column("user_agent", String(255), nullable=False, server_default=""),
    Column("expires", BigInteger, nullable=False, server_default="0"),  # epoch seconds
    Column("node", String(64), nullable=False, server_default=""),
    CheckConstraint("event IN ('registered', 'refreshed', 'unregistered', 'expired')",
                    name="event"),
)
