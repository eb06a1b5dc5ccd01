"""The user portal (SPEC §11): server-rendered pages under /portal/ of `mtctl serve`.

A user logs in with a one-time link (or a password), sees the extensions they own and, per
extension, the seed's phone table; changes order and enabled, provisions a secure app phone by
QR code, and starts or stops Web Call. Every change goes through the store functions the CLI
uses, inside one write transaction, audited as `portal:USERNAME`, and needs the session's
CSRF token. Plain HTML forms: no JavaScript anywhere.

Long because: the routes share one closure over the store, the templates and the visitor's
language (pages, refusals, login, 404/405 pages), and splitting it would pass all of that around.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from mtctl.errors import ExitCode, MtctlError, StoreError
from mtctl.portal import i18n
from mtctl.portal.refusals import refusal
from mtctl.store.audit import utcnow
from mtctl.store.db import Store

log = logging.getLogger("mtctl.serve")

SESSION_COOKIE = "mtctl_portal"
LANG_COOKIE = "mtctl_lang"
MAX_FORM = 16 * 1024  # bytes of a form body
MAX_FIELDS = 16
THROTTLE_SECONDS = 15 * 60  # failed password logins are counted over this window ...
# ... three ways, each with its limit before 429: a user from one address, one address
# whatever the users, and a user from anywhere (a guess spread over many addresses). A user
# alone at the first limit would let anybody lock anybody out with five wrong passwords.
THROTTLE_FROM_ONE = 5
THROTTLE_PER_ADDRESS = 20
THROTTLE_PER_USER = 50
HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",  # a login link in the address bar goes nowhere else
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
HTTP_STATUS = {ExitCode.RULE: 422, ExitCode.USAGE: 422, ExitCode.NOT_FOUND: 404,
               ExitCode.CONFLICT: 409, ExitCode.STORE: 503}


@dataclass(frozen=True)
class Visitor:
    """Who is asking: their language and, when logged in, their session."""

    lang: str
    username: str | None = None
    user_id: int | None = None
    session_id: str | None = None

    @property
    def csrf(self) -> str:
        """The session's CSRF token: derived from the session id, which it does not reveal."""
        assert self.session_id is not None
        return hashlib.sha256(b"mtctl-portal-csrf:" + self.session_id.encode()).hexdigest()

    @property
    def actor(self) -> str:
        return f"portal:{self.username}"


class Refused(Exception):
    """An answer other than the page asked for: a status and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Throttle:
    """Failed password logins per key in a sliding window, in memory; each key has a limit."""

    def __init__(self, window: float = THROTTLE_SECONDS) -> None:
        self.window = window
        self.failures: defaultdict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def blocked(self, limits: dict[str, int]) -> bool:
        """Whether any key has reached its limit of failures within the window."""
        now = time.monotonic()
        with self.lock:
            for key, limit in limits.items():
                times = self.failures.get(key)
                while times and times[0] < now - self.window:
                    times.popleft()
                if times is not None and len(times) >= limit:
                    return True
        return False

    def fail(self, limits: dict[str, int]) -> None:
        with self.lock:
            if len(self.failures) > 100_000:  # bounded memory under a flood of names
                self.failures.clear()
            for key in limits:
                self.failures[key].append(time.monotonic())


def login_limits(username: str, address: str) -> dict[str, int]:
    """The throttle's keys for a password login, with their limits."""
    return {f"from:{address} {username}": THROTTLE_FROM_ONE,
            f"addr:{address}": THROTTLE_PER_ADDRESS, f"user:{username}": THROTTLE_PER_USER}


async def _body(request: Request) -> bytes:
    """The request body, read only up to MAX_FORM bytes: a longer one is refused as soon as
    its length says so, or as soon as that much has arrived, so it is never held whole."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isascii() or not declared.isdigit()
                                 or int(declared) > MAX_FORM):
        raise Refused(413, "The form is too large.")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise Refused(413, "The form is too large.")
    except ClientDisconnect:  # the browser went away: nobody reads the answer
        raise Refused(400, "The form could not be read.") from None
    return bytes(body)


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body, bounded; the first value of each field."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "Send the form as application/x-www-form-urlencoded.")
    body = await _body(request)
    try:  # strict: %ff is as unreadable as a raw 0xff byte, not a U+FFFD to pass on
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True,
                          max_num_fields=MAX_FIELDS, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "The form could not be read.") from None
    return {name: values[0] for name, values in fields.items()}


def create_portal(store: Store) -> Starlette:
    """The portal as an ASGI app, to mount at /portal over an open store."""
    from mtctl.domain.updates import PhoneUpdate
    from mtctl.store import phones, portal, tokens, users, webcall

    env = Environment(loader=PackageLoader("mtctl.portal", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    throttle = Throttle()

    def language(request: Request) -> str:
        return i18n.choose(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                           request.headers.get("accept-language"))

    def visitor(request: Request) -> Visitor:
        lang = language(request)
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            with store.read() as conn:
                found = portal.session_of(conn, session_id, utcnow())
            if found is not None:
                return Visitor(lang, found.username, found.user_id, session_id)
        return Visitor(lang)

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def page(request: Request, who: Visitor, template: str, status: int = 200,
             **context: Any) -> HTMLResponse:
        _ = i18n.translator(who.lang)
        html = env.get_template(template).render(
            _=_, lang=who.lang, who=who, root=root(request), path=request.url.path,
            csrf=who.csrf if who.session_id else None, **context)
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        if request.query_params.get("lang") in i18n.LANGUAGES:
            response.set_cookie(LANG_COOKIE, who.lang, max_age=365 * 86400,
                                path=root(request) or "/", samesite="strict",
                                secure=secure(request))
        return response

    def refused(request: Request, who: Visitor, status: int, message: str,
                hint: str | None = None) -> HTMLResponse:
        return page(request, who, "message.html", status=status, message=message, hint=hint)

    def refused_by_store(request: Request, who: Visitor, exc: MtctlError) -> HTMLResponse:
        if isinstance(exc, StoreError):  # the owner is told to ask; the log says what it is
            log.warning("portal: the store is unavailable: %s", exc)
        said = refusal(exc, i18n.translator(who.lang))
        return refused(request, who, HTTP_STATUS[exc.exit_code], said.message, said.hint)

    def redirect(request: Request, where: str) -> RedirectResponse:
        return RedirectResponse(root(request) + where, status_code=303, headers=HEADERS)

    def set_session(request: Request, response: Response, session_id: str) -> None:
        with store.read() as conn:
            found = portal.session_of(conn, session_id, utcnow())
        assert found is not None
        max_age = int((found.expires_at - utcnow()).total_seconds())
        response.set_cookie(SESSION_COOKIE, session_id, max_age=max_age,
                            path=root(request) or "/", httponly=True, samesite="strict",
                            secure=secure(request))

    async def posted(request: Request, who: Visitor) -> dict[str, str]:
        """The form of a POST by a logged-in user, after its CSRF token is checked."""
        if who.session_id is None:
            raise Refused(401, "You are not logged in, or your session has ended.")
        form = await _form(request)
        if not hmac.compare_digest(form.get("csrf", "").encode(), who.csrf.encode()):
            raise Refused(403, "The form's security token is missing or wrong: reload the "
                               "page and try again.")
        return form

    def owned(who: Visitor, number: str, conn: Any) -> None:
        """A user sees and changes only extensions they own; others do not exist for them."""
        assert who.user_id is not None
        if number not in portal.owned_extensions(conn, who.user_id):
            raise Refused(404, "No such extension among yours.")

    def handled(handler: Callable[..., Any]) -> Callable[[Request], Any]:
        """Refusals become a page with their status, in the visitor's language."""

        async def endpoint(request: Request) -> Response:
            who = Visitor(i18n.DEFAULT)
            try:
                who = visitor(request)
                # A form another site makes a browser send (a login as someone else, a change):
                # refused on the browser's word, before anything is read or written.
                if request.method == "POST" and \
                        request.headers.get("sec-fetch-site") == "cross-site":
                    raise Refused(403, "This form came from another site: open the portal "
                                       "and try again.")
                result: Response = await handler(request, who)
                return result
            except Refused as exc:
                return refused(request, who, exc.status, i18n.translator(who.lang)(exc.message))
            except MtctlError as exc:  # the store is unavailable: say so, never a traceback
                return refused_by_store(request, who, exc)
        return endpoint

    async def no_route(request: Request, exc: Exception) -> Response:
        """Starlette's 404 (no such path) and 405 (a method the path does not take, with its
        Allow header) for the portal's paths: a portal page in the visitor's language."""
        assert isinstance(exc, HTTPException)
        try:
            who = visitor(request)
        except MtctlError:  # the store is unavailable: the page still answers, logged out
            who = Visitor(language(request))
        message = "No such page." if exc.status_code == 404 else \
            "This page cannot be opened this way."
        response = refused(request, who, exc.status_code, i18n.translator(who.lang)(message))
        response.headers.update(exc.headers or {})
        return response

    # Pages ------------------------------------------------------------------------------

    async def home(request: Request, who: Visitor) -> Response:
        if who.username is None:
            return page(request, who, "login.html")
        assert who.user_id is not None
        with store.read() as conn:
            numbers = portal.owned_extensions(conn, who.user_id)
            user = users.get_user(conn, who.username)
            running = webcall.session_of(conn, who.username)
            spec = _user_spec(conn, who.user_id)
        return page(request, who, "home.html", numbers=numbers, user=user, running=running,
                    webcall_extensions=spec.session_extensions)

    async def extension_page(request: Request, who: Visitor, *, status: int = 200,
                             error: MtctlError | None = None, qr: Markup | None = None,
                             provisioned: dict[str, Any] | None = None,
                             entered: tuple[int, str] | None = None) -> Response:
        """ENTERED: (position, order) a refused order change typed, shown again in its field."""
        if who.username is None:
            return redirect(request, "/")
        number = request.path_params["number"]
        with store.read() as conn:
            owned(who, number, conn)
            rows = phones.list_phones(conn, number=number)
        saved = request.query_params.get("saved")
        said = refusal(error, i18n.translator(who.lang)) if error is not None else None
        return page(request, who, "extension.html", status=status, number=number, phones=rows,
                    error=said, saved=saved if saved and saved.isdigit() else None,
                    qr=qr, provisioned=provisioned, entered=entered)

    async def change(request: Request, who: Visitor) -> Response:
        form = await posted(request, who)
        number = request.path_params["number"]
        position = _position(request.path_params["position"])
        verb = request.path_params["verb"]
        try:
            with store.write() as conn:
                owned(who, number, conn)
                if verb == "order":
                    from mtctl.domain.values import parse_int

                    order = parse_int(form.get("order", "").strip(), what="order", low=0,
                                      high=2**31 - 1, hint="use a whole number, 0 = never rings")
                    phones.update_phone(conn, actor=who.actor, number=number,
                                        position=position, change=PhoneUpdate(order=order))
                elif verb in ("enable", "disable"):
                    phones.update_phone(conn, actor=who.actor, number=number,
                                        position=position,
                                        change=PhoneUpdate(enabled=verb == "enable"),
                                        action=verb)
                elif verb == "provision":
                    _token, url, redeem_by = tokens.issue_token(
                        conn, actor=who.actor, number=number, position=position,
                        now=utcnow())
                else:
                    raise Refused(404, "No such page.")
        except MtctlError as exc:  # the page again, with what was typed kept in its field
            typed = (position, form.get("order", "")[:32]) if verb == "order" else None
            return await extension_page(request, who, status=HTTP_STATUS[exc.exit_code],
                                        error=exc, entered=typed)
        if verb == "provision":  # the page is the only copy of the token: shown, not redirected
            title = i18n.translator(who.lang)("QR code to provision the phone at position "
                                              "{pos}", pos=position)
            return await extension_page(request, who, qr=_qr_svg(url, title),
                                        provisioned={"position": position,
                                                     "redeem_by": redeem_by})
        return redirect(request, f"/ext/{number}?saved={position}")

    async def webcall_change(request: Request, who: Visitor) -> Response:
        form = await posted(request, who)
        assert who.username is not None
        verb = request.path_params["verb"]
        if verb not in ("start", "stop"):
            raise Refused(404, "No such page.")
        try:
            with store.write() as conn:
                if verb == "start":
                    webcall.start_session(conn, actor=who.actor, username=who.username,
                                          number=form.get("extension") or None, now=utcnow())
                else:
                    webcall.stop_session(conn, actor=who.actor, username=who.username)
        except MtctlError as exc:
            return refused_by_store(request, who, exc)
        return redirect(request, "/")

    # Login and logout -------------------------------------------------------------------

    async def link(request: Request, who: Visitor) -> Response:
        token = request.path_params["token"]
        if request.method == "GET":  # a mail scanner fetching the link does not use it up
            with store.read() as conn:
                username = portal.link_user(conn, token, utcnow())
            if username is None:
                raise Refused(404, "This login link does not work: it is unknown, used, "
                                   "revoked or expired. Ask for a new one.")
            return page(request, who, "link.html", username=username)
        with store.write() as conn:
            redeemed = portal.redeem_link(conn, token, utcnow())
        if redeemed is None:
            raise Refused(404, "This login link does not work: it is unknown, used, revoked "
                               "or expired. Ask for a new one.")
        response = redirect(request, "/")
        set_session(request, response, redeemed[1])
        return response

    async def password(request: Request, who: Visitor) -> Response:
        form = await _form(request)
        username = form.get("username", "").strip()[:64]
        address = request.client.host if request.client else "unknown"
        limits = login_limits(username, address)
        if throttle.blocked(limits):
            raise Refused(429, "Too many failed logins: wait a few minutes and try again.")
        with store.write() as conn:
            session_id = portal.password_login(conn, username, form.get("password", ""),
                                               utcnow())
        if session_id is None:
            throttle.fail(limits)
            return page(request, who, "login.html", status=401, failed=True,
                        username=username)
        response = redirect(request, "/")
        set_session(request, response, session_id)
        return response

    async def logout(request: Request, who: Visitor) -> Response:
        await posted(request, who)
        assert who.session_id is not None
        with store.write() as conn:
            portal.end_session(conn, who.session_id)
        response = page(request, Visitor(who.lang), "login.html", logged_out=True)
        response.delete_cookie(SESSION_COOKIE, path=root(request) or "/", httponly=True,
                               samesite="strict", secure=secure(request))
        return response

    async def stylesheet(_: Request) -> Response:
        from importlib import resources

        css = resources.files("mtctl.portal").joinpath("static", "portal.css").read_bytes()
        return Response(css, media_type="text/css",
                        headers={"cache-control": "max-age=3600",
                                 "x-content-type-options": "nosniff"})

    def ext_get(request: Request, who: Visitor) -> Any:
        return extension_page(request, who)

    return Starlette(routes=[
        Route("/", handled(home)),
        Route("/portal.css", stylesheet),
        Route("/login", handled(password), methods=["POST"]),
        Route("/login/{token}", handled(link), methods=["GET", "POST"]),
        Route("/logout", handled(logout), methods=["POST"]),
        Route("/ext/{number}", handled(ext_get)),
        Route("/ext/{number}/{position}/{verb}", handled(change), methods=["POST"]),
        Route("/webcall/{verb:str}", handled(webcall_change), methods=["POST"]),
    ], exception_handlers={404: no_route, 405: no_route})


def _user_spec(conn: Any, user_id: int) -> Any:
    from mtctl.store.snapshots import user_specs

    return user_specs(conn, [user_id])[user_id][0]


def _position(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 2 or int(text) > 7:
        raise Refused(404, "No such phone among yours.")
    return int(text)


def _qr_svg(url: str, title: str) -> Markup:
    """The provisioning URL as an inline SVG QR code (segno escapes the title)."""
    import segno

    svg = segno.make(url, error="m").svg_inline(scale=5, border=4, dark="#000000",
                                                light="#ffffff", title=title)
    return Markup(svg)  # noqa: S704 (segno's own SVG, with its text escaped by segno)
