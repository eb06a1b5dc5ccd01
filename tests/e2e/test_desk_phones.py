"""Desk phones provisioned by MAC, end to end: a simulated Cisco MPP and a simulated Yealink
phone (HTTP clients with their vendors' User-Agents) fetch their files from `mtctl serve`, a
SIPp phone registers with the password read from each file through the exported Kamailio and
answers a call; a second fetch brings a new key, the old one works in its grace period only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mtctl.store.tables import phone
from tests.domain.test_devices import yealink_pairs
from tests.dump import plant
from tests.e2e import harness
from tests.e2e.conftest import Pbx
from tests.test_serve import Server
from tests.test_serve_devices import CISCO_UA, DEVICE_PW, YEALINK_UA, headers


@pytest.fixture
def desks(pbx: Pbx) -> Iterator[Server]:
    """40710 a secure Cisco 8841, 40711 a secure Yealink T54W, 40712 a disabled Yealink; and
    mtctl serve over the same store."""
    mtctl = pbx.mtctl
    mtctl.ok("config", "set-secret", "provisioning.device_password", "--password-stdin",
             input=DEVICE_PW + "\n")
    mtctl.ok("config", "set", "sip.proxy", f"sip:127.0.0.1:{pbx.port};transport=udp")
    mtctl.ok("node", "add", "n1")
    for number, model, mac, extra in (
            ("40710", "Cisco 8841", "00:56:2b:04:36:15", ()),
            ("40711", "Yealink T54W", "80:5e:c0:12:34:56", ()),
            ("40712", "Yealink T54W", "80:5e:c0:00:00:12", ("--disabled",))):
        mtctl.ok("ext", "add", number, "--node", "n1", "--name", f"Desk {number}")
        mtctl.ok("phone", "add", number, "--position", "0", "--model", model, "--secure",
                 "--mac", mac, *extra)
    server = Server(mtctl.url)
    yield server
    server.stop()


def cisco_fetch(server: Server) -> tuple[str, ET.Element]:
    status, body = server.get("/d/00562B043615.xml", headers(CISCO_UA))
    assert status == 200, body
    root = ET.fromstring(body)
    password = root.findtext("Password_1_")
    assert password
    return password, root


def yealink_fetch(server: Server) -> tuple[str, dict[str, str]]:
    status, body = server.get("/d/805ec0123456.cfg", headers(YEALINK_UA))
    assert status == 200, body
    pairs = yealink_pairs(body)
    return pairs["account.1.password"], pairs


def register(pbx: Pbx, user: str, password: str, name: str, port: int = 9) -> str:
    return harness.register(pbx.sipp, pbx.port, pbx.domain, [(user, password, port)],
                            name)[user]


def test_cisco_and_yealink_phones_register_with_their_fetched_key_and_answer(pbx, desks):
    cisco_key, cisco = cisco_fetch(desks)
    yealink_key, yealink = yealink_fetch(desks)
    assert cisco.findtext("Outbound_Proxy_1_") == f"127.0.0.1:{pbx.port}"
    assert (yealink["account.1.outbound_proxy.1.address"],
            yealink["account.1.outbound_proxy.1.port"]) == ("127.0.0.1", str(pbx.port))
    for number, user, key in (("40710", cisco.findtext("Auth_ID_1_"), cisco_key),
                              ("40711", yealink["account.1.auth_name"], yealink_key)):
        assert user == f"{number}-0"
        answering = pbx.sipp.start(f"phone-{number}", "phone_answer.xml", "-m", "1", life=40)
        assert register(pbx, user, key, f"register-{number}",
                        pbx.sipp.port_of(answering)) == "registered"
        call = harness.call(pbx.sipp, pbx.port, pbx.domain, number, name=f"call-{number}")
        assert call.final == 200, (call.responses, call.output[-1500:])
        assert [u for _, u in harness.invites(answering)] == [user]


def test_a_second_fetch_brings_a_new_key_and_the_old_one_lasts_its_grace_period(pbx, desks):
    old, _ = cisco_fetch(desks)
    assert register(pbx, "40710-0", old, "first") == "registered"
    new, _ = cisco_fetch(desks)
    assert new != old
    assert register(pbx, "40710-0", new, "new") == "registered"
    assert register(pbx, "40710-0", old, "old-in-grace") == "registered"
    plant(pbx.mtctl.url, update(phone).values(
        prev_key_valid_until=datetime.now(UTC) - timedelta(minutes=1)))
    assert register(pbx, "40710-0", old, "old-after-grace") == "refused"
    assert register(pbx, "40710-0", new, "new-again") == "registered"

    y_old, _ = yealink_fetch(desks)
    y_new, _ = yealink_fetch(desks)
    assert y_new != y_old
    assert register(pbx, "40711-0", y_old, "yealink-old-in-grace") == "registered"
    assert register(pbx, "40711-0", y_new, "yealink-new") == "registered"


def test_disabled_phones_wrong_user_agents_credentials_and_macs_all_get_the_same_404(pbx,
                                                                                     desks):
    cases = {
        "disabled phone": ("/d/805ec0000012.cfg",
                           headers(YEALINK_UA.replace("12:34:56", "00:00:12"))),
        "wrong MAC in UA": ("/d/00562B043615.xml", headers(CISCO_UA.replace("615)", "616)"))),
        "wrong credentials": ("/d/00562B043615.xml",
                              headers(CISCO_UA, password="not-the-password")),
        "unknown MAC": ("/d/805ec0999999.cfg",
                        headers(YEALINK_UA.replace("12:34:56", "99:99:99"))),
    }
    answers = {name: desks.get(path, hdrs) for name, (path, hdrs) in cases.items()}
    assert set(answers.values()) == {(404, "not found\n")}, answers
    # none of them made a key: the phones that never fetched cannot register
    assert register(pbx, "40712-0", "whatever-it-might-be", "disabled") == "refused"
