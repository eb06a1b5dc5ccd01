"""Key rotation never strands a device, and rotates each due phone exactly once per due period.

Random lifetimes, windows (often at least the lifetime) and grace periods; overlapping runs,
interrupted runs and SIGKILLed `mtctl keys rotate` processes; a clock moved by hand. Each phone
has one device that holds the key it last fetched: provisioning serves the phone's current HA1
(tests/test_serve.py checks the payload carries exactly that). After every step, every
device's key must be the current key or a previous key inside its grace window, unless the
grace period that began when its key was rotated out is over.

More cases: MTCTL_ROTATION_CASES=N (a multiplier, default 1); another seed:
MTCTL_ROTATION_SEED=S. A failure names the seed and case that reproduce it.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select, update

from mtctl.store.audit import as_utc
from mtctl.store.db import open_store, upgrade_store
from mtctl.store.keys import rotate_due_keys
from mtctl.store.tables import (
    audit_log,
    extension,
    node,
    phone,
    phone_model,
    setting,
    template,
)

SCALE = int(os.environ.get("MTCTL_ROTATION_CASES", "1"))
SEED = int(os.environ.get("MTCTL_ROTATION_SEED", "20261130"))
START = datetime(2030, 1, 1, tzinfo=UTC)
DAY = 86_400


@pytest.fixture
def db_url_factory(backend, tmp_path, request):  # type: ignore[no-untyped-def]
    """Fresh migrated stores, one per case, on the test's backend."""
    counter = itertools.count()

    def make() -> str:
        if backend == "sqlite":
            path = tmp_path / f"case-{next(counter)}.db"
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
            return f"sqlite:///{path}"
        url = request.getfixturevalue("pg_schema")()
        upgrade_store(url)
        return url

    return make


@dataclass
class Case:
    """One random store: its key settings, its phones, and one device per phone."""

    rnd: random.Random
    name: str
    lifetime: int  # days
    window: int  # days, passed as --within
    grace: int  # days
    now: datetime = START
    held: dict[int, str | None] = field(default_factory=dict)  # phone id -> digest it holds
    # When the key a device holds stopped being current, its grace ends here (None: current).
    deadline: dict[int, datetime | None] = field(default_factory=dict)
    # When each phone was rotated, and whether that retired a key (rather than fill a gap).
    rotations: dict[int, list[tuple[datetime, bool]]] = field(default_factory=dict)

    def why(self) -> str:
        return (f"{self.name} (lifetime {self.lifetime}, window {self.window}, grace "
                f"{self.grace}, now {self.now.isoformat()})")


def _hex(rnd: random.Random, digits: int) -> str:
    return f"{rnd.getrandbits(4 * digits):0{digits}x}"


def _build(url: str, case: Case, phones: int) -> None:
    """PHONES secure app phones in random key states at START, and what their devices hold."""
    rnd, lifetime = case.rnd, timedelta(days=case.lifetime)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(setting), [
            {"key": "sip.domain", "value": "pbx.example.com"},
            {"key": "keys.lifetime_days", "value": str(case.lifetime)},
            {"key": "keys.grace_days", "value": str(case.grace)}])
        # Written straight in, as an old store might hold it: no guard on window vs lifetime.
        conn.execute(update(template).values(key_lifetime_days=case.lifetime))
        node_id = conn.execute(insert(node).values(name="n1")).inserted_primary_key[0]
        model_id = conn.execute(select(phone_model.c.id).where(
            phone_model.c.name == "VIVAit Call Business Android")).scalar_one()
        template_id = conn.execute(select(template.c.id).where(
            template.c.name == "default")).scalar_one()
        numbers = [str(70000 + i) for i in range((phones + 3) // 4)]
        conn.execute(insert(extension), [{"number": n, "node_id": node_id} for n in numbers])
        ids = dict(conn.execute(select(extension.c.number, extension.c.id)).all())
        rows = []
        for i in range(phones):
            number, position = numbers[i // 4], i % 4
            expires = START + timedelta(seconds=rnd.randint(-2 * case.lifetime * DAY,
                                                            case.lifetime * DAY))
            row = {"extension_id": ids[number], "node_id": node_id, "position": position,
                   "model_id": model_id, "template_id": template_id, "secure": True,
                   "sip_auth_user": f"{number}-{position}", "ha1": _hex(rnd, 32),
                   "ha1_sha256": _hex(rnd, 64), "key_expires_at": expires,
                   "key_updated_at": expires - lifetime, "prev_ha1": None,
                   "prev_ha1_sha256": None, "prev_key_valid_until": None}
            if case.grace and rnd.random() < 0.3:  # rotated lately: a previous key in grace
                row |= {"prev_ha1": _hex(rnd, 32), "prev_ha1_sha256": _hex(rnd, 64),
                        "prev_key_valid_until": START + timedelta(
                            seconds=rnd.randint(1, case.grace * DAY))}
            if rnd.random() < 0.05:  # a secure phone that lost its key
                row |= {"ha1": None, "ha1_sha256": None}
            rows.append(row)
        conn.execute(insert(phone), rows)
        for pid, ha1, prev, until in conn.execute(
                select(phone.c.id, phone.c.ha1, phone.c.prev_ha1, phone.c.prev_key_valid_until)):
            holds_prev = prev is not None and (ha1 is None or rnd.random() < 0.5)
            case.held[pid] = prev if holds_prev else ha1
            case.deadline[pid] = as_utc(until) if holds_prev else None
            case.rotations[pid] = []
    engine.dispose()


@dataclass(frozen=True)
class Key:
    object: str
    ha1: str | None
    prev_ha1: str | None
    prev_until: datetime | None
    expires: datetime | None
    updated: datetime | None


def _state(url: str) -> tuple[dict[int, Key], Counter[str]]:
    """Every phone's key columns, and how many rotate-key audit rows each phone has."""
    engine = create_engine(url)
    with engine.connect() as conn:
        keys = {row.id: Key(f"phone {row.number}:{row.position}", row.ha1, row.prev_ha1,
                            as_utc(row.prev_key_valid_until), as_utc(row.key_expires_at),
                            as_utc(row.key_updated_at))
                for row in conn.execute(
                    select(phone.c.id, extension.c.number, phone.c.position, phone.c.ha1,
                           phone.c.prev_ha1, phone.c.prev_key_valid_until,
                           phone.c.key_expires_at, phone.c.key_updated_at)
                    .join(extension, extension.c.id == phone.c.extension_id))}
        audits = Counter(dict(conn.execute(
            select(audit_log.c.object, func.count()).where(audit_log.c.action == "rotate-key")
            .group_by(audit_log.c.object)).all()))
    engine.dispose()
    return keys, audits


def _due(key: Key, now: datetime, window: timedelta) -> bool:
    """The rotation rule as README states it, written independently of the SQL."""
    if key.ha1 is None:
        return True
    if key.prev_ha1 is not None and key.prev_until is not None and key.prev_until > now:
        return False  # a device may still hold the previous key
    if key.expires is None:
        return True
    if key.expires > now + window:
        return False
    return key.expires <= now or key.updated is None or key.updated < key.expires - window


def _accepted(held: str | None, key: Key, now: datetime) -> bool:
    """What the proxy accepts (the subscriber and subscriber_prev views)."""
    if held is None:
        return False
    return held == key.ha1 or (held == key.prev_ha1 and key.prev_until is not None
                               and key.prev_until > now)


def _check_devices(case: Case, keys: dict[int, Key]) -> None:
    for pid, held in case.held.items():
        if _accepted(held, keys[pid], case.now):
            continue
        deadline = case.deadline[pid]
        assert held is None or (deadline is not None and case.now >= deadline), (
            f"{keys[pid].object}: its device is locked out before its grace ended "
            f"({deadline}): {case.why()}")


def _fetch(case: Case, keys: dict[int, Key]) -> None:
    """Some devices fetch their provisioning: the current key, from now on theirs."""
    for pid in case.held:
        if case.rnd.random() < 0.4 and keys[pid].ha1 is not None:
            case.held[pid], case.deadline[pid] = keys[pid].ha1, None


def _rotate_in_process(url: str, case: Case, *, stop_after: int | None = None,
                       batch_size: int = 7) -> None:
    """One run at the case's clock; STOP_AFTER batches, it stops as a killed run would."""
    done = 0

    def progress(_count: int) -> None:
        nonlocal done
        done += 1
        if stop_after is not None and done >= stop_after:
            raise _Stopped

    store = open_store(url)
    try:
        report = rotate_due_keys(store, actor="cron", now=lambda: case.now,
                                 within=timedelta(days=case.window), batch_size=batch_size,
                                 collect=False, progress=progress)
        assert report.failed == [], case.why()
    except _Stopped:
        pass
    finally:
        store.close()


class _Stopped(Exception):
    pass


def _rotate_process(url: str, case: Case, batch_size: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mtctl", "--db", url, "--actor", "cron", "keys", "rotate",
         "--within", str(case.window), "--batch-size", str(batch_size)],
        env=os.environ | {"MTCTL_TEST_NOW": case.now.isoformat()},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rotated_so_far(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(audit_log)
                            .where(audit_log.c.action == "rotate-key")).scalar_one()


def _kill_mid_run(url: str, case: Case, due: int) -> bool:
    """SIGKILL a run as soon as it has committed a batch: True if it still had work left."""
    engine = create_engine(url)
    try:
        before = _rotated_so_far(engine)
        proc = _rotate_process(url, case, 3)
        deadline = time.monotonic() + 60
        while (proc.poll() is None and _rotated_so_far(engine) == before
               and time.monotonic() < deadline):
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        rotated = _rotated_so_far(engine) - before
        return proc.returncode == -signal.SIGKILL and 0 < rotated < due
    finally:
        engine.dispose()


def _overlapping_runs(url: str, case: Case, processes: bool, due: int) -> int:
    """A run killed mid-way; two or three runs at once, some cut short; one run to the end.

    Returns how many runs were killed with work left (processes only).
    """
    rnd, kills = case.rnd, 0
    runs = rnd.randint(2, 3)
    if processes:
        kills += _kill_mid_run(url, case, due)
        procs = [_rotate_process(url, case, rnd.choice((3, 10, 40))) for _ in range(runs)]
        victims = rnd.sample(procs, rnd.randint(1, runs))
        time.sleep(rnd.uniform(0.3, 1.2))  # start-up takes most of this
        for proc in victims:
            time.sleep(rnd.uniform(0, 0.05))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            if proc.returncode != -signal.SIGKILL:
                assert proc.returncode == 0 and out == "" and err == "", (err, case.why())
    else:
        threads = [threading.Thread(target=_rotate_in_process, args=(url, case), kwargs={
            "stop_after": rnd.choice((None, 1, 2, 5)), "batch_size": rnd.choice((1, 3, 7, 50))})
            for _ in range(runs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    _rotate_in_process(url, case, batch_size=rnd.choice((1, 5, 1000)))
    return kills


def _step(url: str, case: Case, processes: bool) -> int:
    """Move the clock, let devices fetch, rotate at once from several runs; check it all."""
    rnd = case.rnd
    longest = max(case.lifetime, case.grace, case.window) + 1
    case.now += timedelta(seconds=rnd.choice((0, rnd.randint(1, DAY),
                                              rnd.randint(1, longest * DAY))))
    before, audits_before = _state(url)
    _check_devices(case, before)  # time alone must not lock a device out early
    _fetch(case, before)
    window = timedelta(days=case.window)
    due = {pid for pid, key in before.items() if _due(key, case.now, window)}
    kills = _overlapping_runs(url, case, processes, len(due))
    after, audits_after = _state(url)
    rotated = {pid for pid, key in after.items()
               if audits_after[key.object] != audits_before[key.object]}
    assert rotated == due, f"rotated {len(rotated)} phones, {len(due)} due: {case.why()}"
    for pid in rotated:
        key = after[pid]
        assert audits_after[key.object] - audits_before[key.object] == 1, case.why()
        assert key.ha1 not in (before[pid].ha1, before[pid].prev_ha1), case.why()
        assert key.updated == case.now, case.why()
        case.rotations[pid].append((case.now, before[pid].ha1 is not None))
        if case.held[pid] == before[pid].ha1 and before[pid].ha1 is not None:
            case.deadline[pid] = case.now + timedelta(days=case.grace)
    for pid in set(after) - rotated:
        assert (after[pid].ha1, after[pid].updated) == (before[pid].ha1, before[pid].updated)
    _check_devices(case, after)
    return kills


def _check_spacing(case: Case) -> None:
    """Exactly once per due period: rotations of a phone are at least one due period apart."""
    period = case.lifetime - case.window if case.lifetime > case.window else case.lifetime
    for pid, times in case.rotations.items():
        for (earlier, retired), (later, _) in zip(times, times[1:], strict=False):
            # A retired key's grace window holds the next rotation off as well.
            gap = timedelta(days=max(period, case.grace if retired else 0))
            assert later - earlier >= gap, f"phone {pid}: {earlier} then {later}: {case.why()}"


def _run_case(url: str, index: int, *, phones: int, steps: int, processes: bool) -> int:
    rnd = random.Random(f"{SEED}-{index}-{processes}")
    lifetime = rnd.randint(1, 20)
    # Often at least the lifetime: what an old store or `--within` may ask for.
    window = rnd.choice((0, rnd.randint(1, lifetime), rnd.randint(lifetime, 3 * lifetime)))
    case = Case(rnd, f"seed {SEED} case {index}", lifetime, window, rnd.choice(
        (0, rnd.randint(1, 14))))
    _build(url, case, phones)
    kills = 0
    for _ in range(steps):
        kills += _step(url, case, processes)
    _check_spacing(case)
    return kills


def test_rotation_never_strands_a_device_in_process(db_url_factory):
    for index in range(10 * SCALE):
        _run_case(db_url_factory(), index, phones=40, steps=5, processes=False)


@pytest.mark.slow
def test_rotation_never_strands_a_device_across_killed_processes(db_url_factory):
    kills = 0
    for index in range(2 * SCALE):
        kills += _run_case(db_url_factory(), index, phones=300, steps=3, processes=True)
    assert kills > 0, "no run was killed mid-way: the test proved nothing about kills"
