"""The provisioning endpoint (`mtctl serve`): a small ASGI app, mountable under any ASGI server.

    uvicorn --factory mtctl.web:app_from_env     # reads MTCTL_DATABASE_URL
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mtctl.domain.provisioning import linphone_xml
from mtctl.errors import MtctlError
from mtctl.store.audit import utcnow
from mtctl.store.db import Store, open_store
from mtctl.store.provisioning import redeem

log = logging.getLogger("mtctl.serve")
XML = "application/xml"


def create_app(db_url: str) -> Starlette:
    """An app serving provisioning XML from the store at db_url."""
    store: Store = open_store(db_url)

    def fetch(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            with store.write() as conn:
                account = redeem(conn, token=token, now=utcnow(),
                                 user_agent=request.headers.get("user-agent"))
        except MtctlError as exc:
            log.error("GET /<token> 503: %s", exc)
            return PlainTextResponse("unavailable\n", status_code=503)
        if account is None:
            log.info("GET /<token> 404")
            return PlainTextResponse("not found\n", status_code=404)
        log.info("GET /<token> 200 %s", account.auth_user)
        return Response(linphone_xml(account), media_type=XML,
                        headers={"Cache-Control": "no-store"})

    def healthz(_: Request) -> Response:
        try:
            with store.read() as conn:
                conn.exec_driver_sql("SELECT 1")
        except MtctlError:
            return PlainTextResponse("store unavailable\n", status_code=503)
        return PlainTextResponse("ok\n")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    return Starlette(routes=[Route("/healthz", healthz), Route("/{token}", fetch)],
                     lifespan=lifespan)


def app_from_env() -> Starlette:
    """The app for `uvicorn --factory mtctl.web:app_from_env`."""
    from mtctl.settings import database_url

    return create_app(database_url(None))
