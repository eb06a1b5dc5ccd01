"""Nodes as servers (SPEC §8): a node's SIP address, and which address a phone is given.

Pure: the CLI, the store, apply and every device renderer ask these functions.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mtctl.domain.model import ExtensionSpec, UserSpec
from mtctl.domain.rules import Violation
from mtctl.domain.values import escape
from mtctl.errors import UsageError

MAX_ADDRESS = 261  # a 253-character DNS name, a colon and a port, or [IPv6]:port
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
EXAMPLE = "192.0.2.10:5060"


@dataclass(frozen=True, slots=True)
class SipAddress:
    """Where a node's Kamailio listens: a host (name, IPv4 or [IPv6]) and a UDP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True when the host is this machine (localhost, 127.0.0.0/8, ::1)."""
        if self.host.lower() in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """A node a cluster Kamailio config is written for: its id (written into
    location.server_id), name and SIP address (HOST:PORT, where it listens)."""

    id: int
    name: str
    sip_address: str

    @property
    def listen(self) -> str:
        return f"udp:{self.sip_address}"


def parse_sip_address(text: str) -> SipAddress:
    """HOST:PORT as a node's SIP address, or UsageError (exit 2) saying what is wrong."""
    hint = f"use HOST:PORT, e.g. {EXAMPLE} (IPv6: [2001:db8::1]:5060)"
    if len(text) > MAX_ADDRESS:
        raise UsageError(f"SIP address is longer than {MAX_ADDRESS} characters", hint)
    if not text.isascii() or not text.isprintable():
        raise UsageError(f"SIP address {escape(text)!r} is not ASCII HOST:PORT", hint)
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise UsageError(f"SIP address {text!r} has no port", hint)
    if not (port_text.isdigit() and len(port_text) <= 5 and 0 < int(port_text) < 65536):
        raise UsageError(f"SIP address {text!r}: port {port_text!r} is not 1–65535", hint)
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UsageError(f"SIP address {text!r}: {host} is not an IPv6 address",
                             hint) from None
    elif not _is_host(host):
        raise UsageError(f"SIP address {text!r}: {host!r} is not a host name or IPv4 "
                         "address", hint)
    return SipAddress(host.lower(), int(port_text))


def address_holder(addresses: Mapping[str, str | None], name: str, address: str | None
                   ) -> str | None:
    """The other node that has ADDRESS already: each node runs its own Kamailio there, and the
    others relay to it by that address."""
    if address is None:
        return None
    return next((other for other, held in sorted(addresses.items())
                 if other != name and held == address), None)


SHARED_HINT = "give each node its own HOST:PORT (each runs its own Kamailio); see: mtctl node list"


def _is_host(host: str) -> bool:
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    return len(host) <= 253 and _HOSTNAME.fullmatch(host) is not None


def phone_proxy(*, publishable: bool, edge: str | None, node_address: str | None,
                site_proxy: str | None, domain: str) -> str | None:
    """The proxy URI a provisioned phone registers through (SPEC §5, §8).

    A publishable phone goes through the Flexisip edge (TLS), None while no edge is set;
    any other phone registers at its extension's node, or, on a site whose nodes have no
    address, at the site's `sip.proxy` or the SIP domain.
    """
    if publishable:
        if edge is None:
            return None
        return edge if "transport=" in edge else edge + ";transport=tls"
    if node_address:
        return f"sip:{node_address}"
    return site_proxy or f"sip:{domain}"


def webcall_node_warnings(user: UserSpec, by_number: Mapping[str, ExtensionSpec],
                          addresses: Mapping[str, str | None]) -> list[Violation]:
    """`check` warnings: in a cluster (nodes with SIP addresses), an exclusive user's Web Call
    extension on another node than the login extension never counts as running, because the
    login's node decides from the registrations it holds."""
    login = by_number.get(user.login or "")
    if user.webcall_mode != "exclusive" or login is None:
        return []
    found = []
    for number in user.all_webcall_extensions:
        ext = by_number.get(number)
        if ext is None or ext.node == login.node:
            continue
        if not (addresses.get(ext.node) or addresses.get(login.node)):
            continue  # one proxy serves every node: no matter where each lives
        found.append(Violation(
            "webcall-other-node", f"user {user.username}",
            f"Web Call extension {number} lives on node {ext.node} but the login {login.number} "
            f"on node {login.node}, whose Kamailio never sees {number}'s Web Call registered",
            f"move it: mtctl ext set {number} --node {login.node}"))
    return found
