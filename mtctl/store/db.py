"""Opening the store: engines, SQLite pragmas, transactions, migrations and the schema check."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)

from mtctl.errors import Conflict, StoreError, UsageError

# The newest migration this mtctl knows; tests/store/test_migrations.py keeps it true.
HEAD_REVISION = "0005"
UPGRADE_HINT = "run: mtctl db upgrade"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        # The URL is not echoed: it may hold a password.
        raise StoreError("cannot parse the store URL given by --db or MTCTL_DATABASE_URL",
                         "use a SQLAlchemy URL such as sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST/DB") from exc


def _sqlite_path(url: str) -> Path | None:
    parsed = _parse_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _create_sqlite_file(path: Path) -> None:
    """Create the store file (and its directory) readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _make_engine(url: str) -> Engine:
    parsed = _parse_url(url)
    try:
        if parsed.drivername.startswith("sqlite"):
            engine = create_engine(
                parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _tune_sqlite(engine)
        else:
            engine = create_engine(parsed, pool_pre_ping=False)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot open store: {_first_line(exc)}",
                         "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB") from exc
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # A writer takes the write lock up front, so two writers wait for each other
        # (busy timeout) instead of failing with "database is locked" on lock upgrade.
        if conn.get_execution_options().get("mtctl_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Store:
    """An open store; hands out one connection per transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with _translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        with _translated(), self.engine.connect() as conn:
            conn = conn.execution_options(mtctl_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated() -> Iterator[None]:
    """Turn driver errors a user can cause into StoreError/Conflict, never a traceback."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(f"the store refused the change: {_first_line(exc)}",
                       "another change may have raced this one; look again and retry") from exc
    except DataError as exc:  # PostgreSQL: a name too long, a number out of range
        raise UsageError(f"the store refused a value: {_first_line(exc)}",
                         "use a shorter name or a smaller number") from exc
    except (OperationalError, ProgrammingError) as exc:
        raise StoreError(f"store unavailable: {_first_line(exc)}",
                         "check --db / MTCTL_DATABASE_URL, or " + UPGRADE_HINT) from exc
    except DBAPIError as exc:
        raise StoreError(f"store error: {_first_line(exc)}",
                         "check --db / MTCTL_DATABASE_URL") from exc


def _use_wal(engine: Engine) -> None:
    """Switch the store's file to WAL once; the mode stays with the file (not done on open,
    so pointing mtctl at somebody else's SQLite file never converts it)."""
    with _translated():
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA journal_mode=WAL")
        finally:
            raw.close()


def schema_revision(conn: Connection) -> str | None:
    """The store's migration revision, or None for a store never upgraded."""
    has_table = conn.dialect.has_table(conn, "alembic_version")
    if not has_table:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def open_store(url: str) -> Store:
    """Open an existing, up-to-date store, or raise StoreError (exit 5) with the fix."""
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(f"no store at {path}", UPGRADE_HINT)
    store = Store(_make_engine(url))
    with store.read() as conn:
        revision = schema_revision(conn)
    if revision is None:
        store.close()
        raise StoreError("the store is not initialised", UPGRADE_HINT)
    if revision != HEAD_REVISION:
        store.close()
        raise StoreError(f"the store is at schema {revision}, this mtctl needs "
                         f"{HEAD_REVISION}", UPGRADE_HINT + " (or upgrade mtctl)")
    return store


def upgrade_store(url: str) -> tuple[str | None, str]:
    """Create or migrate the store to the newest schema; returns (before, after) revisions."""
    from alembic import command
    from alembic.config import Config

    path = _sqlite_path(url)
    if path is not None and not path.exists():
        try:
            _create_sqlite_file(path)
        except OSError as exc:
            raise StoreError(f"cannot create store at {path}: {exc.strerror}",
                             "choose a writable place with --db sqlite:///PATH") from exc
    store = Store(_make_engine(url))
    try:
        if store.dialect == "sqlite":
            _use_wal(store.engine)
        with store.write() as conn:
            before = schema_revision(conn)
            config = Config()
            config.set_main_option("script_location", "mtctl.store:migrations")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            after = schema_revision(conn)
    finally:
        store.close()
    return before, after or HEAD_REVISION


def executemany_fast(conn: Connection, statement, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Run one statement for many rows straight through the driver.

    For hot bulk paths only (key rotation): the statement is compiled once and the rows skip
    SQLAlchemy's per-row type processing, so every value must already be what the driver
    takes (strings and integers; process anything else with the column type's
    bind_processor first).
    """
    compiled = statement.compile(dialect=conn.dialect)
    names = compiled.positiontup
    if names is not None:
        values = itemgetter(*names)
        params: list = [values(row) for row in rows]
    else:
        params = rows
    conn.exec_driver_sql(str(compiled), params)
