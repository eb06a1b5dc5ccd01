"""Provisioning (SPEC §5): tokens and the Linphone remote-provisioning XML, as plain values."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

TOKEN_BYTES = 32  # 256 bits
LPCONFIG_NS = "http://www.linphone.org/xsds/lpconfig.xsd"
REG_EXPIRES = 3600


def new_token() -> str:
    """A fresh provisioning token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the store keeps of a token; the token itself is high-entropy, so SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    """Cheap shape check before any lookup: 43 URL-safe base64 characters."""
    return len(token) == 43 and token.replace("-", "a").replace("_", "a").isalnum()


def provisioning_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/{token}"


@dataclass(frozen=True, slots=True)
class Account:
    """What a provisioned app needs to register: never a clear password."""

    auth_user: str
    ha1: str
    realm: str
    domain: str
    proxy: str  # a SIP URI, e.g. <sip:edge.example.com;transport=tls>
    display_name: str | None = None


def linphone_xml(account: Account) -> str:
    """The account as Linphone remote-provisioning XML; every entry overwrites what the app has."""
    identity = f"sip:{account.auth_user}@{account.domain}"
    if account.display_name:
        quoted = account.display_name.replace("\\", "\\\\").replace('"', '\\"')
        identity = f'"{quoted}" <{identity}>'
    proxy = account.proxy if account.proxy.startswith("<") else f"<{account.proxy}>"
    sections = {
        "proxy_0": [("reg_proxy", proxy), ("reg_identity", identity),
                    ("reg_expires", str(REG_EXPIRES)), ("reg_sendregister", "1")],
        "auth_info_0": [("username", account.auth_user), ("ha1", account.ha1),
                        ("realm", account.realm), ("domain", account.domain),
                        ("algorithm", "MD5")],
    }
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<config xmlns="{LPCONFIG_NS}">']
    for name, entries in sections.items():
        lines.append(f'  <section name={quoteattr(name)} overwrite="true">')
        lines += [f'    <entry name={quoteattr(key)} overwrite="true">{escape(value)}</entry>'
                  for key, value in entries]
        lines.append("  </section>")
    lines.append("</config>")
    return "\n".join(lines) + "\n"
