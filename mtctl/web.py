"""The provisioning endpoint (`mtctl serve`): a small ASGI app, mountable under any ASGI server.

    uvicorn --factory mtctl.web:app_from_env     # reads MTCTL_DATABASE_URL

Fetches that change nothing are plain reads (no write lock); only a token's first fetch writes,
briefly, to redeem or bind it, in a small thread pool of its own, so a fetch waiting for a
writer never holds up the others or `/healthz`. SQLite reads run on the event loop (in WAL
mode they never wait; a locked file falls back to a thread); PostgreSQL reads are batched by
_Batcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from queue import Empty, SimpleQueue
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from mtctl.domain.provisioning import Account, linphone_xml
from mtctl.errors import MtctlError
from mtctl.serve_devices import DeviceFiles
from mtctl.store.audit import utcnow
from mtctl.store.db import HEAD_REVISION, open_store
from mtctl.store.driver import Busy, DriverConnections
from mtctl.store.provisioning import (
    SERVE,
    Lookup,
    TokenReader,
    device_of,
    next_step,
    record_fetch,
)

log = logging.getLogger("mtctl.serve")
XML = "application/xml"
READ_THREADS = 4     # lookups: quick on SQLite, a network round trip on PostgreSQL
WRITE_THREADS = 2    # first fetches: a short write, which may wait for another writer
READ_TIMEOUT = 10.0  # seconds before a fetch gives up with 503
WRITE_TIMEOUT = 15.0  # the SQLite busy timeout (10 s) and some
HEALTH_TIMEOUT = 0.8  # /healthz answers within 1 s whatever the store does
SUMMARY_SECONDS = 60  # a log line counting fetches, at most this often
BATCH_THREADS = 2   # PostgreSQL: lookups in flight at once, each for many fetches
BATCH_MAX = 256
TRIES = 3            # looks at a token when concurrent first fetches race


# The XML of recently served accounts: a repeat fetch of an unchanged account is not rendered
# again (an Account is a frozen value, so a rotated key or a changed setting is a new entry).
_xml = functools.lru_cache(maxsize=4096)(lambda account: linphone_xml(account).encode())


NOT_FOUND = b"not found\n"
UNAVAILABLE = b"unavailable\n"
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
HEADERS = {200: [(b"content-type", XML.encode()), (b"cache-control", b"no-store")],
           404: [_TEXT], 503: [_TEXT]}


class _Endpoint:
    """An ASGI callable that Starlette routes to as it is (a plain function it would wrap)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class _Batcher:
    """PostgreSQL lookups from a few threads of their own: each takes every fetch waiting at
    that moment into one query (one round trip, one wake-up of the event loop), so the cost
    per fetch falls as the load rises."""

    def __init__(self, reader: TokenReader) -> None:
        self.reader = reader
        self.queue: SimpleQueue[tuple[str, asyncio.Future[Lookup | None]] | None] = \
            SimpleQueue()
        self.threads: list[threading.Thread] = []

    def lookup(self, token: str) -> asyncio.Future[Lookup | None]:
        loop = asyncio.get_running_loop()
        if not self.threads:
            self.threads = [threading.Thread(target=self._run, args=(loop,), daemon=True,
                                             name=f"mtctl-batch-{i}")
                            for i in range(BATCH_THREADS)]
            for thread in self.threads:
                thread.start()
        future: asyncio.Future[Lookup | None] = loop.create_future()
        self.queue.put((token, future))
        return future

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        while (item := self.queue.get()) is not None:
            batch = [item]
            while len(batch) < BATCH_MAX:
                try:
                    item = self.queue.get_nowait()
                except Empty:
                    break
                if item is None:
                    self.queue.put(None)  # for this thread's next turn
                    break
                batch.append(item)
            try:
                found: list[Lookup | None] | BaseException = self.reader.lookup_many(
                    [token for token, _ in batch])
            except Exception as exc:  # every fetch of the batch gets it (503)
                found = exc
            loop.call_soon_threadsafe(self._deliver, batch, found)

    @staticmethod
    def _deliver(batch: list[tuple[str, asyncio.Future[Lookup | None]]],
                 found: list[Lookup | None] | BaseException) -> None:
        for i, (_, future) in enumerate(batch):
            if future.done():  # timed out meanwhile
                continue
            if isinstance(found, BaseException):
                future.set_exception(found)
            else:
                future.set_result(found[i])

    def stop(self) -> None:
        for _ in self.threads:
            self.queue.put(None)


def create_app(db_url: str, *, portal: bool = True) -> Starlette:
    """An app serving provisioning XML from the store at db_url, and the user portal at
    /portal/ unless portal is False."""
    store = open_store(db_url)
    connections = DriverConnections(store)  # both endpoints follow a replaced SQLite file
    devices = DeviceFiles(store, connections)  # GET /d/<file>: desk phones by MAC
    reader = TokenReader(store, connections)
    reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="mtctl-read")
    writes = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="mtctl-write")
    probes = ThreadPoolExecutor(1, thread_name_prefix="mtctl-health")
    batcher = _Batcher(reader)
    tally: Counter[tuple[str, int]] = Counter()  # (method, status): fetches since the summary
    probe: list[Future[Any]] = []  # the store check running now, shared by concurrent probes

    async def run(pool: ThreadPoolExecutor, timeout: float, fn: Callable[..., Any],
                  *args: Any) -> Any:
        return await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(pool, fn, *args), timeout)

    async def lookup(token: str) -> Lookup | None:
        """SQLite (WAL) answers at once: read on the event loop, in a thread if it is locked."""
        if reader.never_blocks:
            with contextlib.suppress(Busy):
                return reader.lookup(token, wait=False)
        elif reader.batches:
            return await asyncio.wait_for(batcher.lookup(token), READ_TIMEOUT)
        found: Lookup | None = await run(reads, READ_TIMEOUT, reader.lookup, token)
        return found

    def first_fetch(token: str, device: str) -> Account | None:
        """Redeem or bind the token (a short write), looking again if another fetch raced."""
        for _ in range(TRIES):
            found = reader.lookup(token)
            now = utcnow()
            step = next_step(found, device, now)
            if step is None:
                return None
            assert found is not None, "next_step() gives a step only for a token found"
            if step == SERVE:
                return found.account
            with store.write() as conn:
                if record_fetch(conn, found, device=device, step=step, now=now):
                    return found.account
        return None

    async def answer(method: str, token: str, user_agent: str | None) -> tuple[int, bytes]:
        """The status and body for a fetch of /<token>."""
        device = device_of(user_agent)
        try:
            found = await lookup(token)
            step = next_step(found, device, utcnow())
            account = found.account if found is not None and step else None
            first = step is not None and step != SERVE and method == "GET"
            if first:  # HEAD answers as GET would, but never redeems or binds a token.
                account = await run(writes, WRITE_TIMEOUT, first_fetch, token, device)
        except (MtctlError, TimeoutError) as exc:
            tally[method, 503] += 1
            log.error("%s /<token> 503: %s", method, str(exc) or "the store did not answer in time")
            return 503, UNAVAILABLE
        except Exception:  # a bug: 503 and its traceback (code lines, never the token)
            tally[method, 503] += 1
            log.exception("%s /<token> 503: unexpected error", method)
            return 503, UNAVAILABLE
        status = 404 if account is None else 200
        tally[method, status] += 1
        # First fetches one by one (they are few, and the audit trail has them too); repeat
        # fetches and 404s one by one only at DEBUG, counted in a summary line every minute:
        # a log line per fetch would cost more than the fetch itself.
        if first or log.isEnabledFor(logging.DEBUG):
            log.log(logging.INFO if first else logging.DEBUG, "%s /<token> %d%s", method,
                    status, f" {account.auth_user}" if account else "")
        return (200, _xml(account)) if account is not None else (404, NOT_FOUND)

    async def fetch(scope: Scope, receive: Receive, send: Send) -> None:
        """GET|HEAD /<token>, as a bare ASGI endpoint (no Request/Response objects to build)."""
        user_agent = next((value.decode("latin-1") for name, value in scope["headers"]
                           if name == b"user-agent"), None)
        status, body = await answer(scope["method"], scope["path_params"]["token"], user_agent)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*HEADERS[status], (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    async def check_store() -> str | None:
        """The schema revision: read at once on SQLite (WAL), else from the probe thread."""
        if reader.never_blocks:
            with contextlib.suppress(Busy):
                return reader.revision(wait=False)
        if not probe or probe[0].done():
            probe[:] = [probes.submit(reader.revision)]
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(probe[0])),
                                      HEALTH_TIMEOUT)

    async def healthz(_: Request) -> Response:
        """200 when the store answers a read of its schema revision within HEALTH_TIMEOUT."""
        try:
            revision = await check_store()
        except TimeoutError:
            return PlainTextResponse(f"store unavailable: no answer within {HEALTH_TIMEOUT} s\n",
                                     status_code=503)
        except MtctlError:
            return PlainTextResponse("store unavailable\n", status_code=503)
        if revision != HEAD_REVISION:
            return PlainTextResponse(f"store at schema {revision}, needs {HEAD_REVISION}\n",
                                     status_code=503)
        return PlainTextResponse(f"ok: store readable, schema {revision}\n")

    def summarise(since: str) -> None:
        if tally:
            log.info("served %s: %s", since, ", ".join(
                f"{method} {status} ×{count}" for (method, status), count in sorted(tally.items())))
            tally.clear()

    async def summaries() -> None:
        while True:
            await asyncio.sleep(SUMMARY_SECONDS)
            summarise(f"in the last {SUMMARY_SECONDS} s")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(summaries())
        yield
        task.cancel()
        summarise("since the last summary")
        for pool in (reads, writes, probes):
            pool.shutdown(wait=False, cancel_futures=True)
        batcher.stop()
        reader.close()
        devices.close()
        store.close()

    routes: list[BaseRoute] = [Route("/healthz", healthz), *devices.routes()]
    if portal:
        from mtctl.portal.app import create_portal

        # 308 keeps the method: a POST to /portal gets the portal's own 405 page at /portal/
        routes += [Route("/portal", lambda _: RedirectResponse("/portal/", status_code=308),
                         methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
                   Mount("/portal", app=create_portal(store))]
    routes.append(Route("/{token}", _Endpoint(fetch), methods=["GET"]))
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_env() -> Starlette:
    """The app for `uvicorn --factory mtctl.web:app_from_env`."""
    from mtctl.settings import database_url

    return create_app(database_url(None))
