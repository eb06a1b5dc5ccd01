"""The settings of `mtctl config` and of a config file's [settings]: one table of their types,
ranges and defaults, so `config set`, `apply` and every reader agree."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mtctl.domain.keys import (
    DEFAULT_GRACE_DAYS,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_ROTATE_WITHIN_DAYS,
)
from mtctl.domain.keys import MAX_LIFETIME_DAYS as MAX_LIFETIME_DAYS
from mtctl.domain.values import control_character

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


def _basic_user(value: str) -> str:
    if not value or ":" in value or " " in value or not value.isascii():
        raise ValueError("a user name of ASCII letters, digits and punctuation, without ':' "
                         "or spaces, such as mtctl")
    return value


def _url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("an http(s) URL such as https://prov.example.com/p")
    return value.rstrip("/")


@dataclass(frozen=True)
class Setting:
    """One setting: its type, its range (numbers) or form and length (text), its default."""

    name: str
    default: str | None
    help: str
    low: int | None = None  # whole numbers: low ≤ n ≤ high
    high: int | None = None
    form: Callable[[str], str] | None = None  # text: checks and normalises, or ValueError
    max_length: int = 512

    @property
    def is_int(self) -> bool:
        return self.low is not None

    @property
    def expected(self) -> str:
        return f"a whole number from {self.low} to {self.high}"

    def parse(self, value: str) -> str:
        """The stored form of value, or ValueError saying what to use instead."""
        value = value.strip()
        if self.is_int:
            assert self.low is not None and self.high is not None
            digits = value[1:] if value[:1] == "-" else value
            if not (digits.isascii() and digits.isdigit()) or len(digits) > 12 \
                    or not self.low <= int(value) <= self.high:
                raise ValueError(self.expected)
            return str(int(value))
        found = control_character(value)
        if found is not None:
            raise ValueError(f"printable UTF-8 text, without control characters (it has "
                             f"{found})")
        if len(value) > self.max_length:
            raise ValueError(f"at most {self.max_length} characters")
        assert self.form is not None
        return self.form(value)


SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("sip.domain", None, "SIP domain of the PBX (the domain of every phone's AOR)",
            form=_host, max_length=253),
    Setting("sip.realm", None, "digest realm of SIP keys (defaults to sip.domain)",
            form=_host, max_length=253),
    Setting("sip.proxy", None, "outbound proxy for phones on the private network",
            form=_sip_uri),
    Setting("flexisip.proxy", None, "Flexisip edge proxy for publishable phones",
            form=_sip_uri),
    Setting("provisioning.base_url", None, "base of provisioning URLs shown in QR codes",
            form=_url),
    Setting("provisioning.token_ttl_hours", "24", "hours a provisioning token stays usable "
            "before it is redeemed (1–8760)", low=1, high=8_760),
    Setting("portal.base_url", None, "base of the user portal's one-time login links, where "
            "mtctl serve's /portal/ is reached, e.g. https://pbx.example.com/portal",
            form=_url),
    Setting("portal.link_ttl_minutes", "15", "minutes a portal login link stays usable "
            "(1–1440)", low=1, high=1_440),
    Setting("portal.session_hours", "8", "hours a portal session lasts after login (1–720)",
            low=1, high=720),
    Setting("provisioning.device_user", "mtctl", "HTTP Basic user desk phones give to fetch "
            "their file from /d/ (the password: mtctl config set-secret "
            "provisioning.device_password)", form=_basic_user, max_length=64),
    Setting("provisioning.resync_hours", "24", "hours between a desk phone's fetches of its "
            "file (written into the file; each fetch brings a fresh key) (1–8760)",
            low=1, high=8_760),
    Setting("keys.lifetime_days", str(DEFAULT_LIFETIME_DAYS), "lifetime of a secure phone's "
            "key, unless its template says otherwise (1–36500)", low=1, high=MAX_LIFETIME_DAYS),
    Setting("keys.rotate_within_days", str(DEFAULT_ROTATE_WITHIN_DAYS), "keys rotate "
            "defaults to keys expiring within this many days (0 up to a key lifetime - 1)",
            low=0, high=MAX_LIFETIME_DAYS - 1),
    Setting("keys.grace_days", str(DEFAULT_GRACE_DAYS), "days a rotated-out key stays valid, "
            "for devices that have not fetched the new one yet (0: none; up to 3650)",
            low=0, high=3_650),
    Setting("calls.retention_days", "30", "days call records and registration events are "
            "kept; mtctl calls prune removes older ones (1–3650)", low=1, high=3_650),
]}

# Settings that are secrets: set only by `mtctl config set-secret` (never in argv), kept as
# hashes in a table of their own, never read back.
SECRETS = ("provisioning.device_password",)

WINDOW, LIFETIME = "keys.rotate_within_days", "keys.lifetime_days"


def flat_settings(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A config file's [settings] table ({"sip": {"domain": ...}}) by setting name."""
    return {f"{group}.{key}": value for group, values in settings.items()
            for key, value in values.items()}


def nested_settings(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Settings by name ("sip.domain") as a config file's [settings] table."""
    nested: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        group, key = name.split(".", 1)
        nested.setdefault(group, {})[key] = value
    return nested


@dataclass(frozen=True)
class Conflict:
    """Two values that cannot hold together: where, what, and how to fix it."""

    where: str  # a setting name, or "template NAME"
    message: str
    hint: str


def rotation_conflicts(settings: Mapping[str, str | None],
                       template_lifetimes: Mapping[str, int | None]) -> list[Conflict]:
    """A rotation window must be shorter than every key lifetime, or each run of `keys rotate`
    would rotate every key again. settings: stored values (missing or None: the default)."""

    def number(name: str) -> int | None:
        value = settings.get(name)
        try:
            return int(SETTINGS[name].parse(value if value is not None
                                            else SETTINGS[name].default or ""))
        except ValueError:  # out of range: reported as such, not as a conflict
            return None

    window, lifetime = number(WINDOW), number(LIFETIME)
    if window is None:
        return []
    found = []
    if lifetime is not None and window >= lifetime:
        found.append(Conflict(WINDOW, f"the rotation window ({WINDOW} = {window}) is not "
                              f"shorter than the key lifetime ({LIFETIME} = {lifetime}), so "
                              "every run of keys rotate would rotate every key",
                              f"use a window below {lifetime} days, or a longer lifetime"))
    for name, days in sorted(template_lifetimes.items()):
        if isinstance(days, int) and window >= days:
            found.append(Conflict(f"template {name}", f"template {name!r} has a key lifetime "
                                  f"of {days} days, not longer than the rotation window "
                                  f"({WINDOW} = {window}), so every run of keys rotate would "
                                  "rotate its phones' keys",
                                  f"use a key lifetime above {window} days, or a shorter "
                                  "window"))
    return found
