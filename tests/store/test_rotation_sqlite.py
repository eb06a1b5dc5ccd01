"""Key rotation's SQLite batch writes what the general path (PostgreSQL's) writes, to the byte.

Two copies of one store, one rotated each way with the same clock and the same passwords:
every phone's key columns, every audit row and the reports must be the same. The store mixes
what a batch meets: expired keys, missing keys, keys waiting for a previous key's grace window,
two key lifetimes (so a batch has two expiries), and a template whose lifetime is out of range.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select, text, update

from mtctl.domain import keys as domain_keys
from mtctl.domain.config_keys import MAX_LIFETIME_DAYS
from mtctl.store import keys_sqlite
from mtctl.store.db import open_store
from mtctl.store.keys import RotationReport, rotate_due_keys
from mtctl.store.tables import audit_log, phone, setting, template
from tests.bulk import make_due_phones

NOW = datetime(2030, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _store(migrated: Path, path: Path, grace_days: int | None) -> str:
    shutil.copyfile(migrated, path)
    url = f"sqlite:///{path}"
    make_due_phones(url, extensions=25, per_extension=4)  # 100 phones, keys expired
    engine = create_engine(url)
    with engine.begin() as conn:
        if grace_days is not None:
            conn.execute(insert(setting).values(key="keys.grace_days", value=str(grace_days)))
        short = conn.execute(insert(template).values(name="short", key_lifetime_days=30)
                             ).inserted_primary_key[0]
        broken = conn.execute(insert(template).values(
            name="broken", key_lifetime_days=MAX_LIFETIME_DAYS + 1)).inserted_primary_key[0]
        ids = conn.execute(select(phone.c.id).order_by(phone.c.id)).scalars().all()
        conn.execute(update(phone).where(phone.c.id.in_(ids[::3])).values(template_id=short))
        conn.execute(update(phone).where(phone.c.id == ids[10]).values(template_id=broken))
        conn.execute(update(phone).where(phone.c.id.in_(ids[1::7])).values(
            ha1=None, ha1_sha256=None, key_expires_at=None, key_updated_at=None,
            prev_ha1="1" * 32, prev_ha1_sha256="1" * 64,
            prev_key_valid_until=NOW - timedelta(days=1)))
        conn.execute(update(phone).where(phone.c.id.in_(ids[2::9])).values(
            prev_ha1="2" * 32, prev_ha1_sha256="2" * 64,
            prev_key_valid_until=NOW + timedelta(days=2)))  # waits for the grace window
        conn.execute(update(phone).where(phone.c.id.in_(ids[4::11])).values(
            key_expires_at=NOW + timedelta(days=3),  # inside the 7-day window
            key_updated_at=NOW - timedelta(days=87)))
    engine.dispose()
    return url


def _rotate(url: str, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> RotationReport:
    counter = itertools.count()
    monkeypatch.setattr(domain_keys, "new_passwords",
                        lambda n: [f"password-{next(counter):027d}" for _ in range(n)])
    monkeypatch.setattr(keys_sqlite, "usable", lambda: fast)
    store = open_store(url)
    try:
        return rotate_due_keys(store, actor="cron", now=lambda: NOW, within=timedelta(days=7),
                               batch_size=7)
    finally:
        store.close()


def _contents(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        phones = [tuple(row) for row in conn.execute(text(
            "SELECT *, typeof(ha1), typeof(ha1_sha256) FROM phone ORDER BY id"))]
        audits = [tuple(row) for row in conn.execute(
            select(audit_log.c.at, audit_log.c.actor, audit_log.c.action, audit_log.c.object,
                   audit_log.c.changes).order_by(audit_log.c.object, audit_log.c.id))]
    engine.dispose()
    return phones, audits


@pytest.mark.parametrize("grace_days", [None, 0])
def test_the_sqlite_batch_writes_what_the_general_path_writes(tmp_path, monkeypatch,
                                                             migrated_sqlite, grace_days):
    assert keys_sqlite.usable(), "this SQLite lacks UPDATE ... FROM or JSON"
    _store(migrated_sqlite, tmp_path / "store.db", grace_days)
    shutil.copyfile(tmp_path / "store.db", tmp_path / "fast.db")
    shutil.copyfile(tmp_path / "store.db", tmp_path / "general.db")
    fast_url, general_url = (f"sqlite:///{tmp_path / name}" for name in ("fast.db", "general.db"))
    fast = _rotate(fast_url, monkeypatch, fast=True)
    general = _rotate(general_url, monkeypatch, fast=False)
    assert fast.as_dict() == general.as_dict()
    assert fast.waiting == general.waiting > 0
    assert 0 < fast.count < 100
    assert [f["error"] for f in fast.failed] == [
        f"its template's key lifetime ({MAX_LIFETIME_DAYS + 1} days) is out of range; see: "
        "mtctl check"]
    fast_phones, fast_audits = _contents(fast_url)
    assert (fast_phones, fast_audits) == _contents(general_url)
    assert len(fast_audits) == fast.count
    # Within a batch, each expiry's audit rows come in the order of the phones' ids.
    engine = create_engine(fast_url)
    with engine.connect() as conn:
        written = conn.execute(text(
            "SELECT a.id, a.changes, p.id FROM audit_log AS a JOIN extension AS e "
            "JOIN phone AS p ON p.extension_id = e.id "
            "AND a.object = 'phone ' || e.number || ':' || p.position "
            "WHERE a.action = 'rotate-key' ORDER BY a.id")).all()
    engine.dispose()
    by_expiry: dict[str, list[int]] = {}
    for _, changes, phone_id in written:
        by_expiry.setdefault(json.loads(changes)["key_expires_at"][1], []).append(phone_id)
    assert len(by_expiry) == 2 and all(ids == sorted(ids) for ids in by_expiry.values())
    assert {row[-2:] for row in fast_phones} == {("text", "text")}
    # Each new key is the digest pair of one of the passwords handed out.
    rotated = [row for row in fast_phones if row[13] not in (None, "0" * 32)]
    assert len(rotated) == fast.count
    for row in rotated:
        assert row[13:15] in {domain_keys.digests(row[12], "pbx.example.com",
                                                  f"password-{i:027d}") for i in range(100)}



def test_a_run_puts_back_sqlites_checkpoint_setting_and_leaves_no_thread(tmp_path, monkeypatch,
                                                                     migrated_sqlite):
    url = _store(migrated_sqlite, tmp_path / "store.db", None)
    threads = threading.active_count()
    store = open_store(url)
    try:
        report = rotate_due_keys(store, actor="cron", now=lambda: NOW,
                                 within=timedelta(days=7), batch_size=7)
        assert report.count > 0
        with closing(store.engine.raw_connection()) as raw:
            assert raw.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        store.close()
    assert threading.active_count() == threads
