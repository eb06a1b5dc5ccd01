"""Desk phones provisioned by MAC (SPEC §9): profiles, MACs, User-Agents and the files
(Cisco multiplatform flat profile, Yealink cfg), as plain values and pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from mtctl.domain.values import CONTROL

LINPHONE, CISCO_MPP, YEALINK = "linphone", "cisco-mpp", "yealink"
PROFILES = (LINPHONE, CISCO_MPP, YEALINK)
# Profiles whose phones fetch `/d/<file>` by MAC and receive their key in clear there.
DEVICE_PROFILES = (CISCO_MPP, YEALINK)
FILE_SUFFIX = {CISCO_MPP: ".xml", YEALINK: ".cfg"}
CONTENT_TYPE = {CISCO_MPP: "application/xml", YEALINK: "text/plain; charset=utf-8"}
REG_EXPIRES = 3600

_HEX12 = re.compile(r"^[0-9a-f]{12}$")
_SEPARATED = re.compile(r"^[0-9a-f]{2}([:\-. ]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$")
_DOTTED = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")
# Cisco MPP: `Cisco-CP8841-3PCC/11.3.7 (00562b043615)`; Yealink: `Yealink SIP-T54W
# 96.86.0.100 80:5e:c0:12:34:56`. The MAC is where each vendor puts it, nowhere else.
_CISCO_UA = re.compile(r"Cisco-\S+ \(([0-9A-Fa-f]{12})\)")
_YEALINK_UA = re.compile(r"Yealink [^\r\n]* ((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})")
_FILE = re.compile(r"([0-9A-Fa-f]{12})\.(xml|cfg)")


def never_provisioned(*, secure: bool, profile: str | None, key_delivered: bool) -> bool:
    """A secure desk phone provisioned by MAC that never fetched its file: its key is made only
    in the response to a fetch, so it has no usable key (SPEC §9)."""
    return secure and profile in DEVICE_PROFILES and not key_delivered


def normalise_mac(text: str) -> str:
    """A MAC in any usual spelling (00:1A:2B:3C:4D:5E, 00-1a-..., 001a.2b3c.4d5e, 001a2b3c4d5e)
    as 12 lowercase hex digits; ValueError otherwise."""
    value = text.strip(" ").lower()
    if not (value.isascii() and (_SEPARATED.fullmatch(value) or _DOTTED.fullmatch(value))):
        raise ValueError("a MAC address such as 00:1a:2b:3c:4d:5e")
    digits = "".join(c for c in value if c in "0123456789abcdef")
    assert _HEX12.match(digits)
    return digits


def shown_mac(mac: str) -> str:
    """12 hex digits as people write them: 00:1a:2b:3c:4d:5e."""
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))


def requested_file(name: str) -> tuple[str, str] | None:
    """(profile, mac) of a requested file name (`001A2B3C4D5E.xml`, `001a2b3c4d5e.cfg`)."""
    found = _FILE.fullmatch(name)
    if found is None:
        return None
    return (CISCO_MPP if found.group(2) == "xml" else YEALINK), found.group(1).lower()


def mac_in_user_agent(profile: str, user_agent: str) -> str | None:
    """The MAC a phone of this profile states in its User-Agent, or None."""
    pattern = {CISCO_MPP: _CISCO_UA, YEALINK: _YEALINK_UA}.get(profile)
    found = pattern.fullmatch(user_agent) if pattern else None
    return found.group(1).replace(":", "").lower() if found else None


@dataclass(frozen=True, slots=True)
class DeviceAccount:
    """What a desk phone's file carries. password None: the file leaves the password out."""

    auth_user: str
    domain: str
    proxy_host: str
    proxy_port: int
    transport: str  # udp, tcp, tls
    display_name: str
    resync_hours: int
    password: str | None = None


def proxy_address(uri: str | None, domain: str) -> tuple[str, int, str]:
    """(host, port, transport) of a SIP URI such as `sip:10.0.0.5:5060;transport=tcp`
    (None: the domain on 5060 over UDP)."""
    if not uri:
        return domain, 5060, "udp"
    body = uri.strip("<>").split(":", 1)[1] if ":" in uri else uri
    host_port, *params = body.split(";")
    transport = next((p.split("=", 1)[1].lower() for p in params
                      if p.lower().startswith("transport=")), "udp")
    secure = uri.strip("<").lower().startswith("sips:")
    default_port = 5061 if secure or transport == "tls" else 5060
    if host_port.startswith("["):  # [IPv6]:port
        host, _, rest = host_port[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif host_port.count(":") == 1:
        host, port = host_port.split(":")
    else:
        host, port = host_port, ""
    return host, int(port) if port.isdigit() else default_port, \
        "tls" if secure and transport == "udp" else transport


def _clean(value: str) -> str:
    """Control characters (a newline would start a new setting) become spaces."""
    return CONTROL.sub(" ", value)


def render_cisco_mpp(account: DeviceAccount) -> str:
    """The account as a Cisco multiplatform (MPP) flat profile, `<MAC>.xml`."""
    proxy = f"{account.proxy_host}:{account.proxy_port}"
    entries = [
        ("Line_Enable_1_", "Yes"),
        ("Display_Name_1_", account.display_name),
        ("User_ID_1_", account.auth_user),
        ("Auth_ID_1_", account.auth_user),
        ("Use_Auth_ID_1_", "Yes"),
        *([("Password_1_", account.password)] if account.password is not None else []),
        ("Proxy_1_", account.domain),
        ("Outbound_Proxy_1_", proxy),
        ("Use_Outbound_Proxy_1_", "Yes"),
        ("SIP_Transport_1_", account.transport.upper()),
        ("Register_1_", "Yes"),
        ("Register_Expires_1_", str(REG_EXPIRES)),
        ("Resync_On_Reset", "Yes"),
        ("Resync_Periodic", str(account.resync_hours * 3600)),
    ]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<flat-profile>"]
    lines += [f"  <{name}>{escape(_clean(value))}</{name}>" for name, value in entries]
    lines.append("</flat-profile>")
    return "\n".join(lines) + "\n"


YEALINK_TRANSPORT = {"udp": "0", "tcp": "1", "tls": "2"}
YEALINK_MAX_REPEAT = 43200  # minutes (30 days): a longer repeat is refused, and none is made


def render_yealink(account: DeviceAccount) -> str:
    """The account as a Yealink `<mac>.cfg`: `key = value` lines under the version header."""
    minutes = str(min(account.resync_hours * 60, YEALINK_MAX_REPEAT))
    entries = [
        ("account.1.enable", "1"),
        ("account.1.label", account.display_name),
        ("account.1.display_name", account.display_name),
        ("account.1.auth_name", account.auth_user),
        ("account.1.user_name", account.auth_user),
        *([("account.1.password", account.password)] if account.password is not None else []),
        ("account.1.sip_server.1.address", account.domain),
        ("account.1.sip_server.1.port", "5061" if account.transport == "tls" else "5060"),
        ("account.1.sip_server.1.expires", str(REG_EXPIRES)),
        ("account.1.sip_server.1.transport_type", YEALINK_TRANSPORT.get(account.transport, "0")),
        ("account.1.outbound_proxy_enable", "1"),
        ("account.1.outbound_proxy.1.address", account.proxy_host),
        ("account.1.outbound_proxy.1.port", str(account.proxy_port)),
        # Firmware before V80 reads these names, V80 on (a T54W runs V86) the static.* ones.
        *((f"{prefix}auto_provision.{name}", value) for prefix in ("", "static.")
          for name, value in (("power_on", "1"), ("repeat.enable", "1"),
                              ("repeat.minutes", minutes))),
    ]
    lines = ["#!version:1.0.0.1"]
    lines += [f"{name} = {_clean(value).strip()}" for name, value in entries]
    return "\n".join(lines) + "\n"


RENDERERS = {CISCO_MPP: render_cisco_mpp, YEALINK: render_yealink}
