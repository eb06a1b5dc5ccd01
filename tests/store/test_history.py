"""The store as it was at any earlier time, rebuilt from the audit trail: random sequences of
changes through the CLI (apply included), and after each one the state rebuilt later from the
audit rows equals the state read from the store then."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select

from mtctl.domain.history import AuditRow, ring_target_in, roll_back
from mtctl.domain.ringing import Presence, ring_plan
from mtctl.store.audit import as_utc
from mtctl.store.history import audit_after, current_state, state_after_audit, state_at
from mtctl.store.ring import ring_target
from mtctl.store.tables import audit_log
from tests.conftest import Mtctl

WEB = "VIVAit Call Web"
NUMBERS = ["100", "101", "102", "900", "901"]
USERS = ["ana", "bea"]
MODELS = ["Cisco 8841", "Generic SIP hardphone", WEB, "VIVAit Call Business Android", "Deskie"]

numbers = st.sampled_from(NUMBERS)
positions = st.integers(0, 3)
orders = st.integers(0, 3)

CLI_OPS = st.one_of(
    st.tuples(st.just("ext"), st.just("add"), numbers, st.just("--node"),
              st.sampled_from(["madrid", "sevilla"])),
    st.tuples(st.just("ext"), st.just("rm"), numbers),
    st.tuples(st.just("ext"), st.just("set"), numbers, st.just("--ring-timeout"),
              st.integers(5, 30).map(str)),
    st.tuples(st.just("ext"), st.just("set"), numbers, st.just("--name"),
              st.sampled_from(["Desk", "Front", ""])),
    st.tuples(st.just("phone"), st.just("add"), numbers, st.just("--position"),
              positions.map(str), st.just("--model"), st.sampled_from(MODELS),
              st.just("--order"), orders.map(str)),
    st.tuples(st.just("phone"), st.just("set"), numbers, positions.map(str),
              st.just("--order"), orders.map(str)),
    st.tuples(st.just("phone"), st.just("set"), numbers, positions.map(str),
              st.just("--position"), positions.map(str)),
    st.tuples(st.just("phone"), st.just("set"), numbers, positions.map(str),
              st.just("--location"), st.sampled_from(["Home", ""])),
    st.tuples(st.just("phone"), st.sampled_from(["enable", "disable", "rm"]), numbers,
              positions.map(str)),
    st.tuples(st.just("user"), st.just("add"), st.sampled_from(USERS), st.just("--name"),
              st.just("Someone"), st.just("--login"), numbers, st.just("--webcall-mode"),
              st.just("exclusive"), st.just("--webcall-ext"), st.sampled_from(["900", "901"])),
    st.tuples(st.just("user"), st.just("add"), st.sampled_from(USERS), st.just("--name"),
              st.just("Pooled"), st.just("--login"), numbers, st.just("--webcall-mode"),
              st.just("exclusive"), st.just("--webcall-license"), st.just("pool"),
              st.just("--webcall-group"), st.just("pool")),
    st.tuples(st.just("user"), st.just("add"), st.sampled_from(USERS), st.just("--name"),
              st.just("Multi"), st.just("--login"), numbers, st.just("--webcall-mode"),
              st.just("multiterminal"), st.just("--webcall-position"), positions.map(str)),
    st.tuples(st.just("user"), st.just("set"), st.sampled_from(USERS), st.just("--name"),
              st.sampled_from(["Ana", "Bea"])),
    st.tuples(st.just("user"), st.just("rm"), st.sampled_from(USERS)),
    st.tuples(st.just("group"), st.sampled_from(["add-ext", "rm-ext"]), st.just("pool"),
              st.sampled_from(["900", "901"])),
    st.tuples(st.just("webcall"), st.just("start"), st.sampled_from(USERS)),
    st.tuples(st.just("webcall"), st.just("stop"), st.sampled_from(USERS)),
    st.tuples(st.just("model"), st.just("add"), st.just("Deskie"), st.just("--vendor"),
              st.just("Acme"), st.just("--kind"), st.sampled_from(["hardphone", "app"])),
    st.tuples(st.just("model"), st.just("rm"), st.just("Deskie")),
    st.tuples(st.just("template"), st.just("set"), st.just("mobile"), st.just("--secure")),
    st.tuples(st.just("template"), st.just("set"), st.just("mobile"), st.just("--category"),
              st.sampled_from(["national", ""])),
    st.tuples(st.just("apply"), st.integers(0, 2**16), st.sampled_from(["order", "enabled",
                                                                       "prune-ext", "group"])),
)


BASE = [
    ("node", "add", "madrid"), ("node", "add", "sevilla"), ("category", "add", "national"),
    ("template", "add", "mobile"), ("group", "add", "pool"),
    *(("ext", "add", n, "--node", "madrid") for n in NUMBERS),
    ("phone", "add", "100", "--position", "0", "--model", "Cisco 8841"),
    ("phone", "add", "100", "--position", "1", "--model", "VIVAit Call Business Android",
     "--order", "2"),
    ("phone", "add", "101", "--position", "0", "--model", "Generic SIP hardphone"),
    ("phone", "add", "900", "--position", "0", "--model", WEB),
    ("phone", "add", "901", "--position", "0", "--model", WEB),
    ("group", "add-ext", "pool", "900"),
    ("user", "add", "bea", "--name", "Bea", "--login", "101", "--webcall-mode", "exclusive",
     "--webcall-license", "pool", "--webcall-group", "pool"),
]


def _apply_edit(mtctl: Mtctl, tmp_path: Path, seed: int, edit: str) -> None:
    """Export, change one thing in the file, apply it back (--prune)."""
    doc = tomllib.loads(mtctl.ok("export").stdout)
    exts = doc.get("extensions", {})
    phones = [p for e in exts.values() for p in e.get("phones", [])]
    if edit == "order" and phones:
        phones[seed % len(phones)]["order"] = seed % 4
    elif edit == "enabled" and phones:
        phone = phones[seed % len(phones)]
        phone["enabled"] = not phone.get("enabled", True)
    elif edit == "prune-ext" and exts:
        del exts[sorted(exts)[seed % len(exts)]]
    elif edit == "group" and "pool" in doc.get("groups", {}):
        members = doc["groups"]["pool"].get("extensions", [])
        doc["groups"]["pool"]["extensions"] = list(reversed(members))[: 1 + seed % 2]
    path = tmp_path / "edit.toml"
    path.write_text(tomli_w.dumps(doc))
    mtctl("apply", str(path), "--prune")


def _snapshot(engine: Any) -> tuple[int, dict[str, Any]]:
    with engine.connect() as conn:
        last = conn.execute(select(func.max(audit_log.c.id))).scalar() or 0
        return last, current_state(conn)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(CLI_OPS, min_size=1, max_size=12))
def test_state_at_every_audit_row_equals_the_state_read_then(mtctl: Mtctl, tmp_path: Path,
                                                             ops: list[tuple[Any, ...]]) -> None:
    if mtctl("node", "list", "--json").stdout.strip() == "[]":
        mtctl.ok("config", "set", "sip.domain", "pbx.example.com")
        for args in BASE:
            mtctl.ok(*args)
    engine = create_engine(mtctl.url)
    try:
        taken = [_snapshot(engine)]
        for op in ops:
            if op[0] == "apply":
                _apply_edit(mtctl, tmp_path, op[1], op[2])
            else:
                mtctl(*op)
            taken.append(_snapshot(engine))
        with engine.connect() as conn:
            for audit_id, then in taken:
                assert state_after_audit(conn, audit_id) == then, (audit_id, ops)
    finally:
        engine.dispose()


def test_state_at_a_time_and_the_plan_then(seeded: Mtctl) -> None:
    """Disabling the desk phone and starting Web Call later changes neither the state nor the
    ring plan rebuilt for a time before."""
    engine = create_engine(seeded.url)
    try:
        with engine.connect() as conn:
            before = current_state(conn)
            when = as_utc(conn.execute(select(func.max(audit_log.c.at))).scalar())
            assert when is not None
            plan_then = ring_plan(ring_target(conn, "40710"), Presence())
        seeded.ok("phone", "disable", "40710", "0")
        seeded.ok("phone", "set", "40710", "1", "--order", "3")
        seeded.ok("webcall", "start", "ana")
        with engine.connect() as conn:
            assert state_at(conn, when) == before
            target = ring_target_in(state_at(conn, when), "40710")
            assert target is not None
            assert ring_plan(target, Presence()) == plan_then
            assert ring_plan(ring_target(conn, "40710"), Presence()) != plan_then
            assert [r.action for r in audit_after(conn, after=when)] == ["disable", "set",
                                                                          "start"]
    finally:
        engine.dispose()


def test_roll_back_undoes_a_move_of_position() -> None:
    current = {"phone 1:3": {"order": 2, "model": "m"}}
    rows = [AuditRow(7, "2026-01-01T00:00:00+00:00", "pepe", "set", "phone 1:1",
                     {"position": [1, 3], "order": [1, 2]})]
    assert roll_back(current, rows) == {"phone 1:1": {"order": 1, "model": "m"}}
