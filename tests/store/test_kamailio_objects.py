"""The views and tables migration 0004 makes for Kamailio, read as Kamailio reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text, update

from mtctl.store.tables import phone
from tests.dump import plant


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_kamailio_table_versions_are_seeded(db_url):
    assert sorted(rows(db_url, "SELECT table_name, table_version FROM version")) == [
        ("location", 9), ("location_attrs", 1), ("version", 1)]


def test_subscriber_has_one_row_per_phone_with_a_key(seeded):
    seeded.ok("phone", "set-password", "40710", "0", "--password-stdin",
              input="correct horse battery\n")
    got = rows(seeded.url, "SELECT username, domain, password, ha1 = ha1b, "
                           "length(ha1), length(ha1_sha256) FROM subscriber")
    assert got == [("40710-0", "pbx.example.com", "", True, 32, 64)]


def test_subscriber_prev_holds_the_previous_key_during_its_grace_period_only(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure")
    plant(seeded.url, update(phone).values(  # due: it has expired
        key_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    seeded.ok("keys", "rotate")
    current = rows(seeded.url, "SELECT ha1 FROM subscriber WHERE username = '40710-2'")
    previous = rows(seeded.url, "SELECT ha1 FROM subscriber_prev WHERE username = '40710-2'")
    assert len(current) == len(previous) == 1 and current != previous
    plant(seeded.url, update(phone).values(
        prev_key_valid_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert rows(seeded.url, "SELECT ha1 FROM subscriber_prev") == []


def test_ring_views_carry_the_ring_semantics_inputs(seeded):
    seeded.ok("ext", "set", "40710", "--name", 'Desk "A" \\ 1')
    assert sorted(rows(seeded.url, "SELECT number, position, auth_user, ring_order, webcall "
                                   "FROM ring_phone")) == [
        ("40710", 0, "40710-0", 1, 0), ("40710", 1, "40710-1", 1, 1)]
    assert rows(seeded.url, "SELECT number, ring_timeout, extension_name, user_name, mode "
                            "FROM ring_target") == [
        ("40710", 20, 'Desk \\"A\\" \\\\ 1', "Ana García", "multiterminal")]


def test_ring_webcall_lists_the_session_then_own_extensions_never_a_pool_without_session(mtctl):
    mtctl.ok("node", "add", "n1")
    for number in ("100", "101", "102", "103", "104"):
        mtctl.ok("ext", "add", number, "--node", "n1")
    for number in ("101", "102", "103", "104"):
        mtctl.ok("phone", "add", number, "--position", "0", "--model", "VIVAit Call Web")
    mtctl.ok("group", "add", "pool")
    mtctl.ok("group", "add-ext", "pool", "102", "103")
    mtctl.ok("user", "add", "bea", "--name", "Bea", "--login", "100", "--webcall-mode",
             "exclusive", "--webcall-ext", "104", "--webcall-ext", "101",
             "--webcall-group", "pool")
    query = ("SELECT webcall_number FROM ring_webcall WHERE number = '100' "
             "ORDER BY source, rank, webcall_number")
    assert rows(mtctl.url, query) == [("104",), ("101",)]
    mtctl.ok("webcall", "start", "bea", "--ext", "103")
    assert rows(mtctl.url, query) == [("103",), ("104",), ("101",)]
