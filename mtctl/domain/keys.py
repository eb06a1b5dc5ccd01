"""SIP keys (SPEC §4): random passwords kept only as digests."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

PASSWORD_BYTES = 24  # 192 bits from the CSPRNG, above the 128 SPEC asks for
PASSWORD_CHARS = PASSWORD_BYTES * 4 // 3  # its URL-safe Base64, without padding
DEFAULT_LIFETIME_DAYS = 90
MAX_LIFETIME_DAYS = 36_500  # a hundred years: far beyond any sensible key, well inside dates
DEFAULT_ROTATE_WITHIN_DAYS = 7
DEFAULT_GRACE_DAYS = 7


@dataclass(frozen=True, slots=True)
class KeyDigests:
    """What the store keeps of a SIP password: never the password itself."""

    ha1: str
    ha1_sha256: str
    expires_at: datetime | None


def sip_auth_user(number: str, position: int, taken: Callable[[str], bool]) -> str:
    """A phone's SIP auth user: `NUMBER-POSITION`, with a suffix when that one is taken.

    It stays with the phone for its whole life, across moves and key rotations.
    """
    base = candidate = f"{number}-{position}"
    suffix = 1
    while taken(candidate):
        suffix += 1
        candidate = f"{base}-{suffix}"
    return candidate


def new_password() -> str:
    """A fresh random SIP password (192 bits)."""
    return new_passwords(1)[0]


def new_passwords(count: int) -> list[str]:
    """COUNT fresh random SIP passwords (192 bits each) from one read of the CSPRNG.

    Every SIP password mtctl makes comes from here.
    """
    # PASSWORD_BYTES is a multiple of 3, so the pool's Base64 is the passwords' Base64 laid
    # end to end: one encoding, then slices.
    text = base64.urlsafe_b64encode(secrets.token_bytes(PASSWORD_BYTES * count)).decode()
    return [text[i:i + PASSWORD_CHARS] for i in range(0, len(text), PASSWORD_CHARS)]


def lifetime_error(lifetime: int) -> str | None:
    """Why a phone's key lifetime (days) cannot be used: its template was stored before
    lifetimes had a range."""
    if 1 <= lifetime <= MAX_LIFETIME_DAYS:
        return None
    return f"its template's key lifetime ({lifetime} days) is out of range; see: mtctl check"


def digests(auth_user: str, realm: str, password: str) -> tuple[str, str]:
    """HA1 = MD5(user:realm:password) and the SHA-256 equivalent (RFC 7616/8760), over the
    UTF-8 bytes (what Apache's htdigest, passlib and Kamailio compute)."""
    secret = f"{auth_user}:{realm}:{password}".encode()
    return hashlib.md5(secret).hexdigest(), hashlib.sha256(secret).hexdigest()  # noqa: S324


def digest_columns(auth_users: Sequence[str], realm: str,
                   passwords: Sequence[str]) -> tuple[bytes, bytes]:
    """`digests` of many keys at once, as two ASCII columns laid end to end: the i-th key's
    HA1 is bytes 32*i to 32*i+32 of the first, its SHA-256 HA1 bytes 64*i to 64*i+64 of the
    second (lower-case hex, as `digests` gives)."""
    middle = f":{realm}:"
    secrets_ = [f"{user}{middle}{password}".encode()
                for user, password in zip(auth_users, passwords, strict=True)]
    md5, sha256 = hashlib.md5, hashlib.sha256
    return (binascii.hexlify(b"".join([md5(s).digest() for s in secrets_])),  # noqa: S324
            binascii.hexlify(b"".join([sha256(s).digest() for s in secrets_])))


def system_key(auth_user: str, realm: str, *, now: datetime, lifetime_days: int) -> KeyDigests:
    """Generate a key nobody sees: the password is digested and dropped here."""
    ha1, ha1_sha256 = digests(auth_user, realm, new_password())
    return KeyDigests(ha1, ha1_sha256, now + timedelta(days=lifetime_days))


def admin_key(auth_user: str, realm: str, password: str) -> KeyDigests:
    """Digests of a password an admin chose for a non-secure phone; it does not expire."""
    ha1, ha1_sha256 = digests(auth_user, realm, password)
    return KeyDigests(ha1, ha1_sha256, None)
