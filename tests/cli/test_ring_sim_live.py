"""`ring-sim --live`: who is online comes from Kamailio's registrations in the store."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec
from mtctl.domain.presence import live_presence
from mtctl.domain.ringing import RingTarget


def register(url: str, auth_user: str, *, seconds_left: int = 300,
             user_agent: str = "Yealink T54W") -> None:
    """A location row as Kamailio's usrloc writes it (Julian days on SQLite)."""
    engine = create_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    expires = (f"julianday('now', '{seconds_left:+d} seconds')" if sqlite
               else f"LOCALTIMESTAMP + interval '{seconds_left} seconds'")
    modified = ("julianday('2026-01-02 03:04:05')" if sqlite
                else "TIMESTAMP '2026-01-02 03:04:05'")
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO location (ruid, username, contact, expires, last_modified, "
                f"user_agent) VALUES (:ruid, :user, :contact, {expires}, {modified}, :agent)"),
                {"ruid": f"uloc-{auth_user}-{seconds_left}", "user": auth_user,
                 "contact": f"sip:{auth_user}@192.0.2.1:5060", "agent": user_agent})
    finally:
        engine.dispose()


def live(mtctl, number: str = "40710") -> dict:
    r = mtctl("ring-sim", number, "--live", "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_nobody_registered_is_silent(seeded):
    plan = live(seeded)
    assert plan["outcome"] == "silent"
    assert plan["webcall_running"] is False
    assert {(s["position"], s["reason"]) for s in plan["skipped"]} == {
        (0, "not-registered"), (1, "webcall-not-running")}


def test_registered_phones_ring_and_a_registered_web_call_is_running(seeded):
    register(seeded.url, "40710-0")
    plan = live(seeded)
    assert [[p["position"] for p in s["phones"]] for s in plan["stages"]] == [[0]]
    assert plan["display_name"] == "Desk 40710"
    register(seeded.url, "40710-1", user_agent="VIVAit Call Web/2.0")
    plan = live(seeded)
    assert plan["webcall_running"] is True
    assert plan["display_name"] == "Ana García"
    assert [[p["position"] for p in s["phones"]] for s in plan["stages"]] == [[0, 1]]


def test_expired_registrations_do_not_count(seeded):
    register(seeded.url, "40710-0", seconds_left=-60)
    assert live(seeded)["outcome"] == "silent"


def test_human_output_shows_last_registration_and_user_agent(seeded):
    register(seeded.url, "40710-0")
    r = seeded("ring-sim", "40710", "--live")
    assert r.exit_code == 0, r.output
    words = " ".join(r.stdout.split())  # lines wrap at 80 columns
    assert "Registrations (live" in words
    assert "(40710:0, Madrid): registered 2026-01-02 03:04:05 UTC, Yealink T54W" in words
    assert "VIVAit Call Web (40710:1): not registered" in words


def test_live_refuses_presence_flags(seeded):
    r = seeded("ring-sim", "40710", "--live", "--offline", "40710:0")
    assert r.exit_code == 2, r.output
    assert "--live" in r.stderr and "Traceback" not in r.output


def test_live_presence_in_exclusive_mode_picks_the_first_registered_web_call():
    def web(number: str) -> ExtensionSpec:
        return ExtensionSpec(number, "n1", phones=(PhoneSpec(number, 0, 1, "W", "webcall"),))

    login = ExtensionSpec("100", "n1", phones=(PhoneSpec("100", 0, 1, "Desk", "hardphone"),))
    user = UserSpec("bea", "Bea", "100", webcall_mode="exclusive",
                    webcall_extensions=("101",), group_extensions=("102", "103"))
    target = RingTarget("100", login, user, {n: web(n) for n in ("101", "102", "103")})
    presence = live_presence(target, {("103", 0), ("102", 0), ("100", 0)})
    assert (presence.webcall_running, presence.webcall_extension) == (True, "102")
    assert presence.offline == frozenset({("101", 0)})
    idle = live_presence(target, {("100", 0)})
    assert (idle.webcall_running, idle.webcall_extension) == (False, None)
