"""Concurrent writers cannot break the rules together (SPEC §2: every write is checked).

Each race is two changes that are valid one at a time and break MT009/MT010 together. Run at
the same moment (two threads, two engines, a barrier), exactly one must commit and the other
be refused with the rule, and `check` must find the store clean. On PostgreSQL, READ COMMITTED
alone lets both commit (write skew); Store.write() serialises writers with an advisory lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from mtctl.domain.updates import PhoneUpdate, UserUpdate
from mtctl.errors import RuleViolation
from mtctl.store import catalog, config, phones, users
from mtctl.store.check import check_store
from mtctl.store.db import Store, open_store
from mtctl.store.keys import rotate_due_keys
from mtctl.store.tables import app_user, extension, node, phone, phone_model, template

PAIRS = int(os.environ.get("MTCTL_RACE_PAIRS", "200"))
WEB = "VIVAit Call Web"
DESK = "Generic SIP hardphone"
MTCTL = [sys.executable, "-m", "mtctl"]

Change = Callable[[object], object]


def _login(i: int) -> str:
    return f"5{i:05d}"


def _pool(i: int) -> str:
    return f"6{i:05d}"


def _setup(conn, count: int) -> None:  # type: ignore[no-untyped-def]
    """Trials 0..count-1, with bulk inserts (a valid store, checked before racing): trial i
    has a login extension with a desk phone at 0 and a Web Call phone at 1, a second
    extension with a Web Call phone at 0, and user u<i> (owner of the login) without Web
    Call."""
    catalog.add_node(conn, actor="t", name="madrid")
    node_id = conn.execute(select(node.c.id)).scalar_one()
    model_ids = dict(conn.execute(select(phone_model.c.name, phone_model.c.id)).all())
    template_ids = dict(conn.execute(select(template.c.name, template.c.id)).all())
    numbers = [n for i in range(count) for n in (_login(i), _pool(i))]
    conn.execute(insert(extension), [{"number": n, "node_id": node_id} for n in numbers])
    ids = dict(conn.execute(select(extension.c.number, extension.c.id)).all())

    def row(number: str, position: int, model: str, template_name: str) -> dict[str, object]:
        return {"extension_id": ids[number], "node_id": node_id, "position": position,
                "model_id": model_ids[model], "template_id": template_ids[template_name],
                "sip_auth_user": f"{number}-{position}"}

    conn.execute(insert(phone), [
        r for i in range(count)
        for r in (row(_login(i), 0, DESK, "default"), row(_login(i), 1, WEB, "webfon"),
                  row(_pool(i), 0, WEB, "webfon"))])
    conn.execute(insert(app_user), [
        {"username": f"u{i}", "display_name": f"U {i}", "login_extension_id": ids[_login(i)]}
        for i in range(count)])


def _races(i: int) -> tuple[str, Change, Change]:
    """The i-th race: its name and its two changes, each valid alone."""
    user, login, pool = f"u{i}", _login(i), _pool(i)

    def multiterminal(conn):  # type: ignore[no-untyped-def]
        return users.update_user(conn, actor="a", username=user, change=UserUpdate(
            webcall_mode="multiterminal", webcall_position=1))

    def exclusive(conn):  # type: ignore[no-untyped-def]
        return users.update_user(conn, actor="a", username=user, change=UserUpdate(
            webcall_mode="exclusive", webcall_extensions=(pool,)))

    kinds = [
        ("user set --webcall-position 1 | phone rm", multiterminal,
         lambda c: phones.remove_phone(c, actor="b", number=login, position=1)),
        ("user set --webcall-position 1 | phone set --order 0", multiterminal,
         lambda c: phones.update_phone(c, actor="b", number=login, position=1,
                                       change=PhoneUpdate(order=0))),
        ("user set --webcall-position 1 | phone set --model (not Web Call)", multiterminal,
         lambda c: phones.update_phone(c, actor="b", number=login, position=1,
                                       change=PhoneUpdate(model=DESK))),
        ("user set --webcall-ext | phone rm", exclusive,
         lambda c: phones.remove_phone(c, actor="b", number=pool, position=0)),
        ("user set --webcall-ext | phone set --position 2", exclusive,
         lambda c: phones.update_phone(c, actor="b", number=pool, position=0,
                                       change=PhoneUpdate(position=2))),
    ]
    return kinds[i % len(kinds)]


def _race(stores: tuple[Store, Store], first: Change, second: Change) -> list[object]:
    """Run two changes in two write transactions released at the same instant."""
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def run(slot: int, store: Store, change: Change) -> None:
        barrier.wait()
        try:
            with store.write() as conn:
                change(conn)
            outcomes[slot] = "ok"
        except BaseException as exc:  # noqa: BLE001 - the test inspects what happened
            outcomes[slot] = exc

    threads = [threading.Thread(target=run, args=(n, stores[n], change))
               for n, change in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _errors(store: Store) -> list[str]:
    with store.read() as conn:
        return [f"{v.rule} {v.object} {v.message}"
                for level, v in check_store(conn, now=datetime.now(UTC),
                                            rotate_within=timedelta(days=7))
                if level == "error"]


def _prepared(url: str, count: int) -> tuple[Store, Store]:
    stores = (open_store(url), open_store(url))
    with stores[0].write() as conn:
        config.set_value(conn, actor="t", name="sip.domain", value="pbx.example.com")
        _setup(conn, count)
    assert _errors(stores[0]) == []
    return stores


def test_racing_writes_never_break_the_rules(db_url: str) -> None:
    stores = _prepared(db_url, PAIRS)
    try:
        started = time.monotonic()
        for i in range(PAIRS):
            name, first, second = _races(i)
            # Alternate which change is released first, so both orders are raced.
            pair = (first, second) if i % 2 else (second, first)
            outcomes = _race(stores, *pair)
            unexpected = [o for o in outcomes if o != "ok" and not isinstance(o, RuleViolation)]
            assert not unexpected, (i, name, unexpected)
            assert outcomes.count("ok") == 1, (
                f"race {i} ({name}): both changes committed, or neither: {outcomes}")
            refused = next(o for o in outcomes if isinstance(o, RuleViolation))
            assert refused.violations[0].rule in ("MT009", "MT010"), (i, name, str(refused))
        assert _errors(stores[0]) == []
        assert time.monotonic() - started < 120
    finally:
        for store in stores:
            store.close()


def test_moving_the_web_call_phone_while_the_user_turns_multiterminal(db_url: str) -> None:
    """The move carries the user's Web Call position: whichever commits first, the store
    keeps MT009 (both may commit; a refusal is MT009's)."""
    count = 6
    stores = _prepared(db_url, count)
    try:
        for i in range(count):
            turn, move = _turn_multiterminal(f"u{i}"), _move_web_call_phone(_login(i))
            outcomes = _race(stores, *((turn, move) if i % 2 else (move, turn)))
            assert all(o == "ok" or (isinstance(o, RuleViolation)
                                     and o.violations[0].rule == "MT009") for o in outcomes), \
                (i, outcomes)
        assert _errors(stores[0]) == []
    finally:
        for store in stores:
            store.close()


def _turn_multiterminal(user: str) -> Change:
    return lambda conn: users.update_user(conn, actor="a", username=user, change=UserUpdate(
        webcall_mode="multiterminal", webcall_position=1))


def _move_web_call_phone(login: str) -> Change:
    return lambda conn: phones.update_phone(conn, actor="b", number=login, position=1,
                                            change=PhoneUpdate(position=3))


def _cli(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*MTCTL, "--db", url, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_racing_cli_processes_leave_a_clean_store(db_url: str) -> None:
    """The issue's reproduction, with real processes: user set & phone rm, then check."""
    count = 4
    for store in _prepared(db_url, count):
        store.close()
    for i in range(count):
        user = _cli(db_url, "user", "set", f"u{i}", "--webcall-mode", "multiterminal",
                    "--webcall-position", "1")
        if i % 2:
            rm = _cli(db_url, "phone", "rm", _login(i), "1")
        else:
            rm = _cli(db_url, "phone", "set", _login(i), "1", "--order", "0")
        results = [(p.wait(60), *p.communicate()) for p in (user, rm)]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        refused = next(err for code, _, err in results if code == 1)
        assert refused.startswith("mtctl: error: MT009 ") and "Traceback" not in refused
        assert refused.count("\n") == 1, refused
    check = subprocess.run([*MTCTL, "--db", db_url, "check"], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "MT009" not in check.stdout + check.stderr


def test_overlapping_rotations_beside_racing_writes(db_url: str) -> None:
    """Two `keys rotate` runs (FOR UPDATE SKIP LOCKED batches) and rule-checked writers at
    once: nobody deadlocks or waits out a timeout, every due key is rotated exactly once."""
    count = 40
    stores = _prepared(db_url, count)
    with stores[0].write() as conn:
        for i in range(count):
            phones.add_phone(conn, actor="t", number=_login(i), position=2,
                             model="VIVAit Call Business Android", secure=True)
            phones.add_phone(conn, actor="t", number=_pool(i), position=3,
                             model="VIVAit Call Business Android", secure=True)
        # Every secure key expired yesterday: all are due.
        conn.execute(update(phone).where(phone.c.secure.is_(True)).values(
            key_expires_at=datetime.now(UTC) - timedelta(days=1)))
    rotation_stores = (open_store(db_url), open_store(db_url))
    reports: list[object] = [None, None]
    barrier = threading.Barrier(3)

    def rotate(slot: int) -> None:
        barrier.wait()
        try:
            reports[slot] = rotate_due_keys(rotation_stores[slot], actor="cron",
                                            now=lambda: datetime.now(UTC),
                                            within=timedelta(days=7), batch_size=5)
        except BaseException as exc:  # noqa: BLE001
            reports[slot] = exc

    threads = [threading.Thread(target=rotate, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    try:
        for i in range(count):
            outcomes = _race(stores, *_races(i)[1:])
            assert outcomes.count("ok") == 1, (i, outcomes)
        for thread in threads:
            thread.join(120)
        assert time.monotonic() - started < 60  # no lock waited out its 10 s timeout
        for report in reports:
            assert not isinstance(report, BaseException), report
            assert report.failed == [], report.failed  # type: ignore[attr-defined]
        rotated = sum(report.count for report in reports)  # type: ignore[attr-defined]
        with stores[0].read() as conn:
            due = conn.execute(select(phone.c.id).where(
                phone.c.secure.is_(True),
                phone.c.key_expires_at <= datetime.now(UTC))).all()
        assert due == []
        assert rotated == 2 * count
        assert _errors(stores[0]) == []
    finally:
        for store in (*stores, *rotation_stores):
            store.close()


def test_a_writer_waiting_too_long_is_told_the_store_is_busy(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write lock held past the timeout: exit 5 saying the store is busy (not to upgrade
    it), and the waiting command changed nothing."""
    from mtctl.store import db
    from tests.conftest import Mtctl

    monkeypatch.setattr(db, "PG_LOCK_TIMEOUT_MS", 300)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    stores = _prepared(db_url, 1)
    try:
        with stores[0].write() as conn:
            phones.update_phone(conn, actor="t", number=_login(0), position=0,
                                change=PhoneUpdate(order=2))
            result = Mtctl(db_url)("user", "set", "u0", "--name", "Someone Else")
        assert result.exit_code == 5, result.output
        assert result.stderr == ("mtctl: error: the store is busy: a lock was not granted in "
                                 "time — another mtctl is writing to the store; retry in a "
                                 "moment\n")
        with stores[1].read() as conn:
            assert users.get_user(conn, "u0")["display_name"] == "U 0"
    finally:
        for store in stores:
            store.close()


def test_stores_in_other_schemas_do_not_wait(backend: str, request: pytest.FixtureRequest,
                                            tmp_path: Path) -> None:
    """The PostgreSQL write lock is per schema: two stores in one database never block."""
    if backend != "postgresql":
        pytest.skip("SQLite stores are separate files")
    from mtctl.store.db import upgrade_store

    make = request.getfixturevalue("pg_schema")
    first, second = make(), make()
    upgrade_store(first)
    upgrade_store(second)
    one, two = open_store(first), open_store(second)
    try:
        with one.write() as conn:
            catalog.add_node(conn, actor="t", name="madrid")
            with two.write() as other:  # would wait out the lock timeout if shared
                catalog.add_node(other, actor="t", name="lisbon")
    finally:
        one.close()
        two.close()
