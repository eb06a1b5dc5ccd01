"""A real call through the exported Kamailio, recorded and explained (`mtctl calls`).

One extension, seven phones: A answers (stage 2), B declines 486 and C never answers (stage 1),
D's registration expired two minutes before the call, E was disabled by an admin shortly before,
F has order 0, and the exclusive user's own Web Call phone is off (no session, not
registered). Kamailio records the call and its branches, registrations are recorded as events,
and `calls explain` gives every phone its true verdict with evidence; changing the store
afterwards changes no verdict, and `ring-sim --at` the call's start gives the plan the proxy
followed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import Mtctl
from tests.e2e import harness
from tests.e2e.conftest import DOMAIN, Pbx, admin_password, start_kamailio
from tests.e2e.recorded import recorded_call

RING_TIMEOUT = "2"
D_EXPIRED_BEFORE_CALL = 120  # seconds, as support would meet it
WEB = "VIVAit Call Web"
PHONES = {  # position: (model, order, SIPp scenario or None when it does not run)
    0: ("Cisco 8841", 2, "phone_answer.xml"),  # A
    1: ("Generic SIP hardphone", 1, "phone_busy.xml"),  # B
    2: ("VIVAit Call Business Android", 1, "phone_no_answer.xml"),  # C
    3: ("VIVAit Call Business iOS", 1, "phone_busy.xml"),  # D: registers for 1 s
    4: ("Generic SIP hardphone", 1, "phone_busy.xml"),  # E: disabled before the call
    5: ("Generic SIP hardphone", 0, "phone_busy.xml"),  # F: order 0
}


@pytest.fixture
def short_pbx(mtctl: Mtctl, tmp_path: Path) -> Iterator[Pbx]:
    """The exported config, but registrations may last 1 s and usrloc expires them every
    second (the exported config has min_expires 30 and a 30 s timer)."""
    from mtctl.formats.kamailio import kamailio_db

    mtctl.ok("config", "set", "sip.domain", DOMAIN)
    port = harness.free_udp_port()
    out = tmp_path / "kamailio"
    mtctl.ok("export", "kamailio", "--out", str(out), "--listen", f"udp:127.0.0.1:{port}")
    cfg = out / "kamailio.cfg"
    text = cfg.read_text()
    for old, new in (('"min_expires", 30)', '"min_expires", 1)'),
                     ('"timer_interval", 30)', '"timer_interval", 1)')):
        assert old in text
        text = text.replace(old, new)
    cfg.write_text(text)
    runner = harness.SippRunner(tmp_path)
    try:
        with harness.kamailio(cfg, port, kamailio_db(mtctl.url, cwd=Path.cwd()).env,
                              tmp_path) as kam:
            yield Pbx(mtctl, kam, runner, tmp_path)
            assert not kam.errors(), "\n".join(kam.errors())
    finally:
        runner.stop_all()


def build(mtctl: Mtctl) -> dict[int, str]:
    mtctl.ok("node", "add", "n1")
    mtctl.ok("ext", "add", "40710", "--node", "n1", "--ring-timeout", RING_TIMEOUT)
    mtctl.ok("ext", "add", "900", "--node", "n1")
    mtctl.ok("phone", "add", "900", "--position", "0", "--model", WEB)
    passwords = {}
    for position, (model, order, _) in PHONES.items():
        mtctl.ok("phone", "add", "40710", "--position", str(position), "--model", model,
                 "--order", str(order))
        passwords[position] = admin_password()
        mtctl.ok("phone", "set-password", "40710", str(position), "--password-stdin",
                 input=passwords[position] + "\n")
    mtctl.ok("user", "add", "ana", "--name", "Ana García", "--login", "40710",
             "--webcall-mode", "exclusive", "--webcall-ext", "900")
    return passwords


def explain(mtctl: Mtctl, call_id: str) -> dict:
    return json.loads(mtctl.ok("calls", "explain", call_id, "--json").stdout)


def test_a_real_call_is_recorded_and_explained(short_pbx: Pbx) -> None:
    pbx, mtctl = short_pbx, short_pbx.mtctl
    passwords = build(mtctl)
    phones = {position: pbx.sipp.start(f"phone-{position}", scenario, "-m", "1", life=190)
              for position, (_, _, scenario) in PHONES.items()}
    online = [(f"40710-{p}", passwords[p], pbx.sipp.port_of(phones[p])) for p in PHONES
              if p != 3]
    assert harness.register(pbx.sipp, pbx.port, pbx.domain, online) == {
        user: "registered" for user, _, _ in online}
    assert harness.register(pbx.sipp, pbx.port, pbx.domain,
                            [("40710-3", passwords[3], pbx.sipp.port_of(phones[3]))],
                            name="short", expires=1) == {"40710-3": "registered"}
    deadline = time.monotonic() + 10
    while "40710:3" not in _offline(mtctl) or not _expired(mtctl, "40710-3"):
        assert time.monotonic() < deadline, "D's registration did not expire"
        time.sleep(0.2)
    time.sleep(D_EXPIRED_BEFORE_CALL)  # the others registered for 300 s: still online after it
    mtctl.ok("--actor", "pepe", "phone", "disable", "40710", "4")

    result = harness.call(pbx.sipp, pbx.port, pbx.domain, "40710")
    assert result.final == 200, result.responses
    invited = {u for sipp in phones.values() for _, u in harness.invites(sipp)}
    assert invited == {"40710-0", "40710-1", "40710-2"}

    calls = _wait_for_record(mtctl)
    assert [c["summary"] for c in calls] == ["answered by 40710:0"]
    call_id = calls[0]["call_id"]
    shown = json.loads(mtctl.ok("calls", "show", call_id, "--json").stdout)
    assert {b["auth_user"] for b in shown["branches"]} == invited
    assert sorted((b["stage"], b["position"], b["final_code"], b["answered"])
                  for b in shown["branches"]) == [(1, 1, 486, False), (1, 2, 408, False),
                                                  (2, 0, 200, True)]

    item = explain(mtctl, call_id)
    assert item["divergences"] == [], item
    verdicts = {p["position"]: p for p in item["phones"] if p["extension"] == "40710"}
    assert verdicts[0]["verdict"].startswith("rang in stage 2, answered after")
    assert verdicts[1]["verdict"] == "rang in stage 1, declined 486 Busy Here"
    assert verdicts[2]["verdict"] == (f"rang in stage 1, rang {RING_TIMEOUT} s, no answer "
                                      "(408 Request Timeout)")
    assert verdicts[3]["verdict"].startswith("not registered since ")
    assert verdicts[3]["verdict"].endswith("(expired)")
    assert verdicts[3]["evidence"][0]["kind"] == "registration"
    expired_at = datetime.fromisoformat(verdicts[3]["evidence"][0]["at"])
    started_at = datetime.fromisoformat(item["call"]["started_at"])
    assert (started_at - expired_at).total_seconds() >= D_EXPIRED_BEFORE_CALL
    assert " by pepe (audit #" in verdicts[4]["verdict"]
    assert verdicts[5]["verdict"] == "order 0 (never rings)"
    webcall = next(p for p in item["phones"] if p["extension"] == "900")
    assert webcall["planned"] == "webcall-not-running"
    assert webcall["verdict"].startswith("Web Call not running")
    # the plan at the call's time is the one the proxy followed
    at = json.loads(mtctl.ok("ring-sim", "40710", "--at", calls[0]["started_at"],
                             "--json").stdout)
    assert at == item["plan"]
    assert [[p["position"] for p in s["phones"]] for s in at["stages"]] == [[1, 2], [0]]

    # later changes do not rewrite history
    mtctl.ok("phone", "enable", "40710", "4")
    mtctl.ok("phone", "set", "40710", "5", "--order", "1")
    mtctl.ok("phone", "set", "40710", "0", "--order", "1")
    assert explain(mtctl, call_id) == item
    assert json.loads(mtctl.ok("ring-sim", "40710", "--at", calls[0]["started_at"],
                               "--json").stdout) == at


def _offline(mtctl: Mtctl) -> set[str]:
    plan = json.loads(mtctl.ok("ring-sim", "40710", "--live", "--json").stdout)
    return {f"{s['extension']}:{s['position']}" for s in plan["skipped"]
            if s["reason"] == "not-registered"}


def _expired(mtctl: Mtctl, auth_user: str) -> bool:
    from sqlalchemy import create_engine, select

    from mtctl.store.tables import registration_event

    engine = create_engine(mtctl.url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(registration_event.c.id).where(
                registration_event.c.auth_user == auth_user,
                registration_event.c.event == "expired")).first() is not None
    finally:
        engine.dispose()


def _wait_for_record(mtctl: Mtctl) -> list[dict]:
    """The call, once the recorder has written its outcome (it writes every 100 ms)."""
    deadline = time.monotonic() + 5
    while True:
        calls = json.loads(mtctl.ok("calls", "list", "--json").stdout)
        if calls and calls[0]["outcome"] is not None:
            return calls
        assert time.monotonic() < deadline, calls
        time.sleep(0.1)


ODD_CALLER = "1" * 300  # longer than any column holds
LATIN1_REASON = "Ocupado \udce9"  # byte 0xe9 (Latin-1 é): not UTF-8
LONG_REASON = "Busy " + "x" * 200


# what Kamailio logs when PostgreSQL refuses a statement for its bytes (then run in ASCII)
REFUSED_BYTES = re.compile(r"invalid byte sequence|error while submitting query|"
                           r"cannot do the query \[UPDATE call_branch")


@pytest.fixture
def odd_pbx(mtctl: Mtctl, tmp_path: Path) -> Iterator[Pbx]:
    """The exported config; its log may hold PostgreSQL's refusal of bytes that are not UTF-8,
    and nothing else."""
    mtctl.ok("config", "set", "sip.domain", DOMAIN)
    runner = harness.SippRunner(tmp_path)
    try:
        with start_kamailio(mtctl, tmp_path) as kam:
            yield Pbx(mtctl, kam, runner, tmp_path)
            errors = [e for e in kam.errors() if not REFUSED_BYTES.search(e)]
            assert not errors, "\n".join(errors)
    finally:
        runner.stop_all()


def test_odd_values_from_the_network_cost_no_call_its_record(odd_pbx: Pbx) -> None:
    """A caller longer than the column, a reason phrase that is not UTF-8 and one too long:
    the call is still recorded, answered, with every branch (PostgreSQL refuses a whole
    transaction once one statement fails), and `calls` can read what the proxy wrote."""
    pbx, mtctl = odd_pbx, odd_pbx.mtctl
    mtctl.ok("node", "add", "n1")
    mtctl.ok("ext", "add", "40710", "--node", "n1", "--ring-timeout", "2")
    phones = {0: ("phone_busy_reason.xml", 1, LATIN1_REASON),
              1: ("phone_busy_reason.xml", 1, LONG_REASON), 2: ("phone_answer.xml", 2, "")}
    online = []
    for position, (scenario, order, reason) in phones.items():
        mtctl.ok("phone", "add", "40710", "--position", str(position), "--order", str(order),
                 "--model", "Generic SIP hardphone")
        password = admin_password()
        mtctl.ok("phone", "set-password", "40710", str(position), "--password-stdin",
                 input=password + "\n")
        sipp = pbx.sipp.start(f"phone-{position}", scenario, "-m", "1", life=60,
                              keys={"reason": reason} if reason else None)
        online.append((f"40710-{position}", password, pbx.sipp.port_of(sipp)))
    assert set(harness.register(pbx.sipp, pbx.port, pbx.domain, online).values()) == {
        "registered"}

    started_ms = time.time() * 1000
    result = harness.call(pbx.sipp, pbx.port, pbx.domain, "40710", caller=ODD_CALLER)
    assert result.final == 200, result.responses

    call = recorded_call(mtctl, "40710", started_ms)
    assert call["summary"] == "answered by 40710:2"
    assert call["caller"] == ODD_CALLER[:255]
    shown = json.loads(mtctl.ok("calls", "show", call["call_id"], "--json").stdout)
    branches = {b["position"]: b for b in shown["branches"]}
    assert sorted((b["stage"], p) for p, b in branches.items()) == [(1, 0), (1, 1), (2, 2)]
    assert (branches[1]["final_code"], branches[1]["final_reason"]) == (486, LONG_REASON[:128])
    assert branches[0]["final_code"] == 486
    assert branches[0]["final_reason"] in ("Ocupado \ufffd", "Ocupado ")  # as stored / ASCII
    explained = explain(mtctl, call["call_id"])
    assert explained["divergences"] == [], explained


def test_a_phone_with_a_latin1_user_agent_registers_and_reads(odd_pbx: Pbx) -> None:
    """An old phone sends its User-Agent in Latin-1: it registers (PostgreSQL refused the
    bytes usrloc stores, so the phone got a 500 and never registered), and `ring-sim --live`
    shows it registered."""
    pbx, mtctl = odd_pbx, odd_pbx.mtctl
    mtctl.ok("node", "add", "n1")
    mtctl.ok("ext", "add", "40710", "--node", "n1")
    mtctl.ok("phone", "add", "40710", "--position", "0", "--model", "Generic SIP hardphone")
    password = admin_password()
    mtctl.ok("phone", "set-password", "40710", "0", "--password-stdin", input=password + "\n")
    phone = pbx.sipp.start("phone-0", "phone_answer.xml", "-m", "1", life=30)
    sipp = pbx.sipp.start("register-0", "register_ua.xml", "-s", "40710-0", "-au", "40710-0",
                          "-ap", password, "-m", "1", "-timeout", "10s", "-timeout_error",
                          remote=f"{harness.HOST}:{pbx.port}", life=15, keys={
                              "domain": pbx.domain, "expires": "300",
                              "contact_port": str(pbx.sipp.port_of(phone)),
                              "user_agent": "Tel\udce9fono 40710-0"})
    assert harness.refusals([sipp], pbx.sipp) == {"40710-0": ("registered", "")}
    live = json.loads(mtctl.ok("ring-sim", "40710", "--live", "--json").stdout)
    assert [[p["position"] for p in s["phones"]] for s in live["stages"]] == [[0]]
