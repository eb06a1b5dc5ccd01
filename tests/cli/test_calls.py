"""`mtctl calls` and `ring-sim --at` over call records and registrations written straight into
the store, as the exported Kamailio writes them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import create_engine, delete, func, insert, select, text

from mtctl.domain.updates import PhoneUpdate
from mtctl.store.phones import update_phone
from mtctl.store.tables import call_branch, call_record, location, registration_event
from tests.conftest import Mtctl
from tests.dump import assert_one_line_error

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
WEB = "VIVAit Call Web"


def validate(name: str, data: Any) -> None:
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        data)


def now_ms() -> int:
    return int(time.time() * 1000)


def run_sql(url: str, *statements: Any) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        engine.dispose()


def register(url: str, auth_user: str, *, seconds_left: int = 300) -> None:
    """A location row as usrloc writes it (epoch seconds); the triggers record the event."""
    run_sql(url, insert(location).values(
        ruid=f"uloc-{auth_user}", username=auth_user, contact=f"sip:{auth_user}@192.0.2.1:5062",
        expires=int(time.time()) + seconds_left, last_modified=int(time.time()),
        user_agent=f"SIPp {auth_user}"))


def expire(url: str, auth_user: str) -> None:
    """usrloc's timer removing a contact whose expiry has passed."""
    run_sql(url, delete(location).where(location.c.username == auth_user))


@pytest.fixture
def office(mtctl: Mtctl) -> Mtctl:
    """One extension with phones A..F and an exclusive user whose own Web Call is off."""
    for args in (("config", "set", "sip.domain", "pbx.example.com"), ("node", "add", "madrid"),
                 ("ext", "add", "40710", "--node", "madrid", "--name", "Desk 40710",
                  "--ring-timeout", "20"),
                 ("ext", "add", "900", "--node", "madrid"),
                 ("phone", "add", "900", "--position", "0", "--model", WEB),
                 ("phone", "add", "40710", "--position", "0", "--model", "Cisco 8841",
                  "--order", "2"),  # A: answers in stage 2
                 ("phone", "add", "40710", "--position", "1", "--model",
                  "Generic SIP hardphone"),  # B: declines 486
                 ("phone", "add", "40710", "--position", "2", "--model",
                  "VIVAit Call Business Android"),  # C: never answers
                 ("phone", "add", "40710", "--position", "3", "--model",
                  "VIVAit Call Business iOS"),  # D: registration expired
                 ("phone", "add", "40710", "--position", "4", "--model",
                  "Generic SIP hardphone"),  # E: disabled shortly before
                 ("phone", "add", "40710", "--position", "5", "--model",
                  "Generic SIP hardphone", "--order", "0"),  # F: order 0
                 ("user", "add", "ana", "--name", "Ana García", "--login", "40710",
                  "--webcall-mode", "exclusive", "--webcall-ext", "900")):
        mtctl.ok(*args)
    for position in (0, 1, 2, 4, 5):
        register(mtctl.url, f"40710-{position}")
    register(mtctl.url, "40710-3", seconds_left=-120)
    expire(mtctl.url, "40710-3")
    engine = create_engine(mtctl.url)
    try:
        with engine.begin() as conn:
            update_phone(conn, actor="pepe", number="40710", position=4,
                         change=PhoneUpdate(enabled=False), action="disable")
    finally:
        engine.dispose()
    return mtctl


def record_call(url: str, call_id: str, started: int, *, branches: list[dict[str, Any]],
                outcome: str, answered_by: str | None, code: int, reason: str,
                node: str = "madrid") -> None:
    """NODE: the node whose Kamailio routed it ('' is the single proxy's)."""
    run_sql(url, insert(call_record).values(
        call_id=call_id, node=node, caller="1001", called="40710", started_ms=started,
        ended_ms=started + 25_000, outcome=outcome, answered_by=answered_by, final_code=code,
        final_reason=reason), *(insert(call_branch).values(call_id=call_id, node=node,
                                                           branch_index=index, **b)
                                for index, b in enumerate(branches)))


def branch(position: int, stage: int, order: int, invited: int, ended: int, code: int,
           reason: str, answered: bool = False) -> dict[str, Any]:
    return {"stage": stage, "ring_order": order, "auth_user": f"40710-{position}",
            "extension": "40710", "position": position,
            "contact": f"sip:40710-{position}@192.0.2.1:5062", "invited_ms": invited,
            "ended_ms": ended, "final_code": code, "final_reason": reason,
            "answered": answered}


@pytest.fixture
def answered_call(office: Mtctl) -> tuple[Mtctl, int]:
    time.sleep(0.01)
    t = now_ms() + 5
    record_call(office.url, "call-1@192.0.2.9", t, outcome="answered", answered_by="40710-0",
                code=200, reason="OK", branches=[
                    branch(1, 1, 1, t + 10, t + 900, 486, "Busy Here"),
                    branch(2, 1, 1, t + 10, t + 20_010, 408, "Request Timeout"),
                    branch(0, 2, 2, t + 20_020, t + 23_000, 200, "OK", answered=True)])
    return office, t


def explain(mtctl: Mtctl, call_id: str = "call-1@192.0.2.9") -> dict[str, Any]:
    result = mtctl.ok("calls", "explain", call_id, "--json")
    item = json.loads(result.stdout)
    validate("calls-explain.schema.json", item)
    if item["plan"] is not None:
        validate("ring-sim.schema.json", item["plan"])
    return item


def by_position(item: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(p["extension"], p["position"]): p for p in item["phones"]}


def test_explain_gives_every_phone_its_verdict_with_evidence(answered_call):
    mtctl, _ = answered_call
    item = explain(mtctl)
    phones = by_position(item)
    assert item["divergences"] == []
    assert item["call"]["summary"] == "answered by 40710:0"
    a, b, c = phones[("40710", 0)], phones[("40710", 1)], phones[("40710", 2)]
    assert (a["planned"], a["happened"]) == ("stage 2", "answered")
    assert a["verdict"].startswith("rang in stage 2, answered after 3 s")
    assert (b["planned"], b["happened"]) == ("stage 1", "declined")
    assert b["verdict"] == "rang in stage 1, declined 486 Busy Here"
    assert b["evidence"][0]["kind"] == "response" and "486" in b["evidence"][0]["detail"]
    assert c["verdict"] == "rang in stage 1, rang 20 s, no answer (408 Request Timeout)"
    d = phones[("40710", 3)]
    assert d["planned"] == "not-registered"
    assert d["verdict"].startswith("not registered since ") and d["verdict"].endswith(
        "(expired)")
    assert d["evidence"][0]["kind"] == "registration" and d["evidence"][0]["id"]
    e = phones[("40710", 4)]
    assert e["planned"] == "disabled"
    assert " by pepe (audit #" in e["verdict"]
    assert e["evidence"][0]["kind"] == "audit" and f"#{e['evidence'][0]['id']})" in e["verdict"]
    f = phones[("40710", 5)]
    assert (f["planned"], f["verdict"]) == ("order-zero", "order 0 (never rings)")
    w = phones[("900", 0)]
    assert w["planned"] == "webcall-not-running"
    assert w["verdict"].startswith("Web Call not running")
    assert any(ev["kind"] == "session" and "no Web Call session" in ev["detail"]
               for ev in w["evidence"])


def test_list_and_show(answered_call):
    mtctl, t = answered_call
    listed = json.loads(mtctl.ok("calls", "list", "40710", "--since", "2h", "--json").stdout)
    for call in listed:
        validate("call.schema.json", call)
    assert [(c["call_id"], c["summary"]) for c in listed] == [
        ("call-1@192.0.2.9", "answered by 40710:0")]
    assert json.loads(mtctl.ok("calls", "list", "40711", "--json").stdout) == []
    table = mtctl.ok("calls", "list", "--format", "table").stdout
    assert "answered by 40710:0" in table and "call-1@192.0.2.9" in table
    plain = mtctl.ok("calls", "list", "--fields", "call_id,summary").stdout
    assert plain == "call_id\tsummary\ncall-1@192.0.2.9\tanswered by 40710:0\n"
    shown = json.loads(mtctl.ok("calls", "show", "call-1@192.0.2.9", "--json").stdout)
    validate("call-show.schema.json", shown)
    assert [(b["stage"], b["position"], b["final_code"], b["answered"])
            for b in shown["branches"]] == [(1, 1, 486, False), (1, 2, 408, False),
                                           (2, 0, 200, True)]
    text_out = mtctl.ok("calls", "show", "call-1@192.0.2.9", "--format", "table").stdout
    assert "Busy Here" in text_out and "answered by 40710:0" in text_out
    titles = [line.split()[0] for line in text_out.splitlines() if line.strip()]
    assert titles.count("outcome") == 1 and titles.count("summary") == 1, text_out
    rows = mtctl.ok("calls", "show", "call-1@192.0.2.9", "--format", "csv",
                    "--fields", "stage,position,final_code").stdout
    assert rows == "stage,position,final_code\r\n1,1,486\r\n1,2,408\r\n2,0,200\r\n"


def test_a_call_routed_by_the_single_proxy_says_so(office):
    """The single-proxy export (no --node) serves every node and records no node name: a
    support person reads "single proxy", never an empty or "-" node; JSON keeps the schema's
    ''."""
    t = now_ms() + 5
    for node, call_id in (("", "single@192.0.2.9"), ("madrid", "node@192.0.2.9")):
        record_call(office.url, call_id, t, node=node, outcome="answered",
                    answered_by="40710-0", code=200, reason="OK", branches=[
                        branch(1, 1, 1, t + 10, t + 900, 486, "Busy Here"),
                        branch(2, 1, 1, t + 10, t + 20_010, 408, "Request Timeout"),
                        branch(0, 2, 2, t + 20_020, t + 23_000, 200, "OK", answered=True)])
    said = {call_id: office.ok("calls", "explain", call_id, "--format", "table").stdout
            .splitlines()[0] for call_id in ("single@192.0.2.9", "node@192.0.2.9")}
    assert said["single@192.0.2.9"].endswith(" (single proxy): answered by 40710:0"), said
    assert said["node@192.0.2.9"].endswith(" (node madrid): answered by 40710:0"), said
    assert explain(office, "single@192.0.2.9")["call"]["node"] == ""
    listed = office.ok("calls", "list", "--format", "table").stdout.splitlines()
    assert [line.split("│")[4].strip() for line in listed if "@192.0.2.9" in line] == [
        "madrid", "single proxy"], listed
    shown = office.ok("calls", "show", "single@192.0.2.9", "--format", "table").stdout
    assert [line.split(None, 1)[1].strip() for line in shown.splitlines()
            if line.startswith("node ")] == ["single proxy"], shown
    assert office.ok("calls", "list", "--fields", "call_id,node").stdout.splitlines()[1:] == [
        "node@192.0.2.9\tmadrid", "single@192.0.2.9\t"]


def test_changing_the_store_afterwards_changes_no_explanation(answered_call):
    mtctl, t = answered_call
    before = explain(mtctl)
    mtctl.ok("phone", "enable", "40710", "4")
    mtctl.ok("phone", "set", "40710", "5", "--order", "1")
    mtctl.ok("phone", "set", "40710", "0", "--order", "1")
    mtctl.ok("webcall", "start", "ana")
    register(mtctl.url, "40710-3")
    assert explain(mtctl) == before
    at = json.loads(mtctl.ok("ring-sim", "40710", "--at",
                             _iso(t), "--json").stdout)
    assert at == before["plan"]
    assert [[p["position"] for p in s["phones"]] for s in at["stages"]] == [[1, 2], [0]]
    # and now the plan differs
    now = json.loads(mtctl.ok("ring-sim", "40710", "--at", "-0m", "--json").stdout)
    assert now != at


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def test_explain_flags_divergences(office):
    t = now_ms() + 5
    # the proxy rang F (order 0) and never rang C, which the plan puts in stage 1
    record_call(office.url, "odd@x", t, outcome="no-answer", answered_by=None, code=480,
                reason="Temporarily Unavailable", branches=[
                    branch(1, 1, 1, t + 10, t + 500, 486, "Busy Here"),
                    branch(5, 1, 0, t + 10, t + 20_010, 408, "Request Timeout"),
                    branch(0, 2, 2, t + 20_020, t + 40_020, 408, "Request Timeout")])
    item = explain(office, "odd@x")
    phones = by_position(item)
    assert phones[("40710", 5)]["divergence"] == "not planned to ring (order-zero), rang in " \
                                                 "stage 1"
    assert phones[("40710", 2)]["divergence"] == "planned for stage 1, never rung"
    assert len(item["divergences"]) == 2
    human = office.ok("calls", "explain", "odd@x", "--format", "table")
    assert "2 divergence(s) between plan and reality" in human.stderr
    assert "never rung" in human.stdout
    plain = office.ok("calls", "explain", "odd@x", "--fields", "position,happened")
    assert plain.stdout.splitlines()[:4] == ["position\thappened", "0\tno-answer",
                                             "1\tdeclined", "2\tnot-sent"]
    assert "2 divergence(s)" in plain.stderr


def test_unknown_call_and_bad_times(office):
    r = office("calls", "explain", "nope@x")
    assert r.exit_code == 3, r.output
    assert_one_line_error(r)
    for args in (("calls", "list", "--since", "yesterday"),
                 ("ring-sim", "40710", "--at", "10:99"),
                 ("ring-sim", "40710", "--at", "-5m", "--live"),
                 ("ring-sim", "40710", "--at", "2999-01-01T00:00:00Z")):
        r = office(*args)
        assert r.exit_code == 2, (args, r.output)
        assert_one_line_error(r)
    r = office("ring-sim", "40799", "--at", "-1m")
    assert r.exit_code == 3, r.output


def test_ring_sim_at_before_a_phone_existed_and_its_registration(office):
    earlier = json.loads(office.ok("ring-sim", "40710", "--at", "-0m", "--json").stdout)
    assert [[p["position"] for p in s["phones"]] for s in earlier["stages"]] == [[1, 2], [0]]
    r = office("ring-sim", "40710", "--at", "2000-01-01T00:00:00Z")
    assert r.exit_code == 3, r.output  # the extension did not exist yet


def test_registration_events_from_location_writes(office):
    engine = create_engine(office.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(registration_event.c.event, registration_event.c.auth_user)
                                .order_by(registration_event.c.id)).all()
    finally:
        engine.dispose()
    assert ("expired", "40710-3") in rows and ("registered", "40710-0") in rows
    run_sql(office.url, text("UPDATE location SET expires = expires + 60 "
                             "WHERE username = '40710-0'"))
    run_sql(office.url, delete(location).where(location.c.username == "40710-1"))
    engine = create_engine(office.url)
    try:
        with engine.connect() as conn:
            last = conn.execute(select(registration_event.c.event, registration_event.c.auth_user)
                                .order_by(registration_event.c.id.desc()).limit(2)).all()
    finally:
        engine.dispose()
    assert last == [("unregistered", "40710-1"), ("refreshed", "40710-0")]


def test_a_registration_event_names_the_node_that_holds_it(office):
    """A node's Kamailio writes its node id as location.server_id (SPEC §8)."""
    engine = create_engine(office.url)
    try:
        with engine.begin() as conn:
            node_id = conn.execute(text("SELECT id FROM node WHERE name = 'madrid'")).scalar()
            conn.execute(insert(location).values(
                ruid="uloc-node", username="40710-1", contact="sip:40710-1@192.0.2.7",
                expires=int(time.time()) + 60, server_id=node_id, user_agent="ua"))
            row = conn.execute(select(registration_event.c.event, registration_event.c.node)
                               .order_by(registration_event.c.id.desc()).limit(1)).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("registered", "madrid")


def test_prune_is_silent_and_keeps_recent_records(answered_call):
    mtctl, t = answered_call
    old = t - 40 * 86_400_000
    record_call(mtctl.url, "old@x", old, outcome="busy", answered_by=None, code=486,
                reason="Busy Here", branches=[branch(1, 1, 1, old + 5, old + 900, 486, "Busy")])
    r = mtctl.ok("calls", "prune")
    assert r.stdout == "" and r.stderr == ""
    engine = create_engine(mtctl.url)
    try:
        with engine.connect() as conn:
            calls = conn.execute(select(call_record.c.call_id)).scalars().all()
            branches = conn.execute(select(func.count()).select_from(call_branch)).scalar()
    finally:
        engine.dispose()
    assert calls == ["call-1@192.0.2.9"] and branches == 3
    mtctl.ok("config", "set", "calls.retention_days", "1")
    assert "pruned 0 row(s)" in mtctl.ok("calls", "prune", "-v").stderr


def test_bytes_that_are_not_utf8_from_a_phone_are_shown_not_fatal(answered_call):
    """usrloc stores a phone's User-Agent byte for byte, and SQLite keeps bytes that are not
    UTF-8 (an old phone's Latin-1 "Teléfono"): `ring-sim --live` and `calls explain` show them
    as U+FFFD instead of failing with "store unavailable"."""
    mtctl, _ = answered_call
    if not mtctl.url.startswith("sqlite"):
        pytest.skip("PostgreSQL refuses bytes that are not UTF-8 when Kamailio writes them")
    run_sql(mtctl.url, text("UPDATE location SET user_agent = CAST(X'54656CE9666F6E6F' AS TEXT) "
                            "WHERE username = '40710-0'"),
            text("UPDATE call_branch SET final_reason = CAST(X'4F63757061646FE9' AS TEXT) "
                 "WHERE auth_user = '40710-1'"))
    live = json.loads(mtctl.ok("ring-sim", "40710", "--live", "--json").stdout)
    assert "Tel\ufffdfono" in json.dumps(live, ensure_ascii=False)
    verdicts = by_position(explain(mtctl))
    assert verdicts[("40710", 1)]["verdict"] == "rang in stage 1, declined 486 Ocupado\ufffd"


def test_a_time_on_another_day_than_the_call_names_its_day(office):
    """"not registered since 09:10:05 UTC" is only unambiguous on the call's own day."""
    two_days = 2 * 86_400_000
    t = now_ms() + two_days
    record_call(office.url, "call-2@192.0.2.9", t, outcome="no-answer", answered_by=None,
                code=480, reason="Temporarily Unavailable", branches=[])
    phones = by_position(explain(office, "call-2@192.0.2.9"))
    day = _iso(t - two_days)[:10]
    d, e = phones[("40710", 3)], phones[("40710", 4)]
    assert d["verdict"].startswith(f"not registered since {day} "), d
    assert d["verdict"].endswith(" UTC (expired)")
    assert e["verdict"].startswith(f"disabled at {day} "), e
    assert " UTC by pepe (audit #" in e["verdict"]


def test_a_time_no_date_can_hold_is_shown_not_fatal(answered_call):
    """A call record written by other means with an end in the year 3 million: every `calls`
    command still answers, with the latest time a date can hold."""
    mtctl, _ = answered_call
    run_sql(mtctl.url, text("UPDATE call_record SET ended_ms = 99999999999999999"),
            text("UPDATE call_branch SET ended_ms = -99999999999999999 "
                 "WHERE auth_user = '40710-1'"))
    listed = json.loads(mtctl.ok("calls", "list", "--json").stdout)
    assert [c["ended_at"] for c in listed] == ["9999-12-31T23:59:59.999+00:00"]
    shown = json.loads(mtctl.ok("calls", "show", "call-1@192.0.2.9", "--json").stdout)
    assert {b["ended_at"] for b in shown["branches"]} >= {"0001-01-01T00:00:00.000+00:00"}
    assert explain(mtctl)["call"]["ended_at"] == "9999-12-31T23:59:59.999+00:00"
    mtctl.ok("calls", "list")


def test_a_call_still_ringing_has_no_divergence_for_its_later_stages(office):
    """Stage 1 rings, the call has no outcome yet: stage 2 is not reached, not "never rung"
    (a divergence means a bug or a race, so it must not be cried wolf)."""
    t = now_ms() + 5
    record_call(office.url, "ringing@x", t, outcome=None, answered_by=None, code=None,
                reason=None, branches=[branch(1, 1, 1, t + 10, t + 500, 486, "Busy Here")])
    run_sql(office.url, text("UPDATE call_record SET ended_ms = NULL "
                             "WHERE call_id = 'ringing@x'"),
            insert(call_branch).values(call_id="ringing@x", node="madrid", branch_index=1,
                                       **{**branch(2, 1, 1, t + 10, 0, 0, ""),
                                          "ended_ms": None, "final_code": None,
                                          "final_reason": None}))
    item = explain(office, "ringing@x")
    assert item["call"]["summary"] == "in progress"
    assert item["divergences"] == [], item["divergences"]
    a = by_position(item)[("40710", 0)]
    assert (a["planned"], a["happened"]) == ("stage 2", "not-reached")
    assert a["verdict"] == "would ring in stage 2; the call had not reached it when recorded"


def test_moving_phones_afterwards_changes_no_explanation(answered_call):
    """A phone keeps its SIP auth user (and its registrations) when it moves to another
    position; a phone added later at its old position is a different phone."""
    mtctl, t = answered_call
    before = explain(mtctl)
    mtctl.ok("phone", "rm", "40710", "5")
    mtctl.ok("phone", "set", "40710", "2", "--position", "5")
    mtctl.ok("phone", "add", "40710", "--position", "2", "--model", "Generic SIP hardphone")
    mtctl.ok("phone", "set", "40710", "1", "--position", "7")
    mtctl.ok("phone", "set", "40710", "7", "--position", "1")
    assert explain(mtctl) == before
    at = json.loads(mtctl.ok("ring-sim", "40710", "--at", _iso(t), "--json").stdout)
    assert at == before["plan"]


def test_a_multiterminal_web_call_is_explained_without_sessions(mtctl):
    """In multiterminal mode a registration alone runs Web Call: the explanation does not cite
    a missing Web Call session, which would send support after the wrong cause."""
    for args in (("config", "set", "sip.domain", "pbx.example.com"), ("node", "add", "madrid"),
                 ("ext", "add", "40710", "--node", "madrid"),
                 ("phone", "add", "40710", "--position", "0", "--model", "Cisco 8841"),
                 ("phone", "add", "40710", "--position", "1", "--model", WEB),
                 ("user", "add", "ana", "--name", "Ana", "--login", "40710",
                  "--webcall-mode", "multiterminal", "--webcall-position", "1")):
        mtctl.ok(*args)
    register(mtctl.url, "40710-0")
    t = now_ms() + 5
    record_call(mtctl.url, "multi@x", t, outcome="answered", answered_by="40710-0", code=200,
                reason="OK", branches=[branch(0, 1, 1, t + 10, t + 900, 200, "OK", True)])
    web = by_position(explain(mtctl, "multi@x"))[("40710", 1)]
    assert web["verdict"] == ("Web Call not running: its phone was not registered (no "
                              "registration recorded)")
    assert [e["kind"] for e in web["evidence"]] == ["registration"], web["evidence"]
