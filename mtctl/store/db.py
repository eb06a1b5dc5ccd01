"""Opening the store: engines, SQLite pragmas, transactions, migrations and the schema check.

Long because: every way a store URL, file or schema can be unusable is refused here, before
any command touches it, next to the engine set-up and the transactions whose driver errors the
same helpers translate; split, both halves would import each other's private helpers.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
)

from mtctl.errors import Conflict, StoreError, UsageError
from mtctl.store.revision import HEAD_REVISION as HEAD_REVISION  # the store's schema version

UPGRADE_HINT = "run: mtctl db upgrade"
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_BUSY_STEP_MS = 100  # a writer waits in steps this long, so Ctrl-C is seen at once
# How long a PostgreSQL writer waits for the write lock or a row lock, like SQLite's busy timeout.
PG_LOCK_TIMEOUT_MS = 10_000
# First key of the write lock (pg_advisory_xact_lock(int, int)); the second is the schema's.
PG_WRITE_LOCK_CLASS = 0x6D74_636C  # "mtcl"
BUSY_HINT = "another mtctl is writing to the store; retry in a moment"
PATH_MAX_BYTES = 4096


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        # The URL is not echoed: it may hold a password.
        raise StoreError("cannot parse the store URL given by --db or MTCTL_DATABASE_URL",
                         "use a SQLAlchemy URL such as sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST/DB") from exc


def _sqlite_path(url: str) -> Path | None:
    """The SQLite file a URL names (None for PostgreSQL); refuses what cannot be a store file."""
    parsed = _parse_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise StoreError("a SQLite store must be a file path (in-memory stores and file: URIs "
                         "are not supported)", "use --db sqlite:///PATH, e.g. sqlite:///pbx.db")
    if parsed.query:  # the driver would ignore them (mode=ro!), or with uri=true misread the path
        names = ", ".join(sorted(parsed.query))
        raise StoreError(f"a SQLite store URL takes no options (it has: {names[:80]})",
                         "use --db sqlite:///PATH, without '?...'")
    if ("\x00" in database or not _is_utf8(database)
            or len(os.fsencode(database)) > PATH_MAX_BYTES):
        raise StoreError("the SQLite path of the store is not a usable file name",
                         "use a UTF-8 path without NUL characters, at most 4096 bytes")
    path = Path(database)
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a name too long for the file system, a loop of links...
        raise StoreError(f"cannot use the SQLite path in --db: {exc.strerror}",
                         "use a shorter path to a file") from None
    if is_dir:
        raise StoreError(f"{path} is a directory, not a store file",
                         "give a file path, e.g. --db sqlite:///pbx.db") from None
    return path


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8, surrogate-escaped by Python
        return False
    return True


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
            event.listen(engine, "connect", _utc_session)
            # psycopg logs what it ignores while cleaning up after an error (Ctrl-C during a
            # commit: "error ignored terminating <psycopg.Pipeline …>"); with no logging set
            # up, Python printed that to stderr beside mtctl's one line. `serve` sets logging
            # up, and its log still gets them.
            import logging

            logging.getLogger("psycopg").addHandler(logging.NullHandler())
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot open store: {_first_line(exc)}",
                         "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB") from exc
    return engine


def _utc_session(dbapi_conn: Any, _record: Any) -> None:
    """PostgreSQL gives times in the session's time zone, often the server's local one:
    every time mtctl prints or shares is UTC."""
    dbapi_conn.execute("SET TIME ZONE 'UTC'")
    dbapi_conn.commit()


# Kamailio writes what phones send (User-Agent, reason phrases, the caller) byte for byte, and
# SQLite keeps bytes that are not UTF-8: read them as U+FFFD instead of failing the command.
LENIENT_TEXT = functools.partial(str, encoding="utf-8", errors="replace")


def _tune_sqlite(engine: Engine) -> None:
    _bind_plainly()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_conn.text_factory = LENIENT_TEXT
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front, so two writers wait for each other
        # (busy timeout) instead of failing with "database is locked" on lock upgrade.
        if conn.get_execution_options().get("mtctl_write"):
            _begin_immediate(conn)
        else:
            conn.exec_driver_sql("BEGIN")


def _bind_plainly() -> None:
    """Let sqlite3 bind None and bools without looking for an adapter.

    For a value that is not exactly an int, float, str or bytes, Python's sqlite3 looks up an
    adapter and then tries `__adapt__` and `__conform__`, two AttributeErrors raised and
    cleared for every None or bool it binds. Registered adapters are found at the first
    lookup: the same NULL and 0/1 are stored, and a first apply of 400,000 phones (most of
    them with a few NULL columns and three booleans) binds its rows in 40% less time. It is
    process-wide and idempotent; PostgreSQL's driver is not concerned."""
    import sqlite3

    sqlite3.register_adapter(type(None), _as_none)
    sqlite3.register_adapter(bool, int)


def _as_none(value: None) -> None:
    return value


def _begin_immediate(conn: Connection) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock in short steps up to the busy timeout:
    SQLite's own busy wait sleeps in C, where Python would see a Ctrl-C only at its end.

    Straight on the driver's cursor: every write transaction starts here, and a key rotation
    starts one per batch (through SQLAlchemy the three statements cost twice as much). An
    error is sqlite3's own; `_translated` reports it as the Core path's would be."""
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None, "a connection beginning has its driver connection"
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_STEP_MS}")
    try:
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                name = str(getattr(exc, "sqlite_errorname", ""))
                if not name.startswith("SQLITE_BUSY") or time.monotonic() >= deadline:
                    raise
    finally:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


class WriteLog:
    """What this process's write transactions did, so an interrupt can be reported truly."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.committed = 0  # write transactions committed
        self.open = False  # a write transaction is under way (rolled back if interrupted)
        self.committing = False  # COMMIT was sent and has not returned: its fate is unknown
        self.rolled_back = False  # the last write transaction was rolled back


WRITES = WriteLog()


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
        """One write transaction: committed when the block ends, rolled back on any error.

        Writers are serialised, so the rules each one checks inside its transaction hold
        when it commits: SQLite takes its write lock at BEGIN IMMEDIATE; PostgreSQL takes a
        transaction-scoped advisory lock for the store's schema as the first statement
        (READ COMMITTED alone lets two writers each miss the other's change: write skew).
        """
        with _translated(), self.engine.connect() as conn:
            conn = conn.execution_options(mtctl_write=True)
            transaction = conn.begin()
            WRITES.open = True
            try:
                if self.dialect == "postgresql":
                    _take_write_lock(conn)
                yield conn
            except BaseException:
                WRITES.open, WRITES.rolled_back = False, True
                transaction.rollback()
                raise
            WRITES.committing = True
            with _interrupt_after(self.dialect == "sqlite"):
                try:
                    transaction.commit()
                except Exception:  # refused at commit: rolled back (an interrupt: unknown)
                    WRITES.committing = WRITES.open = False
                    WRITES.rolled_back = True
                    raise
                WRITES.committing = WRITES.open = WRITES.rolled_back = False
                WRITES.committed += 1

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _interrupt_after(hold: bool) -> Iterator[None]:
    """With HOLD, a Ctrl-C during the block is raised when it ends: a SQLite COMMIT is short
    and local, and an interrupt raised between its return and the write log's update would
    say "it may or may not be in the store" of a change that is. (PostgreSQL's driver needs
    the interrupt at once, to cancel a COMMIT stuck on the network.) Only the main thread
    handles signals; elsewhere this does nothing."""
    if not hold or threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    except ValueError:  # signals handled outside Python (an embedding program)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if caught and callable(previous):
        previous(signal.SIGINT, None)  # Python's own raises KeyboardInterrupt, now
    elif caught and previous != signal.SIG_IGN:
        raise KeyboardInterrupt


def _take_write_lock(conn: Connection) -> None:
    """PostgreSQL: wait (at most the lock timeout) for the store's write lock.

    Keyed by schema, so stores in different schemas of one database do not wait for each
    other. Taken before any row lock, by every writer, in one order: no deadlock, also with
    key rotation's FOR UPDATE SKIP LOCKED batches (each batch is one write transaction).
    """
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {PG_LOCK_TIMEOUT_MS}")
    conn.execute(text("SELECT pg_advisory_xact_lock(:cls, hashtext(coalesce(current_schema(), "
                      "'')))"), {"cls": PG_WRITE_LOCK_CLASS})


# SQLite result-code families and PostgreSQL SQLSTATEs that mean "busy, retry", "no schema".
_SQLITE_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_SQLITE_FILE = {"SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_PERM",
                "SQLITE_FULL"}
_PG_BUSY = {"55P03", "40P01", "40001"}  # lock timeout, deadlock, serialization failure
_PG_NO_SCHEMA = {"42P01", "42703"}  # undefined table, undefined column


def _store_error(exc: DBAPIError) -> StoreError:
    """A driver error as the StoreError that tells the truth about it."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None)
    # SQLITE_IOERR_SHORT_READ -> SQLITE_IOERR: the family is what a user can act on.
    family = "_".join(str(getattr(orig, "sqlite_errorname", "")).split("_")[:2])
    line = _first_line(exc)
    if family in _SQLITE_BUSY or sqlstate in _PG_BUSY:
        return StoreError("the store is busy: a lock was not granted in time", BUSY_HINT)
    if sqlstate in _PG_NO_SCHEMA or line.startswith(("no such table", "no such column")):
        return StoreError(f"the store's schema is incomplete: {line}", UPGRADE_HINT)
    if family in _SQLITE_FILE:
        return StoreError(f"cannot use the SQLite file: {line}",
                          "check that --db names a file in a directory you can write")
    if family in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return StoreError(f"not a usable store: {line}", "check that --db names an mtctl store")
    return StoreError(f"store unavailable: {line}",
                      "check --db / MTCTL_DATABASE_URL and that the database is reachable")


def driver_error(exc: BaseException) -> StoreError | None:
    """A DB-API error raised straight by sqlite3 or psycopg as the StoreError the Core path
    gives for it; None for anything else."""
    import sqlite3

    if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg"):
        return _store_error(DBAPIError(None, None, exc))
    return None


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
    except DBAPIError as exc:
        raise _store_error(exc) from exc
    except Exception as exc:
        error = driver_error(exc)  # straight from the driver (raw connections)
        if error is None:
            raise
        raise error from exc


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
        if _is_newer(revision):
            raise _newer_store(revision)
        raise StoreError(f"the store is at schema {revision}, this mtctl needs "
                         f"{HEAD_REVISION}", UPGRADE_HINT)
    return store


def _is_newer(revision: str) -> bool:
    """Revisions are zero-padded numbers ("0004"); anything else is unknown, so newer."""
    return not (revision.isascii() and revision.isdigit()) or revision > HEAD_REVISION


def _newer_store(revision: str) -> StoreError:
    return StoreError(f"the store is at schema {revision[:40]}, newer than this mtctl knows "
                      f"({HEAD_REVISION})", "upgrade mtctl to the version that migrated it")


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
            _foreign_keys_off_while_migrating(store.engine)
            _use_wal(store.engine)
        with store.write() as conn:
            before = schema_revision(conn)
            if before is not None and _is_newer(before):
                raise _newer_store(before)
            config = Config()
            config.set_main_option("script_location", "mtctl.store:migrations")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if store.dialect == "sqlite":
                _refuse_broken_foreign_keys(conn)
            after = schema_revision(conn)
    finally:
        store.close()
    return before, after or HEAD_REVISION


def _foreign_keys_off_while_migrating(engine: Engine) -> None:
    """SQLite adds a constraint by rebuilding the table (copy, drop, rename): with foreign keys
    on, dropping the old table would refuse (RESTRICT) or empty (CASCADE) the rows that point
    at it. SQLite's own recipe: keys off for the migration's connection (the pragma is a no-op
    inside a transaction, so it is set as the connection opens), checked before commit."""

    @event.listens_for(engine, "connect")
    def _off(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()


def _refuse_broken_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
    if broken is not None:
        raise StoreError(f"migrating would leave a {broken[0]} row pointing at a missing "
                         f"{broken[2]} row; nothing was changed",
                         "run `mtctl check` with the previous mtctl and repair the store first")
