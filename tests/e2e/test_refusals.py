"""Kamailio refuses what mtctl's store refuses, and follows the store's changes without a reload."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from mtctl.store.tables import phone
from tests.dump import plant
from tests.e2e import harness
from tests.e2e.conftest import Pbx, admin_password


def add_phone(pbx: Pbx, number: str, position: int, *extra: str) -> str:
    """A non-secure phone with an admin password; returns the password."""
    pbx.mtctl.ok("phone", "add", number, "--position", str(position), "--model",
                 "Generic SIP hardphone", *extra)
    password = admin_password()
    pbx.mtctl.ok("phone", "set-password", number, str(position), "--password-stdin",
                 input=password + "\n")
    return password


def auth_user(pbx: Pbx, number: str, position: int) -> str:
    phone = json.loads(pbx.mtctl.ok("phone", "show", number, str(position), "--json").stdout)
    return phone["sip_auth_user"]


def test_a_wrong_password_or_an_unknown_user_is_refused(pbx):
    pbx.mtctl.ok("node", "add", "n1")
    pbx.mtctl.ok("ext", "add", "100", "--node", "n1")
    add_phone(pbx, "100", 0)
    outcome = harness.register(pbx.sipp, pbx.port, pbx.domain,
                               [("100-0", "not-the-password", 9), ("nobody-7", "whatever", 9)])
    assert outcome == {"100-0": "refused", "nobody-7": "refused"}
    assert json.loads(pbx.mtctl.ok("ring-sim", "100", "--live", "--json").stdout)["outcome"] \
        == "silent"


def test_a_disabled_phone_never_rings_until_enabled_with_mtctl(pbx):
    pbx.mtctl.ok("node", "add", "n1")
    pbx.mtctl.ok("ext", "add", "200", "--node", "n1", "--ring-timeout", "1")
    passwords = {0: add_phone(pbx, "200", 0), 1: add_phone(pbx, "200", 1, "--disabled")}
    phones = {pos: pbx.sipp.start(f"phone-{pos}", "phone_busy.xml", "-m", "2", life=30)
              for pos in passwords}
    outcome = harness.register(pbx.sipp, pbx.port, pbx.domain, [
        (auth_user(pbx, "200", pos), passwords[pos], pbx.sipp.port_of(phones[pos]))
        for pos in passwords])
    assert set(outcome.values()) == {"registered"}

    first = harness.call(pbx.sipp, pbx.port, pbx.domain, "200", name="call-1")
    assert first.final == 486, first.responses
    assert [u for _, u in harness.invites(phones[1])] == []
    assert len(harness.invites(phones[0])) == 1

    pbx.mtctl.ok("phone", "enable", "200", "1")  # takes effect on the next call, no reload
    second = harness.call(pbx.sipp, pbx.port, pbx.domain, "200", name="call-2")
    assert second.final == 486, second.responses
    assert [u for _, u in harness.invites(phones[1])] == ["200-1"]


def test_a_phone_of_a_removed_extension_can_no_longer_register(pbx):
    pbx.mtctl.ok("node", "add", "n1")
    pbx.mtctl.ok("ext", "add", "300", "--node", "n1")
    password = add_phone(pbx, "300", 0)
    phone = [("300-0", password, 9)]
    assert harness.register(pbx.sipp, pbx.port, pbx.domain, phone, "before") \
        == {"300-0": "registered"}
    pbx.mtctl.ok("ext", "rm", "300")
    assert harness.register(pbx.sipp, pbx.port, pbx.domain, phone, "after") \
        == {"300-0": "refused"}


def test_the_previous_key_works_during_its_grace_period_only(pbx, captured_passwords):
    pbx.mtctl.ok("node", "add", "n1")
    pbx.mtctl.ok("ext", "add", "400", "--node", "n1")
    pbx.mtctl.ok("phone", "add", "400", "--position", "0", "--model",
                 "VIVAit Call Business Android", "--secure")
    old = captured_passwords[-1]
    user = auth_user(pbx, "400", 0)
    plant(pbx.mtctl.url, update(phone).values(  # due: it has expired
        key_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    pbx.mtctl.ok("keys", "rotate")
    new = captured_passwords[-1]
    assert new != old

    def register(password: str, name: str) -> str:
        return harness.register(pbx.sipp, pbx.port, pbx.domain, [(user, password, 9)],
                                name)[user]

    assert register(new, "new") == "registered"
    assert register(old, "old-in-grace") == "registered"
    plant(pbx.mtctl.url, update(phone).values(
        prev_key_valid_until=datetime.now(UTC) - timedelta(minutes=1)))
    assert register(old, "old-after-grace") == "refused"
    assert register(new, "new-again") == "registered"
