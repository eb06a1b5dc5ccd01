"""Reads for `mtctl serve` straight through the database driver, one connection per thread,
that follow a SQLite store file replaced at its path (the token and desk-phone endpoints share
one `DriverConnections`)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from mtctl.errors import StoreError
from mtctl.store.db import SQLITE_BUSY_TIMEOUT_MS, Store, _first_line, _translated

log = logging.getLogger("mtctl.serve")


class Busy(Exception):
    """The SQLite file is locked and the caller asked not to wait."""


class DriverConnections:
    """query() on a connection of the calling thread's own, outside any write transaction:
    SQLite (WAL) reads while a writer holds the lock, PostgreSQL reads in autocommit.

    When the SQLite file at the store's path is replaced (a restored backup, `mv new.db
    store.db`), every connection is closed before any opens the new file; while no file is at
    the path, queries fail with StoreError and no empty store is created.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._driver_error = store.engine.dialect.loaded_dbapi.Error
        self._path = _sqlite_file(store)
        self._file_id = _file_id(self._path)
        self._local = threading.local()
        self._generation = 0
        self._gate = threading.Condition()
        self._busy = 0          # queries running now
        self._reopening = False
        self._open: list[Any] = []

    @property
    def never_blocks(self) -> bool:
        """True on a SQLite file, where query(wait=False) is quick enough for an event loop."""
        return self._path is not None

    def query(self, sql: str, params: Any, wait: bool = True) -> list[tuple[Any, ...]]:
        """Every row of SQL with PARAMS (the driver's style); Busy when wait=False and the
        SQLite file is locked, StoreError when the store cannot be read."""
        with _translated():  # opening a connection goes through SQLAlchemy
            raw = self._checkout(wait)
        broken = None
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except self._driver_error as exc:  # straight from the driver, not through SQLAlchemy
            message = _first_line(exc)
            if not wait and ("locked" in message or "busy" in message):
                raise Busy from exc
            broken = raw
            raise StoreError(f"store unavailable: {message}",
                             "check --db / MTCTL_DATABASE_URL") from exc
        finally:
            self._checkin(broken)

    def check_replaced(self) -> None:
        """Reopen now if the store file was replaced."""
        if self._replaced():
            self._reopen()

    def close(self) -> None:
        with self._gate:
            for raw in self._open:
                with contextlib.suppress(Exception):
                    raw.close()
            self._open.clear()
            self._generation += 1

    def _connect(self) -> Any:
        pooled = self.store.engine.raw_connection()  # the engine's pragmas apply
        raw = pooled.driver_connection
        assert raw is not None, "a fresh pooled connection has its driver connection"
        pooled.detach()
        if self.store.dialect == "postgresql":
            raw.autocommit = True  # no transaction held open between queries
        return raw

    def _replaced(self) -> bool:
        return self._path is not None and _file_id(self._path) != self._file_id

    def _reopen(self) -> None:
        """Close every connection to the old file before any opens the new one."""
        with self._gate:
            if not self._replaced() or _file_id(self._path) is None:
                return
            self._reopening = True
            try:
                while self._busy:
                    self._gate.wait(1.0)
                for raw in self._open:
                    with contextlib.suppress(Exception):
                        raw.close()
                self._open.clear()
                self.store.engine.dispose()  # the writers' pooled connections too
                self._generation += 1
                self._file_id = _file_id(self._path)
            finally:
                self._reopening = False
                self._gate.notify_all()
        log.warning("the store file was replaced; reopened %s", self._path)

    def _checkout(self, wait: bool) -> Any:
        """This thread's connection (opened on first use), counted as busy until _checkin."""
        if self._path is not None and (found := _file_id(self._path)) != self._file_id:
            if found is None:  # gone (half-way through a restore?): never create an empty one
                raise StoreError(f"no store at {self._path}",
                                 "restore the store file, or run: mtctl db upgrade")
            self._reopen()
        local = self._local
        with self._gate:
            while self._reopening:
                self._gate.wait()
            self._busy += 1
        raw = getattr(local, "raw", None)
        if raw is None or local.generation != self._generation:
            try:
                raw = local.raw = self._connect()
            except BaseException:
                self._checkin(None)
                raise
            local.generation, local.wait = self._generation, True
            with self._gate:
                self._open.append(raw)
        if self._path is not None and local.wait != wait:
            # SQLite: wait=False answers Busy at once instead of waiting for a locked file.
            try:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS if wait else 0}")
            except self._driver_error as exc:
                self._checkin(raw)
                raise StoreError(f"store unavailable: {_first_line(exc)}",
                                 "check --db / MTCTL_DATABASE_URL") from exc
            local.wait = wait
        return raw

    def _checkin(self, broken: Any) -> None:
        with self._gate:
            if broken is not None:  # a connection that failed is not reused
                self._local.raw = None
                if broken in self._open:
                    self._open.remove(broken)
                with contextlib.suppress(Exception):
                    broken.close()
            self._busy -= 1
            if not self._busy:
                self._gate.notify_all()


def _sqlite_file(store: Store) -> Path | None:
    url = store.engine.url
    if store.dialect != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database).resolve()


def _file_id(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
