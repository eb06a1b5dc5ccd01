"""`ring-sim --live`: who is online comes from Kamailio's registrations in the store."""

from __future__ import annotations

import json
import time

from sqlalchemy import create_engine, text

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec
from mtctl.domain.presence import live_presence
from mtctl.domain.ringing import RingTarget

MODIFIED = 1767323045  # 2026-01-02 03:04:05 UTC


def register(url: str, auth_user: str, *, seconds_left: int = 300,
             user_agent: str = "Yealink T54W") -> None:
    """A location row as Kamailio's usrloc writes it with expires_type = 1 (epoch seconds)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO location (ruid, username, contact, expires, last_modified, "
                "user_agent) VALUES (:ruid, :user, :contact, :expires, :modified, :agent)"),
                {"ruid": f"uloc-{auth_user}-{seconds_left}", "user": auth_user,
                 "contact": f"sip:{auth_user}@192.0.2.1:5060", "agent": user_agent,
                 "expires": int(time.time()) + seconds_left, "modified": MODIFIED})
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
    r = seeded("ring-sim", "40710", "--live", "--format", "table")
    assert r.exit_code == 0, r.output
    words = " ".join(r.stdout.split())  # lines wrap at 80 columns
    assert "Registrations (live" in words
    assert "(40710:0, Madrid): registered 2026-01-02 03:04:05 UTC, Yealink T54W" in words
    assert "VIVAit Call Web (40710:1): not registered" in words


def test_a_multiterminal_user_is_not_sent_to_start_a_session(seeded):
    """In multiterminal mode the Web Call phone's registration alone counts (SPEC §3): the
    table must not suggest `webcall start` as the way to make it ring."""
    register(seeded.url, "40710-1")
    words = " ".join(seeded.ok("ring-sim", "40710", "--live", "--format", "table")
                     .stdout.split())
    assert "Web Call running" in words
    assert "Web Call session of ana: none (not needed in multiterminal mode: Web Call runs " \
        "while its phone is registered)" in words
    assert "webcall start" not in words


def test_live_refuses_presence_flags(seeded):
    r = seeded("ring-sim", "40710", "--live", "--offline", "40710:0")
    assert r.exit_code == 2, r.output
    assert "--live" in r.stderr and "Traceback" not in r.output


def _exclusive_target() -> RingTarget:
    def web(number: str) -> ExtensionSpec:
        return ExtensionSpec(number, "n1", phones=(PhoneSpec(number, 0, 1, "W", "webcall"),))

    login = ExtensionSpec("100", "n1", phones=(PhoneSpec("100", 0, 1, "Desk", "hardphone"),))
    user = UserSpec("bea", "Bea", "100", webcall_mode="exclusive",
                    webcall_extensions=("101",), group_extensions=("102", "103"))
    return RingTarget("100", login, user, {n: web(n) for n in ("101", "102", "103")})


def test_live_presence_counts_a_pool_web_call_only_with_the_users_session():
    target = _exclusive_target()
    # 102 and 103 are pool extensions: registered, but someone else may be logged in there
    idle = live_presence(target, {("103", 0), ("102", 0), ("100", 0)})
    assert (idle.webcall_running, idle.webcall_extension) == (False, None)
    assert idle.offline == frozenset({("101", 0)})
    on_103 = live_presence(target, {("103", 0), ("102", 0), ("100", 0)}, {"bea": "103"})
    assert (on_103.webcall_running, on_103.webcall_extension) == (True, "103")
    # a session without a registered Web Call phone is not running
    gone = live_presence(target, {("102", 0), ("100", 0)}, {"bea": "103"})
    assert (gone.webcall_running, gone.webcall_extension) == (False, None)
    # another user's session says nothing about bea
    other = live_presence(target, {("103", 0)}, {"ana": "103"})
    assert other.webcall_running is False


def test_live_presence_an_own_web_call_runs_on_registration_alone_and_the_session_wins():
    target = _exclusive_target()
    own = live_presence(target, {("101", 0), ("102", 0)})
    assert (own.webcall_running, own.webcall_extension) == (True, "101")
    both = live_presence(target, {("101", 0), ("102", 0)}, {"bea": "102"})
    assert (both.webcall_running, both.webcall_extension) == (True, "102")
    # a session on an extension that is not one of bea's counts for nothing
    stray = live_presence(target, {("104", 0)}, {"bea": "104"})
    assert stray.webcall_running is False


def _pool_store(mtctl) -> dict[str, str]:
    """The issue's store: Ana on 100, Bea on 200, both exclusive on pool 900 (and 901)."""
    mtctl.ok("node", "add", "n1")
    for number, name in (("100", "Desk Ana"), ("200", "Desk Bea"), ("900", None),
                         ("901", None)):
        mtctl.ok("ext", "add", number, "--node", "n1", *(["--name", name] if name else []))
    for number in ("100", "200"):
        mtctl.ok("phone", "add", number, "--position", "0", "--model", "Generic SIP hardphone")
    for number in ("900", "901"):
        mtctl.ok("phone", "add", number, "--position", "0", "--model", "VIVAit Call Web")
    mtctl.ok("group", "add", "pool")
    mtctl.ok("group", "add-ext", "pool", "900", "901")
    for user, name, login in (("ana", "Ana García", "100"), ("bea", "Bea Ruiz", "200")):
        mtctl.ok("user", "add", user, "--name", name, "--login", login, "--webcall-mode",
                 "exclusive", "--webcall-group", "pool")
    return {n: f"{n}-0" for n in ("100", "200", "900", "901")}


def stages(plan: dict) -> list[list[str]]:
    return [[f"{p['extension']}:{p['position']}" for p in s["phones"]] for s in plan["stages"]]


def test_live_rings_anas_desk_while_bea_uses_the_pool_browser(mtctl):
    auth = _pool_store(mtctl)
    for number in ("100", "200", "900"):
        register(mtctl.url, auth[number])
    mtctl.ok("webcall", "start", "bea", "--ext", "900")
    plan = live(mtctl, "100")
    assert (plan["webcall_running"], stages(plan)) == (False, [["100:0"]])
    assert plan["display_name"] == "Ana García"
    bea = live(mtctl, "200")
    assert (bea["webcall_running"], stages(bea)) == (True, [["900:0"]])
    # Ana logs into 901; until its browser registers, her desk phone rings
    mtctl.ok("webcall", "start", "ana", "--ext", "901")
    assert stages(live(mtctl, "100")) == [["100:0"]]
    register(mtctl.url, auth["901"])
    plan = live(mtctl, "100")
    assert (plan["webcall_running"], stages(plan)) == (True, [["901:0"]])
    assert {(s["extension"], s["reason"]) for s in plan["skipped"]} == {
        ("100", "exclusive-webcall-active")}
    assert plan["display_name"] == "Ana García"
    # plain ring-sim: --webcall-running runs on the session's extension
    what_if = json.loads(mtctl.ok("ring-sim", "100", "--webcall-running", "--json").stdout)
    assert what_if == {key: value for key, value in plan.items()
                       if key not in ("registrations", "webcall_session")}
    words = " ".join(mtctl.ok("ring-sim", "100", "--live", "--format", "table").stdout.split())
    assert "Web Call session of ana: on 901" in words
    mtctl.ok("webcall", "stop", "ana")
    assert stages(live(mtctl, "100")) == [["100:0"]]
    words = " ".join(mtctl.ok("ring-sim", "100", "--live", "--format", "table").stdout.split())
    assert "Web Call session of ana: none" in words


def test_live_json_names_the_called_users_web_call_session(mtctl):
    """Scripts see what the table's last line says: a registered pool browser without the
    user's session is why Web Call is not running."""
    from tests.cli.test_schemas import validate

    auth = _pool_store(mtctl)
    for number in ("200", "900"):
        register(mtctl.url, auth[number])
    plan = live(mtctl, "200")
    validate("ring-sim-live", plan)
    assert (plan["webcall_running"], plan["webcall_session"]) == (False, None)
    mtctl.ok("webcall", "start", "bea", "--ext", "900")
    plan = live(mtctl, "200")
    validate("ring-sim-live", plan)
    assert (plan["webcall_running"], plan["webcall_session"]) == (True, "900")
    assert live(mtctl, "100")["webcall_session"] is None  # bea's session is not ana's
