"""Desk phone files (Cisco MPP, Yealink), MACs and User-Agents: pure functions, golden files."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mtctl.domain.devices import (
    CISCO_MPP,
    YEALINK,
    DeviceAccount,
    mac_in_user_agent,
    normalise_mac,
    proxy_address,
    render_cisco_mpp,
    render_yealink,
    requested_file,
)

GOLDEN = Path(__file__).parent / "golden"
ACCOUNT = DeviceAccount(auth_user="40710-0", domain="pbx.example.com", proxy_host="10.0.0.5",
                        proxy_port=5070, transport="udp", display_name="Ana García <desk> & co",
                        resync_hours=24, password="s3cr3t-Key_from-the-CSPRNG-xyz")
# Documented element names of the Cisco MPP flat profile this file sets.
CISCO_ELEMENTS = ["Line_Enable_1_", "Display_Name_1_", "User_ID_1_", "Auth_ID_1_",
                  "Use_Auth_ID_1_", "Password_1_", "Proxy_1_", "Outbound_Proxy_1_",
                  "Use_Outbound_Proxy_1_", "SIP_Transport_1_", "Register_1_",
                  "Register_Expires_1_", "Resync_On_Reset", "Resync_Periodic"]


def yealink_pairs(text: str) -> dict[str, str]:
    """A Yealink cfg as its `key = value` lines (the version header first, nothing else)."""
    lines = text.splitlines()
    assert lines[0] == "#!version:1.0.0.1"
    pairs = {}
    for line in lines[1:]:
        found = re.fullmatch(r"([a-z0-9_.]+) = (.*)", line)
        assert found, line
        assert found.group(1) not in pairs
        pairs[found.group(1)] = found.group(2)
    return pairs


@pytest.mark.parametrize(("render", "golden"), [(render_cisco_mpp, "cisco-mpp.xml"),
                                                (render_yealink, "yealink.cfg")])
def test_rendered_files_match_their_golden_files(render, golden):
    assert render(ACCOUNT) == (GOLDEN / golden).read_text(encoding="utf-8")


def test_the_cisco_file_is_well_formed_xml_with_the_documented_elements():
    root = ET.fromstring(render_cisco_mpp(ACCOUNT).encode())
    assert root.tag == "flat-profile"
    assert [child.tag for child in root] == CISCO_ELEMENTS
    values = {child.tag: child.text for child in root}
    assert values["Display_Name_1_"] == "Ana García <desk> & co"
    assert values["Password_1_"] == ACCOUNT.password
    assert values["User_ID_1_"] == values["Auth_ID_1_"] == "40710-0"
    assert values["Outbound_Proxy_1_"] == "10.0.0.5:5070"
    assert values["Resync_Periodic"] == str(24 * 3600)


def test_the_yealink_file_parses_as_key_value_lines():
    pairs = yealink_pairs(render_yealink(ACCOUNT))
    assert pairs["account.1.auth_name"] == pairs["account.1.user_name"] == "40710-0"
    assert pairs["account.1.password"] == ACCOUNT.password
    assert pairs["account.1.outbound_proxy.1.address"] == "10.0.0.5"
    assert pairs["account.1.outbound_proxy.1.port"] == "5070"
    for prefix in ("", "static."):  # firmware before V80, and V80 on (a T54W runs V86)
        assert pairs[f"{prefix}auto_provision.power_on"] == "1"
        assert pairs[f"{prefix}auto_provision.repeat.enable"] == "1"
        assert pairs[f"{prefix}auto_provision.repeat.minutes"] == str(24 * 60)


def test_a_yealink_resyncs_at_most_every_thirty_days_the_longest_it_accepts():
    account = DeviceAccount(**{**{f: getattr(ACCOUNT, f) for f in ACCOUNT.__slots__},
                               "resync_hours": 8760})
    pairs = yealink_pairs(render_yealink(account))
    assert pairs["static.auto_provision.repeat.minutes"] == "43200"
    assert pairs["auto_provision.repeat.minutes"] == "43200"


@pytest.mark.parametrize(("transport", "port", "kind"), [("udp", "5060", "0"), ("tcp", "5060", "1"),
                                                     ("tls", "5061", "2")])
def test_a_yealink_reaches_the_sip_domain_on_its_transports_port(transport, port, kind):
    """As a Cisco's Proxy_1_ (the domain, no port) does: 5061 over TLS, else 5060."""
    account = DeviceAccount(**{**{f: getattr(ACCOUNT, f) for f in ACCOUNT.__slots__},
                               "transport": transport})
    pairs = yealink_pairs(render_yealink(account))
    assert pairs["account.1.sip_server.1.transport_type"] == kind
    assert pairs["account.1.sip_server.1.port"] == port


def test_a_file_without_a_password_carries_everything_else():
    account = DeviceAccount(**{**{f: getattr(ACCOUNT, f) for f in ACCOUNT.__slots__},
                               "password": None})
    assert "Password_1_" not in render_cisco_mpp(account)
    assert "account.1.password" not in yealink_pairs(render_yealink(account))
    assert "account.1.auth_name" in yealink_pairs(render_yealink(account))


@pytest.mark.parametrize("name", ["Evil\nPassword_1_ = x", "Evil\r\naccount.1.password = x",
                                  "Evil\u2028x", "</Display_Name_1_><Password_1_>x"])
def test_no_value_can_inject_a_line_or_an_element(name):
    account = DeviceAccount(**{**{f: getattr(ACCOUNT, f) for f in ACCOUNT.__slots__},
                               "display_name": name, "password": None})
    pairs = yealink_pairs(render_yealink(account))
    assert "account.1.password" not in pairs and "Password_1_" not in pairs
    root = ET.fromstring(render_cisco_mpp(account).encode())
    assert [child.tag for child in root] == [t for t in CISCO_ELEMENTS if t != "Password_1_"]


@pytest.mark.parametrize("text", ["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e",
                                  "001A2B3C4D5E", " 00:1a:2b:3c:4d:5e ", "00 1a 2b 3c 4d 5e"])
def test_usual_mac_spellings_normalise_to_twelve_lowercase_hex_digits(text):
    assert normalise_mac(text) == "001a2b3c4d5e"


@pytest.mark.parametrize("text", ["", "00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5g", "00:1a-2b:3c:4d:5e",
                                  "001a2b3c4d5e0", "٠٠1a2b3c4d5e", "00:1a:2b:3c:4d:5e:6f"])
def test_anything_else_is_not_a_mac(text):
    with pytest.raises(ValueError, match="MAC address"):
        normalise_mac(text)


@pytest.mark.parametrize(("ua", "profile", "mac"), [
    ("Cisco-CP8841-3PCC/11.3.7_0001 (00562b043615)", CISCO_MPP, "00562b043615"),
    ("Cisco-CP8841-3PCC/11.3.7 (00562B043615)", CISCO_MPP, "00562b043615"),
    ("Yealink SIP-T54W 96.86.0.100 80:5e:c0:12:34:56", YEALINK, "805ec0123456"),
    ("Yealink SIP-T54W 96.86.0.100 80:5E:C0:12:34:56", YEALINK, "805ec0123456"),
    ("Yealink SIP-T54W 96.86.0.100 80:5e:c0:12:34:56", CISCO_MPP, None),
    ("Cisco-CP8841-3PCC/11.3.7 (00562b043615)", YEALINK, None),
    ("curl/8.0 (00562b043615)", CISCO_MPP, None),
    ("Yealink SIP-T54W 96.86.0.100 80:5e:c0:12:34:56 extra", YEALINK, None),
    ("", YEALINK, None),
])
def test_the_mac_is_read_where_each_vendor_puts_it(ua, profile, mac):
    assert mac_in_user_agent(profile, ua) == mac


@pytest.mark.parametrize(("name", "found"), [
    ("00562B043615.xml", (CISCO_MPP, "00562b043615")),
    ("805ec0123456.cfg", (YEALINK, "805ec0123456")),
    ("805ec012345.cfg", None), ("805ec0123456.txt", None), ("../805ec0123456.cfg", None),
    ("00562b043615.xml\n", None)])
def test_requested_file_names(name, found):
    assert requested_file(name) == found


@pytest.mark.parametrize(("uri", "address"), [
    (None, ("pbx.example.com", 5060, "udp")),
    ("sip:10.0.0.5:5070;transport=udp", ("10.0.0.5", 5070, "udp")),
    ("sip:edge.example.com;transport=tls", ("edge.example.com", 5061, "tls")),
    ("sips:edge.example.com", ("edge.example.com", 5061, "tls")),
    ("sip:[2001:db8::1]:5080;transport=tcp", ("2001:db8::1", 5080, "tcp")),
])
def test_proxy_address(uri, address):
    assert proxy_address(uri, "pbx.example.com") == address
