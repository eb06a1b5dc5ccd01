"""How mtctl serve reaches the store for desk phones: lookups straight through the driver on
each thread's own connection, and key deliveries batched into write transactions by one
thread of their own (the SQL and the rules are in store/devices.py)."""

from __future__ import annotations

import contextlib
import functools
import threading
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from mtctl.domain.config_keys import SETTINGS
from mtctl.errors import StoreError
from mtctl.store import audit
from mtctl.store.db import SQLITE_BUSY_TIMEOUT_MS, Store, _first_line, _translated
from mtctl.store.devices import Device, deliver_keys, device_of, lookup_query
from mtctl.store.provisioning import Busy


class Lookup(NamedTuple):
    """What a request is answered from: the device credentials and the phone, if any."""

    user: str
    hashed: str | None
    device: Device | None


class DeviceReader:
    """lookup() straight through the driver: one compiled query on a connection of each
    thread's own (SQLite in WAL never waits for a writer; PostgreSQL reads in autocommit)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        dialect = store.engine.dialect
        self._driver_error = dialect.loaded_dbapi.Error
        query = lookup_query()
        compiled = query.compile(dialect=dialect)
        self._sql = str(compiled)
        self._params = dict(compiled.params)
        self._order = compiled.positiontup
        self._columns = list(query.selected_columns.keys())
        self._convert = [(i, proc) for i, c in enumerate(query.selected_columns)
                         if (proc := c.type.dialect_impl(dialect).result_processor(dialect, None))
                         is not None]
        self._local = threading.local()
        self._open: list[Any] = []
        self._lock = threading.Lock()
        # The same row gives the same Lookup: only turning the row into values is skipped.
        self._from_row = functools.lru_cache(maxsize=4096)(self._build)

    @property
    def never_blocks(self) -> bool:
        """SQLite in WAL: a read answers at once, so it may run on an event loop."""
        return self.store.dialect == "sqlite"

    def _connection(self, wait: bool) -> Any:
        local = self._local
        raw = getattr(local, "raw", None)
        if raw is None:
            with _translated():
                pooled = self.store.engine.raw_connection()  # the engine's pragmas apply
            raw = pooled.driver_connection
            assert raw is not None
            pooled.detach()
            if self.store.dialect == "postgresql":
                raw.autocommit = True  # no transaction held open between requests
            local.raw, local.wait = raw, True
            with self._lock:
                self._open.append(raw)
        if self.never_blocks and local.wait != wait:
            # wait=False: a locked file answers Busy at once instead of holding the caller.
            raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS if wait else 0}")
            local.wait = wait
        return raw

    def lookup(self, mac: str, wait: bool = True) -> Lookup:
        """The credentials and the phone with MAC; Busy when wait=False and SQLite is locked."""
        params = {**self._params, "mac": mac}
        args = [params[name] for name in self._order] if self._order is not None else params
        raw = self._connection(wait)
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(self._sql, args)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except self._driver_error as exc:
            message = _first_line(exc)
            if not wait and ("locked" in message or "busy" in message):
                raise Busy from exc
            self._local.raw = None
            with self._lock:
                if raw in self._open:
                    self._open.remove(raw)
            with contextlib.suppress(Exception):
                raw.close()
            raise StoreError(f"store unavailable: {message}",
                             "check --db / MTCTL_DATABASE_URL") from exc
        return self._from_row(tuple(row))

    def _build(self, row: tuple[Any, ...]) -> Lookup:
        values = list(row)
        for i, convert in self._convert:
            values[i] = convert(values[i])
        m = dict(zip(self._columns, values, strict=True))
        device = device_of(_Mapped(m)) if m["id"] is not None else None
        return Lookup(m["c_user"] or str(SETTINGS["provisioning.device_user"].default),
                      m["c_hash"], device)

    def close(self) -> None:
        with self._lock:
            for raw in self._open:
                with contextlib.suppress(Exception):
                    raw.close()
            self._open.clear()


class _Mapped:
    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


class DeliveryWriter:
    """Key deliveries from one thread of their own, each batch (every delivery waiting at that
    moment) in one write transaction: the store's write lock and one commit for many fetches."""

    MAX_BATCH = 256

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue: SimpleQueue[tuple[tuple[str, str, str], Future[Any]] | None] = SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def deliver(self, mac: str, profile: str, client: str) -> Future[tuple[Device, str] | None]:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True,
                                               name="mtctl-deliver")
                self.thread.start()
        future: Future[tuple[Device, str] | None] = Future()
        self.queue.put(((mac, profile, client), future))
        return future

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            batch = [item]
            while len(batch) < self.MAX_BATCH:
                try:
                    more = self.queue.get_nowait()
                except Empty:
                    break
                if more is None:
                    self.queue.put(None)
                    break
                batch.append(more)
            try:
                with self.store.write() as conn:
                    answers = deliver_keys(conn, [wanted for wanted, _ in batch],
                                           now=audit.utcnow())
            except BaseException as exc:  # every fetch of the batch gets it (503)
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                future.set_result(answer)

    def close(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
