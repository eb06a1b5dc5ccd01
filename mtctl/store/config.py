"""Settings kept in the store (`mtctl config`): SIP domain, provisioning URL, key lifetimes."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mtctl.domain.config_keys import SECRETS, SETTINGS, Setting, rotation_conflicts
from mtctl.errors import UsageError
from mtctl.store import audit
from mtctl.store.tables import setting, template

KEYS: dict[str, Setting] = SETTINGS  # every setting, its type, range and default


def _known(name: str) -> Setting:
    if name in SECRETS:  # a secret given to `config set` is already in argv: say how not to
        raise UsageError(f"{name} is a secret, not a setting",
                         f"set it with: mtctl config set-secret {name} --password-stdin")
    if name not in KEYS:
        raise UsageError(f"unknown setting {_shown(name)}", "known settings: " + ", ".join(KEYS))
    return KEYS[name]


def _shown(value: str) -> str:
    """A value for a message: quoted, control characters escaped, long ones cut."""
    return repr(value if len(value) <= 60 else value[:60] + "…")


def set_value(conn: Connection, *, actor: str, name: str, value: str) -> str:
    """Store a setting after checking its type and range (exit 2 otherwise)."""
    key = _known(name)
    try:
        clean = key.parse(value)
    except ValueError as exc:
        raise UsageError(f"bad value {_shown(value)} for {name}", f"use {exc}") from None
    before = get_value(conn, name)
    exists = conn.execute(select(setting.c.key).where(setting.c.key == name)).first()
    if exists:
        conn.execute(update(setting).where(setting.c.key == name).values(value=clean))
    else:
        conn.execute(insert(setting).values(key=name, value=clean))
    if name in ("keys.rotate_within_days", "keys.lifetime_days"):
        check_rotation(conn)
    if before != clean:
        audit.record(conn, actor=actor, action="set", obj=f"config {name}",
                     changes={"value": [before, clean]})
    return clean


def check_rotation(conn: Connection) -> None:
    """Refuse (exit 2) a rotation window that is not shorter than every key lifetime."""
    stored = dict(conn.execute(select(setting.c.key, setting.c.value)).all())
    lifetimes = dict(conn.execute(select(template.c.name, template.c.key_lifetime_days)).all())
    conflicts = rotation_conflicts(stored, lifetimes)
    if conflicts:
        raise UsageError(conflicts[0].message, conflicts[0].hint)


def unset_value(conn: Connection, *, actor: str, name: str) -> None:
    _known(name)
    before = get_value(conn, name)
    conn.execute(delete(setting).where(setting.c.key == name))
    if name in ("keys.rotate_within_days", "keys.lifetime_days"):
        check_rotation(conn)
    audit.record(conn, actor=actor, action="unset", obj=f"config {name}",
                 changes={"value": [before, KEYS[name].default]})


def get_value(conn: Connection, name: str) -> str | None:
    """The setting's value, its default, or None when unset (sip.realm falls back to sip.domain)."""
    key = _known(name)
    stored: str | None = conn.execute(select(setting.c.value).where(setting.c.key == name)
                                      ).scalar()
    if stored is not None:
        return stored
    if name == "sip.realm":
        return get_value(conn, "sip.domain")
    return key.default


def list_values(conn: Connection) -> list[dict[str, str | bool | None]]:
    stored = dict(conn.execute(select(setting.c.key, setting.c.value)).all())
    return [{"key": name, "value": get_value(conn, name), "set": name in stored,
             "help": key.help} for name, key in KEYS.items()]


def require_realm(conn: Connection) -> str:
    realm = get_value(conn, "sip.realm")
    if realm is None:
        raise UsageError("the SIP domain is not configured, so no key can be made",
                         "run: mtctl config set sip.domain pbx.example.com")
    return realm


def key_lifetime(conn: Connection, template_name: str, days: int | None) -> int:
    """Days a key made for a phone of this template lives: its lifetime, else the setting;
    a lifetime stored out of range (before ranges were checked) is an error, not a crash."""
    from mtctl.domain.config_keys import MAX_LIFETIME_DAYS

    if days is None:
        return int_value(conn, "keys.lifetime_days")
    if not 1 <= days <= MAX_LIFETIME_DAYS:
        raise UsageError(f"template {_shown(template_name)} holds a key lifetime of {days} "
                         f"days, not 1 to {MAX_LIFETIME_DAYS}",
                         "export the store, fix key_lifetime_days in the file and apply it")
    return days


def int_value(conn: Connection, name: str) -> int:
    """A whole-number setting, checked against its range: a store written before the ranges
    existed may hold anything, and a command must say so rather than crash on it."""
    key = _known(name)
    value = get_value(conn, name)
    assert value is not None and key.is_int, name  # every int setting has a default
    try:
        number = int(key.parse(value))
    except ValueError:
        raise UsageError(f"setting {name} holds {_shown(value)}, not {key.expected}",
                         f"run: mtctl config set {name} N, or mtctl config unset {name} "
                         "for the default") from None
    if name == "keys.rotate_within_days" and number >= int_value(conn, "keys.lifetime_days"):
        lifetime = int_value(conn, "keys.lifetime_days")
        raise UsageError(f"setting {name} ({number}) is not shorter than keys.lifetime_days "
                         f"({lifetime}), so keys rotate would rotate every key",
                         f"run: mtctl config set {name} N with N below {lifetime}")
    return number
