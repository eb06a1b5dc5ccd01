"""Migration 0005: registration times become epoch seconds, the values already there kept."""

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from tests.conftest import Mtctl

EXPIRES = 1893456000  # 2030-01-01 00:00:00 UTC
MODIFIED = 1767323045  # 2026-01-02 03:04:05 UTC


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", "mtctl.store:migrations")
            config.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def run(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def test_upgrade_converts_registration_times_to_epoch_seconds_and_back(empty_url):
    migrate(empty_url, "0004")
    sqlite = empty_url.startswith("sqlite")
    # as Kamailio wrote them before: Julian days on SQLite, a timestamp on PostgreSQL
    expires, modified = (("julianday('2030-01-01 00:00:00')", "julianday('2026-01-02 03:04:05')")
                         if sqlite else ("TIMESTAMP '2030-01-01 00:00:00'",
                                         "TIMESTAMP '2026-01-02 03:04:05'"))
    run(empty_url, "INSERT INTO location (ruid, username, contact, expires, last_modified) "
                   f"VALUES ('r1', '100-0', 'sip:100-0@192.0.2.1', {expires}, {modified})")
    Mtctl(empty_url).ok("db", "upgrade")
    assert run(empty_url, "SELECT expires, last_modified FROM location") == [
        (EXPIRES, MODIFIED)]
    assert run(empty_url, "SELECT count(*) FROM webcall_session") == [(0,)]
    migrate(empty_url, "0004", down=True)
    back = "SELECT datetime(expires), datetime(last_modified) FROM location" if sqlite else \
        "SELECT to_char(expires, 'YYYY-MM-DD HH24:MI:SS'), " \
        "to_char(last_modified, 'YYYY-MM-DD HH24:MI:SS') FROM location"
    assert run(empty_url, back) == [("2030-01-01 00:00:00", "2026-01-02 03:04:05")]
