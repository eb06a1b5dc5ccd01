"""Settings kept in the store (`mtctl config`): SIP domain, provisioning URL, key lifetimes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mtctl.domain.keys import (
    DEFAULT_GRACE_DAYS,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_ROTATE_WITHIN_DAYS,
)
from mtctl.errors import UsageError
from mtctl.store import audit
from mtctl.store.tables import setting

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_URI = re.compile(r"^sips?:[^\s]+$")
_URL = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")


def _host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError("a host name such as pbx.example.com")
    return value.lower()


def _sip_uri(value: str) -> str:
    if not _URI.match(value):
        raise ValueError("a SIP URI such as sip:pbx.example.com:5060;transport=udp")
    return value


def _url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("an http(s) URL such as https://prov.example.com/p")
    return value.rstrip("/")


def _non_negative(value: str) -> str:
    if not value.isdigit():
        raise ValueError("a whole number, 0 or more")
    return str(int(value))


def _positive(value: str) -> str:
    if not value.isdigit() or int(value) <= 0:
        raise ValueError("a whole number greater than 0")
    return str(int(value))


@dataclass(frozen=True)
class Key:
    name: str
    parse: Callable[[str], str]
    default: str | None
    help: str


KEYS = {k.name: k for k in [
    Key("sip.domain", _host, None, "SIP domain of the PBX (the domain of every phone's AOR)"),
    Key("sip.realm", _host, None, "digest realm of SIP keys (defaults to sip.domain)"),
    Key("sip.proxy", _sip_uri, None, "outbound proxy for phones on the private network"),
    Key("flexisip.proxy", _sip_uri, None, "Flexisip edge proxy for publishable phones"),
    Key("provisioning.base_url", _url, None, "base of provisioning URLs shown in QR codes"),
    Key("provisioning.token_ttl_hours", _positive, "24", "hours a provisioning token stays "
        "usable before it is redeemed"),
    Key("keys.lifetime_days", _positive, str(DEFAULT_LIFETIME_DAYS), "lifetime of a secure "
        "phone's key, unless its template says otherwise"),
    Key("keys.rotate_within_days", _positive, str(DEFAULT_ROTATE_WITHIN_DAYS),
        "keys rotate defaults to keys expiring within this many days"),
    Key("keys.grace_days", _non_negative, str(DEFAULT_GRACE_DAYS), "days a rotated-out key "
        "stays valid, for devices that have not fetched the new one yet (0: none)"),
]}


def _known(name: str) -> Key:
    if name not in KEYS:
        raise UsageError(f"unknown setting {name!r}", "known settings: " + ", ".join(KEYS))
    return KEYS[name]


def set_value(conn: Connection, *, actor: str, name: str, value: str) -> str:
    key = _known(name)
    try:
        clean = key.parse(value.strip())
    except ValueError as exc:
        raise UsageError(f"bad value {value!r} for {name}", f"use {exc}") from None
    before = get_value(conn, name)
    exists = conn.execute(select(setting.c.key).where(setting.c.key == name)).first()
    if exists:
        conn.execute(update(setting).where(setting.c.key == name).values(value=clean))
    else:
        conn.execute(insert(setting).values(key=name, value=clean))
    if before != clean:
        audit.record(conn, actor=actor, action="set", obj=f"config {name}",
                     changes={"value": [before, clean]})
    return clean


def unset_value(conn: Connection, *, actor: str, name: str) -> None:
    _known(name)
    before = get_value(conn, name)
    conn.execute(delete(setting).where(setting.c.key == name))
    audit.record(conn, actor=actor, action="unset", obj=f"config {name}",
                 changes={"value": [before, KEYS[name].default]})


def get_value(conn: Connection, name: str) -> str | None:
    """The setting's value, its default, or None when unset (sip.realm falls back to sip.domain)."""
    key = _known(name)
    stored = conn.execute(select(setting.c.value).where(setting.c.key == name)).scalar()
    if stored is not None:
        return stored
    if name == "sip.realm":
        return get_value(conn, "sip.domain")
    return key.default


def list_values(conn: Connection) -> list[dict[str, str | None]]:
    stored = dict(conn.execute(select(setting.c.key, setting.c.value)).all())
    return [{"key": name, "value": get_value(conn, name), "set": name in stored,
             "help": key.help} for name, key in KEYS.items()]


def require_realm(conn: Connection) -> str:
    realm = get_value(conn, "sip.realm")
    if realm is None:
        raise UsageError("the SIP domain is not configured, so no key can be made",
                         "run: mtctl config set sip.domain pbx.example.com")
    return realm


def int_value(conn: Connection, name: str) -> int:
    value = get_value(conn, name)
    assert value is not None, name  # every int setting has a default
    return int(value)
