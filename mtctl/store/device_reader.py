"""How mtctl serve reaches the store for desk phones: lookups straight through the driver on
each thread's own connection, and key deliveries batched into write transactions by one
thread of their own (the SQL and the rules are in store/devices.py)."""

from __future__ import annotations

import functools
import threading
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from mtctl.domain.config_keys import SETTINGS
from mtctl.store import audit
from mtctl.store.db import Store
from mtctl.store.devices import Device, deliver_keys, device_of, lookup_query
from mtctl.store.driver import DriverConnections


class Lookup(NamedTuple):
    """What a request is answered from: the device credentials and the phone, if any."""

    user: str
    hashed: str | None
    device: Device | None


class DeviceReader:
    """lookup() through CONNECTIONS (store/driver.py: one compiled query straight through the
    driver on a connection of each thread's own, following a replaced SQLite file)."""

    def __init__(self, store: Store, connections: DriverConnections | None = None) -> None:
        self.store = store
        self._connections = connections or DriverConnections(store)
        dialect = store.engine.dialect
        query = lookup_query()
        compiled = query.compile(dialect=dialect)
        self._sql = str(compiled)
        self._params = dict(compiled.params)
        self._order = compiled.positiontup
        self._columns = list(query.selected_columns.keys())
        self._convert = [(i, proc) for i, c in enumerate(query.selected_columns)
                         if (proc := c.type.dialect_impl(dialect).result_processor(dialect, None))
                         is not None]
        # The same row gives the same Lookup: only turning the row into values is skipped.
        self._from_row = functools.lru_cache(maxsize=4096)(self._build)

    @property
    def never_blocks(self) -> bool:
        """SQLite in WAL: a read answers at once, so it may run on an event loop."""
        return self._connections.never_blocks

    def lookup(self, mac: str, wait: bool = True) -> Lookup:
        """The credentials and the phone with MAC; Busy when wait=False and SQLite is locked."""
        params = {**self._params, "mac": mac}
        args = [params[name] for name in self._order] if self._order is not None else params
        rows = self._connections.query(self._sql, args, wait)
        return self._from_row(tuple(rows[0]))

    def _build(self, row: tuple[Any, ...]) -> Lookup:
        values = list(row)
        for i, convert in self._convert:
            values[i] = convert(values[i])
        m = dict(zip(self._columns, values, strict=True))
        device = device_of(_Mapped(m)) if m["id"] is not None else None
        return Lookup(m["c_user"] or str(SETTINGS["provisioning.device_user"].default),
                      m["c_hash"], device)

    def close(self) -> None:
        self._connections.close()


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
