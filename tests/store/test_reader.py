"""The read layer (store/reader.py, straight on sqlite3/psycopg) reads exactly what the Core
path reads, on random stores, on both backends; and the hot commands never import SQLAlchemy.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mtctl.domain.ringing import Presence, ring_plan
from mtctl.domain.rules import Violation
from mtctl.errors import NotFound
from mtctl.store import reader as read_layer
from mtctl.store.db import HEAD_REVISION, open_store
from mtctl.store.phones import list_phones
from mtctl.store.revision import HEAD_REVISION as REVISION_MODULE_HEAD
from mtctl.store.ring import check_presence, ring_sessions, ring_target
from mtctl.store.rows import PHONE_COLUMNS
from mtctl.store.snapshots import phone_query
from mtctl.store.users import user_phones
from tests.conftest import Mtctl
from tests.e2e.pools import Store, store_toml
from tests.e2e.test_pool_agreement import random_store

ANDROID = "VIVAit Call Business Android"


def build(mtctl: Mtctl, tmp_path: Path, seed: int) -> Store:
    """A random store (pools, own Web Call extensions, multiterminal, plain extensions), some
    secure phones with keys, and some open Web Call sessions."""
    store = random_store(seed)
    path = tmp_path / "store.toml"
    path.write_text(store_toml(store), encoding="utf-8")
    mtctl.ok("config", "set", "sip.domain", "pbx.example.com")
    mtctl.ok("apply", str(path))
    rng = random.Random(seed)
    taken = {(p.ext, p.position) for p in store.phones}
    for number in store.names:
        if (number, 7) not in taken and rng.random() < 0.5:
            mtctl.ok("phone", "add", number, "--position", "7", "--model", ANDROID, "--secure",
                     "--order", str(rng.randint(0, 2)))
    for user in store.users:
        busy = set(store.sessions.values())
        free = [n for n in user.session_extensions(store.pool) if n not in busy]
        if free and rng.random() < 0.6:
            store.sessions[user.username] = rng.choice(free)
            mtctl.ok("webcall", "start", user.username, "--ext", store.sessions[user.username])
    return store


def test_the_phone_sql_selects_the_core_querys_columns() -> None:
    assert [c.name for c in phone_query().selected_columns] == list(PHONE_COLUMNS)
    assert REVISION_MODULE_HEAD == HEAD_REVISION


@pytest.mark.parametrize("seed", range(1, 13))
def test_the_read_layer_reads_what_the_core_path_reads(mtctl: Mtctl, tmp_path: Path,
                                                       seed: int) -> None:
    store = build(mtctl, tmp_path, seed)
    numbers = sorted(store.names)
    core_store = open_store(mtctl.url)
    try:
        with core_store.read() as conn, read_layer.reading(mtctl.url) as fast:
            assert fast is not None, "the read layer opens a plain, migrated store itself"
            for through in (fast, read_layer.over(conn)):  # alone, and inside a Core transaction
                for number in [*numbers, "000", "12a"]:
                    try:
                        expected = ring_target(conn, number)
                    except NotFound as exc:
                        with pytest.raises(NotFound) as raised:
                            through.ring_target(number)
                        assert str(raised.value) == str(exc)
                        with pytest.raises(NotFound):
                            through.list_phones(number)
                        continue
                    got = through.ring_target(number)
                    assert got == expected, number
                    assert read_layer.ring_sessions(through, got) == ring_sessions(conn, expected)
                    assert through.list_phones(number) == list_phones(conn, number=number)
                assert through.list_phones() == list_phones(conn)
                for user in store.users:
                    assert through.user_phones(user.username) == user_phones(conn, user.username)
                with pytest.raises(NotFound, match="unknown user 'nobody'"):
                    through.user_phones("nobody")
                assert through.sessions() == store.sessions
                for batch in (1, 2, 5, 1000):
                    every = list(through.ring_targets(batch=batch))
                    assert [t.number for t in every] == numbers
                    assert every == [ring_target(conn, n) for n in numbers]
    finally:
        core_store.close()


def test_presence_flags_are_checked_alike(seeded: Mtctl) -> None:
    core_store = open_store(seeded.url)
    try:
        with core_store.read() as conn, read_layer.reading(seeded.url) as fast:
            assert fast is not None
            target = fast.ring_target("40710")
            for presence in (Presence(offline=frozenset({("40710", 5)})),
                             Presence(webcall_extension="99999")):
                with pytest.raises(Exception) as core:  # noqa: PT011 - compared below
                    check_presence(conn, target, presence)
                with pytest.raises(type(core.value)) as quick:
                    read_layer.check_presence(fast, target, presence)
                assert str(quick.value) == str(core.value)
            read_layer.check_presence(fast, target, Presence(offline=frozenset({("40710", 0)})))
    finally:
        core_store.close()


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/missing.db", "sqlite:///{tmp}/not-a-store.db",
                                 "sqlite:///{tmp}/old.db", "sqlite:///{tmp}/x.db?mode=ro",
                                 "sqlite://", "mysql://h/db", "postgresql://nobody@127.0.0.1:1/x"])
def test_the_read_layer_leaves_every_odd_store_to_the_core_path(tmp_path: Path,
                                                               url: str) -> None:
    """Unusual URLs, missing or foreign files, old schemas: None, so that the Core path opens
    the store and reports what is wrong exactly as every other command does."""
    (tmp_path / "not-a-store.db").write_bytes(b"hello")
    import sqlite3

    old = sqlite3.connect(tmp_path / "old.db")
    old.execute("CREATE TABLE alembic_version (version_num TEXT)")
    old.execute("INSERT INTO alembic_version VALUES ('0001')")
    old.commit()
    old.close()
    assert read_layer.open_reader(url.format(tmp=tmp_path)) is None


def test_errors_through_the_read_layer_are_the_core_paths(mtctl: Mtctl, tmp_path: Path) -> None:
    """The same exit code and message for a store the read layer cannot open."""
    for args in (["ring-sim", "1"], ["phone", "list", "1"], ["user", "phones", "x"]):
        missing = f"sqlite:///{tmp_path / 'missing.db'}"
        result = run_cli(missing, *args)
        assert result.returncode == 5, result.stderr
        assert f"no store at {tmp_path / 'missing.db'}" in result.stderr
        assert "Traceback" not in result.stderr


def run_cli(url: str, *args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run([sys.executable, *flags, "-m", "mtctl", "--db", url, *args],  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=False)


def test_hot_commands_import_neither_sqlalchemy_nor_rich(seeded: Mtctl) -> None:
    """Start-up is a product target: ring-sim, phone list and user phones read through the
    driver and print JSON without Rich."""
    for args in (["ring-sim", "40710", "--json"], ["phone", "list", "40710", "--json"],
                 ["user", "phones", "ana", "--json"], ["ring-sim", "--all"]):
        result = run_cli(seeded.url, *args, importtime=True)
        assert result.returncode == 0, result.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                    if line.startswith("import time:")}
        assert not {m for m in imported if m.split(".")[0] in ("sqlalchemy", "rich")}, args
        json.loads(result.stdout.splitlines()[0] if args[-1] == "--all" else result.stdout)


def test_a_plan_from_the_read_layer_is_the_plan_ring_sim_prints(seeded: Mtctl) -> None:
    with read_layer.reading(seeded.url) as fast:
        assert fast is not None
        plan = ring_plan(fast.ring_target("40710"))
    printed = json.loads(seeded.ok("ring-sim", "40710", "--json").stdout)
    assert printed == plan.as_dict()


def core_check(conn: Any, now: datetime, within: timedelta) -> list[tuple[str, Violation]]:
    """check as the Core path made it: extensions by id, then users by id (the findings and
    their order that `mtctl check` has always printed)."""
    from sqlalchemy import select

    from mtctl.domain.ringing import can_ever_ring
    from mtctl.domain.rules import extension_violations, key_warnings, user_violations
    from mtctl.store.snapshots import extension_specs, user_specs
    from mtctl.store.tables import app_user, extension
    from mtctl.store.validate import value_findings
    from mtctl.store.webcall import invalid_sessions

    found: list[tuple[str, Violation]] = [("error", f) for f in value_findings(conn)]
    ids = list(conn.execute(select(extension.c.id).order_by(extension.c.id)).scalars())
    specs = extension_specs(conn, ids)
    for ext_id in ids:
        ext = specs[ext_id]
        found += [("error", p) for p in extension_violations(ext)]
        if not can_ever_ring(ext):
            found.append(("warning", Violation(
                "silent-extension", f"extension {ext.number}",
                "no phone can ring (every phone has order 0 or is disabled)"
                if ext.phones else "has no phones, so nothing rings",
                f"mtctl phone add {ext.number} ... or mtctl phone set {ext.number} POS "
                "--order 1")))
        found += [("warning", w) for w in key_warnings(ext.phones, now=now, within=within)]
    user_ids = list(conn.execute(select(app_user.c.id).order_by(app_user.c.id)).scalars())
    users = user_specs(conn, user_ids)
    needed = {i for _, named in users.values() for i in named}
    by_number = {spec.number: spec for spec in extension_specs(conn, needed).values()}
    for user_id in user_ids:
        found += [("error", p) for p in user_violations(users[user_id][0], by_number)]
    found += [("error", Violation(
        "webcall-session", f"webcall {s['user']}",
        f"session on {s['extension']}, which is not one of {s['user']}'s Web Call extensions",
        f"mtctl webcall stop {s['user']}")) for s in invalid_sessions(conn)]
    return found


@pytest.mark.parametrize("seed", range(1, 9))
def test_check_finds_what_the_core_path_found(mtctl: Mtctl, tmp_path: Path, seed: int) -> None:
    """Random stores broken behind mtctl's back (orders, Web Call phones, positions, users'
    Web Call settings, expiries): the same findings in the same order, in small batches."""
    from sqlalchemy import create_engine, text

    from mtctl.store import check

    build(mtctl, tmp_path, seed)
    rng = random.Random(seed)
    engine = create_engine(mtctl.url)
    with engine.begin() as conn:
        phone_ids = list(conn.execute(text("SELECT id FROM phone ORDER BY id")).scalars())
        conn.execute(text("UPDATE phone SET secure = false, publishable = true WHERE id = :i"),
                     {"i": phone_ids.pop()})  # MT005, at least
        for pid in rng.sample(phone_ids, k=len(phone_ids) // 3):
            conn.execute(text(rng.choice([
                "UPDATE phone SET ring_order = 0 WHERE id = :i",
                "UPDATE phone SET enabled = false WHERE id = :i",
                "UPDATE phone SET publishable = true WHERE id = :i",
                "UPDATE phone SET key_expires_at = NULL WHERE id = :i",
                "DELETE FROM phone WHERE id = :i",
            ])), {"i": pid})
        for uid in conn.execute(text("SELECT id FROM app_user")).scalars():
            if rng.random() < 0.5:
                conn.execute(text(rng.choice([
                    "UPDATE app_user SET webcall_position = 6 WHERE id = :i",
                    "UPDATE app_user SET webcall_license = 'pool' WHERE id = :i",
                    "UPDATE app_user SET webcall_mode = 'multiterminal' WHERE id = :i",
                ])), {"i": uid})
    engine.dispose()
    now, within = datetime.now(UTC), timedelta(days=7)
    core_store = open_store(mtctl.url)
    try:
        with core_store.read() as conn:
            expected = core_check(conn, now, within)
            assert any(severity == "error" for severity, _ in expected)
            for batch in (1, 3, 2000):
                check.BATCH = batch
                assert list(check.check_store(conn, now=now, rotate_within=within)) == expected
    finally:
        check.BATCH = 2000
        core_store.close()
