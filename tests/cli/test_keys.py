"""Secure keys: generation, listing, and rotation for cron (SPEC §4)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, delete, func, insert, select, update

from mtctl.domain import keys as domain_keys
from mtctl.store.tables import audit_log, phone, setting, template
from tests.bulk import make_due_phones
from tests.dump import plant


def _rows(url: str):
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(phone.c.sip_auth_user, phone.c.ha1, phone.c.key_expires_at)
                            .order_by(phone.c.sip_auth_user)).all()
    engine.dispose()
    return rows


def _rotation_audits(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.object, func.count())
                            .where(audit_log.c.action == "rotate-key")
                            .group_by(audit_log.c.object)).all()
    engine.dispose()
    return dict(rows)


def _age_keys(url: str, *, days_left: float = 3) -> None:
    """Every key issued 90 days before it expires, DAYS_LEFT from now: inside a 7-day window."""
    expires = datetime.now(UTC) + timedelta(days=days_left)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(phone).values(key_expires_at=expires,
                                          key_updated_at=expires - timedelta(days=90)))
    engine.dispose()


def _add_android(mtctl, position=2, *extra):
    return mtctl.ok("phone", "add", "40710", "--position", str(position), "--model",
                    "VIVAit Call Business Android", "--secure", "--order", "3", *extra)


def test_a_secure_phone_gets_a_key_that_expires_in_90_days(seeded):
    _add_android(seeded)
    shown = json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)
    expires = datetime.fromisoformat(shown["key_expires_at"])
    assert shown["has_key"] is True
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    assert "ha1" not in shown and "ha1_sha256" not in shown


def test_a_template_key_lifetime_overrides_the_default(seeded):
    seeded.ok("template", "add", "mobile", "--key-lifetime", "30")
    _add_android(seeded, 2, "--template", "mobile")
    shown = json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)
    left = datetime.fromisoformat(shown["key_expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29) < left <= timedelta(days=30)


def test_keys_list_shows_expiring_keys_and_never_a_digest(seeded, db_url):
    _add_android(seeded, 2)
    _add_android(seeded, 3)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(phone).where(phone.c.sip_auth_user == "40710-3")
                     .values(key_expires_at=datetime.now(UTC) + timedelta(days=2)))
    engine.dispose()
    listed = json.loads(seeded.ok("keys", "list", "--json").stdout)
    assert [(k["position"], k["state"]) for k in listed] == [(3, "expiring"), (2, "ok")]
    expiring = json.loads(seeded.ok("keys", "list", "--expiring-within", "7", "--json").stdout)
    assert [k["position"] for k in expiring] == [3]
    ha1 = _rows(db_url)[-1].ha1
    assert ha1 not in seeded.ok("keys", "list", "--json").stdout


def test_keys_list_does_not_call_a_secure_desk_phone_that_never_fetched_ok(seeded, db_url):
    """SPEC §9: such a phone has no usable key; keys list says so, as check does."""
    seeded.ok("phone", "set", "40710", "0", "--secure", "--mac", "00:56:2b:04:36:15")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Yealink T54W",
              "--secure", "--mac", "80:5e:c0:12:34:56")
    _add_android(seeded, 3)

    def states() -> dict[int, str]:
        return {k["position"]: k["state"]
                for k in json.loads(seeded.ok("keys", "list", "--json").stdout)}

    def never() -> set[str]:
        found = json.loads(seeded("check", "--json").stdout)["warnings"]
        return {w["object"] for w in found if w["rule"] == "never-provisioned"}

    assert states() == {0: "never-provisioned", 2: "never-provisioned", 3: "ok"}
    assert never() == {"phone 40710:0", "phone 40710:2"}
    plant(db_url, update(phone).where(phone.c.sip_auth_user == "40710-0")  # as a fetch leaves it
          .values(key_delivered_at=datetime.now(UTC), key_delivered_to="192.0.2.7"))
    assert states() == {0: "ok", 2: "never-provisioned", 3: "ok"}
    assert never() == {"phone 40710:2"}
    plain = seeded.ok("keys", "list", "--fields", "extension,position,state").stdout
    assert plain.splitlines()[1:] == ["40710\t0\tok", "40710\t2\tnever-provisioned",
                                      "40710\t3\tok"]
    # a phone with no usable key needs attention now, whatever its row's expiry says
    soon = json.loads(seeded.ok("keys", "list", "--expiring-within", "7", "--json").stdout)
    assert [(k["position"], k["state"]) for k in soon] == [(2, "never-provisioned")]


def test_rotate_replaces_only_due_keys_silently_and_audits_each(seeded, db_url):
    _add_android(seeded, 2)
    _add_android(seeded, 3)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(phone).where(phone.c.sip_auth_user == "40710-3")
                     .values(key_expires_at=datetime.now(UTC) - timedelta(days=1)))
    engine.dispose()
    before = {r.sip_auth_user: r.ha1 for r in _rows(db_url)}
    result = seeded.ok("keys", "rotate")
    assert result.stdout == "" and result.stderr == ""
    after = {r.sip_auth_user: r.ha1 for r in _rows(db_url)}
    assert after["40710-3"] != before["40710-3"]
    assert after["40710-2"] == before["40710-2"]
    assert _rotation_audits(db_url) == {"phone 40710:3": 1}
    # Rotated now, so a second run has nothing to do.
    assert json.loads(seeded.ok("keys", "rotate", "--json").stdout)["rotated"] == []


def test_rotate_dry_run_lists_due_phones_and_changes_nothing(seeded, db_url):
    _add_android(seeded, 2)
    _age_keys(db_url, days_left=20)
    before = _rows(db_url)
    assert json.loads(seeded.ok("keys", "rotate", "--dry-run", "--json").stdout)["rotated"] == []
    report = json.loads(seeded.ok("keys", "rotate", "--within", "30", "--dry-run",
                                  "--json").stdout)
    assert report["dry_run"] is True
    assert [(r["extension"], r["position"]) for r in report["rotated"]] == [("40710", 2)]
    assert _rows(db_url) == before
    assert _rotation_audits(db_url) == {}


def test_rotate_dry_run_prints_the_due_phones_on_stdout_and_the_count_on_stderr(seeded,
                                                                                db_url):
    """The due phones are what --dry-run asks for: `| wc -l` and `| grep` see them (SPEC §12)."""
    seeded.ok("phone", "set", "40710", "0", "--secure", "--mac", "00:56:2b:04:36:15")
    _add_android(seeded, 2)
    _add_android(seeded, 3)
    _age_keys(db_url, days_left=20)
    before = _rows(db_url)
    for extra in ((), ("--verbose",)):
        r = seeded.ok("keys", "rotate", "--within", "30", "--dry-run", *extra)
        assert r.stdout == ("extension\tposition\trenewal\n"
                            "40710\t0\ton-fetch\n"
                            "40710\t2\trotate\n"
                            "40710\t3\trotate\n"), extra
        assert r.stderr == ("2 key(s) due, 0 failed\n"
                            "1 desk phone key(s) due on fetch: the next fetch brings a new key\n"
                            ), extra
    r = seeded.ok("keys", "rotate", "--dry-run")  # nothing due within 7 days: the header only
    assert (r.stdout, r.stderr) == ("extension\tposition\trenewal\n",
                                    "0 key(s) due, 0 failed\n")
    r = seeded.ok("keys", "rotate", "--within", "30", "--dry-run", "--json")
    assert r.stderr == "" and json.loads(r.stdout)["count"] == 2
    assert _rows(db_url) == before and _rotation_audits(db_url) == {}
    # A real rotation is still silent on success; --verbose tells on stderr what it did.
    r = seeded.ok("keys", "rotate", "--within", "30", "--verbose")
    assert r.stdout == "" and "rotated: phone 40710:2" in r.stderr


def test_rotate_exits_1_and_says_which_phone_failed(seeded, db_url, monkeypatch):
    _add_android(seeded, 2)
    _add_android(seeded, 3)
    real = domain_keys.digests

    def flaky(auth_user, realm, password):
        if auth_user == "40710-2":
            raise RuntimeError("entropy source gone")
        return real(auth_user, realm, password)

    real_columns = domain_keys.digest_columns

    def flaky_columns(auth_users, realm, passwords):  # many keys at once (SQLite)
        if "40710-2" in auth_users:
            raise RuntimeError("entropy source gone")
        return real_columns(auth_users, realm, passwords)

    monkeypatch.setattr(domain_keys, "digests", flaky)
    monkeypatch.setattr(domain_keys, "digest_columns", flaky_columns)
    _age_keys(db_url)
    result = seeded("keys", "rotate")
    assert result.exit_code == 1, result.output
    assert "phone 40710:2" in result.stderr and "failed" in result.stderr
    assert _rotation_audits(db_url) == {"phone 40710:3": 1}


def test_rotate_refuses_bad_numbers(seeded):
    result = seeded("keys", "rotate", "--limit", "0")
    assert result.exit_code == 2, result.output
    assert "mtctl: error:" in result.stderr


def _rotate_process(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mtctl", "--db", url, "--actor", "cron", "keys", "rotate",
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_overlapping_rotations_rotate_every_due_phone_exactly_once(db_url):
    make_due_phones(db_url, extensions=500, per_extension=4)  # 2,000 due phones
    runs = [_rotate_process(db_url, "--batch-size", "100") for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert out == "" and err == ""
    audits = _rotation_audits(db_url)
    assert len(audits) == 2000
    assert set(audits.values()) == {1}
    assert all(r.ha1 != "0" * 32 for r in _rows(db_url))


@pytest.mark.slow
def test_a_killed_rotation_leaves_no_phone_half_rotated_and_a_rerun_finishes(db_url):
    make_due_phones(db_url, extensions=5000, per_extension=4)  # 20,000 due phones
    run = _rotate_process(db_url, "--batch-size", "200")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _rotation_audits(db_url):
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    audits = _rotation_audits(db_url)
    rows = _rows(db_url)
    rotated = {r.sip_auth_user for r in rows if r.ha1 != "0" * 32}
    assert 0 < len(audits) < 20000, "the kill should land mid-run"
    # Whole batches only: a phone has a new key exactly when it has its audit row.
    assert {obj.removeprefix("phone ").replace(":", "-") for obj in audits} == rotated
    still_due = [r for r in rows if r.ha1 == "0" * 32]
    assert all(r.key_expires_at is not None for r in still_due)
    rerun = _rotate_process(db_url)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    audits = _rotation_audits(db_url)
    assert len(audits) == 20000 and set(audits.values()) == {1}


def test_rotation_keeps_the_previous_key_valid_for_the_grace_period(seeded, db_url):
    _add_android(seeded, 2)
    old_ha1 = {r.sip_auth_user: r.ha1 for r in _rows(db_url)}["40710-2"]
    _age_keys(db_url)
    seeded.ok("keys", "rotate")
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(phone).where(phone.c.sip_auth_user == "40710-2")).one()
    assert row.prev_ha1 == old_ha1 != row.ha1
    until = row.prev_key_valid_until.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < until <= timedelta(days=7)
    listed = json.loads(seeded.ok("keys", "list", "--json").stdout)
    assert listed[0]["previous_key_valid_until"] is not None
    assert old_ha1 not in json.dumps(listed)
    # Once the grace period is over, the next run forgets the previous key.
    with engine.begin() as conn:
        conn.execute(update(phone).values(prev_key_valid_until=datetime.now(UTC)
                                          - timedelta(seconds=1)))
    seeded.ok("keys", "rotate")
    with engine.connect() as conn:
        row = conn.execute(select(phone).where(phone.c.sip_auth_user == "40710-2")).one()
    engine.dispose()
    assert row.prev_ha1 is None and row.prev_key_valid_until is None


def test_a_zero_grace_period_keeps_no_previous_key(seeded, db_url):
    _add_android(seeded, 2)
    seeded.ok("config", "set", "keys.grace_days", "0")
    _age_keys(db_url)
    seeded.ok("keys", "rotate")
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(phone).where(phone.c.sip_auth_user == "40710-2")).one()
    engine.dispose()
    assert row.prev_ha1 is None and row.prev_key_valid_until is None


def _phone_row(url: str, auth_user: str = "40710-2"):
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(select(phone).where(phone.c.sip_auth_user == auth_user)).one()
    engine.dispose()
    return row


def _short_lived_keys(url: str, *, lifetime_days: int, grace_days: int) -> None:
    """An old store's settings, written straight in: no guard between window and lifetime."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(template).values(key_lifetime_days=lifetime_days))
        conn.execute(delete(setting).where(setting.c.key == "keys.grace_days"))
        conn.execute(insert(setting).values(key="keys.grace_days", value=str(grace_days)))
    engine.dispose()


def test_a_window_longer_than_the_lifetime_rotates_each_key_once_per_due_period(
        seeded, db_url, monkeypatch):
    _add_android(seeded, 2)
    _short_lived_keys(db_url, lifetime_days=5, grace_days=0)
    _age_keys(db_url, days_left=-1)  # expired yesterday
    original = _phone_row(db_url).ha1
    start = datetime.now(UTC)
    monkeypatch.setenv("MTCTL_TEST_NOW", start.isoformat())
    for _ in range(3):  # the new key expires within --within at once: it is still not due
        seeded.ok("keys", "rotate", "--within", "30")
    assert _rotation_audits(db_url) == {"phone 40710:2": 1}
    assert _phone_row(db_url).ha1 != original
    # Due again only when that key expires, five days on: once more, and only once.
    monkeypatch.setenv("MTCTL_TEST_NOW", (start + timedelta(days=5)).isoformat())
    for _ in range(2):
        seeded.ok("keys", "rotate", "--within", "30")
    assert _rotation_audits(db_url) == {"phone 40710:2": 2}


def test_a_previous_key_inside_its_grace_window_is_never_replaced(seeded, db_url, monkeypatch):
    _add_android(seeded, 2)
    _short_lived_keys(db_url, lifetime_days=1, grace_days=7)
    _age_keys(db_url, days_left=-1)
    device_key = _phone_row(db_url).ha1  # what the device fetched
    start = datetime.now(UTC)
    seeded.ok("keys", "rotate")
    rotated = _phone_row(db_url)
    assert rotated.prev_ha1 == device_key != rotated.ha1
    # Two days on the new key has expired, but the device may still hold either key.
    monkeypatch.setenv("MTCTL_TEST_NOW", (start + timedelta(days=2)).isoformat())
    assert json.loads(seeded.ok("keys", "rotate", "--dry-run", "--json").stdout)["count"] == 0
    said = seeded.ok("keys", "rotate", "--verbose").stderr
    assert "0 key(s) rotated" in said and "1 due key(s) wait for their previous key" in said
    assert _phone_row(db_url) == rotated
    assert _rotation_audits(db_url) == {"phone 40710:2": 1}
    # Once the grace window is over the device holding the first key had its time: rotate.
    monkeypatch.setenv("MTCTL_TEST_NOW", (start + timedelta(days=7, seconds=5)).isoformat())
    seeded.ok("keys", "rotate")
    after = _phone_row(db_url)
    assert after.prev_ha1 == rotated.ha1 and after.ha1 not in (rotated.ha1, device_key)
    assert _rotation_audits(db_url) == {"phone 40710:2": 2}


def test_a_missing_key_is_given_at_once_and_the_previous_key_is_kept(seeded, db_url):
    _add_android(seeded, 2)
    _age_keys(db_url)
    seeded.ok("keys", "rotate")
    rotated = _phone_row(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(phone).values(ha1=None, ha1_sha256=None))
    engine.dispose()
    seeded.ok("keys", "rotate")
    after = _phone_row(db_url)
    assert after.ha1 is not None and after.ha1 != rotated.ha1
    assert (after.prev_ha1, after.prev_key_valid_until) == (rotated.prev_ha1,
                                                           rotated.prev_key_valid_until)


def test_the_test_clock_refuses_a_time_without_an_offset(seeded, monkeypatch):
    monkeypatch.setenv("MTCTL_TEST_NOW", "2030-01-01T00:00:00")
    result = seeded("keys", "rotate")
    assert result.exit_code == 2, result.output
    assert "MTCTL_TEST_NOW" in result.stderr and "Traceback" not in result.output
