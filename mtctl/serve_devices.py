"""`GET /d/<file>`: desk phones fetch their file by MAC (SPEC §9), mounted by mtctl.web.

A file is served only to an enabled phone with that MAC and a model of that file's profile,
whose User-Agent states the same MAC, with the device credentials (HTTP Basic). Everything
else gets the same bare 404, after the same work: the credentials are checked and the MAC
looked up on every path, whatever the outcome. A request without credentials gets 401 (to ask
for them, whatever the MAC); an address with too many 404s in a minute gets 429 for the rest
of that minute. A secure phone's file carries a fresh key (rotate-on-fetch): only its digests
are stored, and the key itself exists only in that one response body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import NamedTuple

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mtctl.domain.devices import (
    CONTENT_TYPE,
    RENDERERS,
    mac_in_user_agent,
    requested_file,
    shown_mac,
)
from mtctl.domain.values import escape
from mtctl.errors import MtctlError
from mtctl.store.db import Store
from mtctl.store.device_reader import DeliveryWriter, DeviceReader, Lookup
from mtctl.store.devices import Device, verify_secret, warm_up
from mtctl.store.driver import Busy, DriverConnections

log = logging.getLogger("mtctl.serve")

THREADS = 4           # lookups, credential checks and key deliveries run off the event loop
TIMEOUT = 15.0        # seconds before a fetch gives up with 503 (SQLite's busy timeout and some)
NO_MAC = "0" * 12     # looked up when the file name holds no MAC, so that path costs the same
NOT_FOUND = b"not found\n"
TEXT = (b"content-type", b"text/plain; charset=utf-8")
CHALLENGE = (b"www-authenticate", b'Basic realm="mtctl provisioning", charset="UTF-8"')
MAX_HEADER = 1024     # longer Authorization or User-Agent headers are not read


class Throttle:
    """Failures per client address in fixed one-minute windows, for at most `addresses`
    addresses (the least recently failing are forgotten first)."""

    def __init__(self, limit: int = 20, window: float = 60.0, addresses: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.addresses, self.clock = limit, window, addresses, clock
        self.failures: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.lock = threading.Lock()

    def blocked(self, address: str) -> bool:
        with self.lock:
            entry = self.failures.get(address)
            if entry is None:
                return False
            start, count = entry
            if self.clock() - start >= self.window:
                del self.failures[address]
                return False
            return count >= self.limit

    def failed(self, address: str) -> None:
        with self.lock:
            now = self.clock()
            start, count = self.failures.pop(address, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            self.failures[address] = (start, count + 1)
            while len(self.failures) > self.addresses:
                self.failures.popitem(last=False)


class Credentials:
    """The device credentials check: a slow passlib verification the first time a given
    user:password (and stored hash) is seen, remembered by a keyed digest (never the password)
    for the next ones, right or wrong, in a bounded cache."""

    def __init__(self, size: int = 1024) -> None:
        self.key = secrets.token_bytes(32)
        self.size = size
        self.known: OrderedDict[bytes, bool] = OrderedDict()
        self.lock = threading.Lock()

    def known_outcome(self, given: bytes, user: str, hashed: str | None) -> bool | None:
        """The remembered outcome for these credentials, or None (a slow check is needed)."""
        tag = self._tag(given, user, hashed)
        with self.lock:
            known = self.known.get(tag)
            if known is not None:
                self.known.move_to_end(tag)
            return known

    def _tag(self, given: bytes, user: str, hashed: str | None) -> bytes:
        """Keyed by what is expected too: another device user or password is a new check."""
        return hmac.new(self.key, b"%s\0%s\0%s" % ((hashed or "").encode(), user.encode(),
                                                    given), hashlib.sha256).digest()

    def check(self, given: bytes, user: str, hashed: str | None) -> bool:
        """given: the decoded `user:password` of the Authorization header."""
        tag = self._tag(given, user, hashed)
        with self.lock:
            known = self.known.get(tag)
            if known is not None:
                self.known.move_to_end(tag)
                return known
        name, _, password = given.partition(b":")
        try:
            password_text = password.decode()
        except UnicodeDecodeError:
            password_text = password.decode("latin-1")
        right = verify_secret(password_text, hashed)
        ok = right and hmac.compare_digest(name, user.encode())
        with self.lock:
            self.known[tag] = ok
            while len(self.known) > self.size:
                self.known.popitem(last=False)
        return ok


class Refusal(NamedTuple):
    """Why a fetch gets the bare 404, for serve's log only; counts: whether it counts against
    the address (not when the device credentials ask for a file that is no phone's, as a
    Yealink asks for its boot and common files before its own)."""

    reason: str
    counts: bool = True


def _refusal(authorised: bool, found: Lookup, profile: str, mac: str, stated: str | None,
             user_agent: str) -> Refusal:
    device = found.device
    if not authorised:
        return Refusal("wrong device user or password" if found.hashed is not None else
                       "no device password is set (mtctl config set-secret "
                       "provisioning.device_password --password-stdin)")
    if not profile:
        return Refusal("not a device file name (<MAC>.xml for Cisco MPP, <mac>.cfg for "
                       "Yealink)", counts=False)
    if device is None:
        return Refusal(f"no phone has MAC {shown_mac(mac)}")
    ref = f"phone {device.ref}"
    if device.profile != profile:
        return Refusal(f"{ref}'s model is "
                       + (f"provisioned as {device.profile}, not {profile}" if device.profile
                          else "not provisioned by MAC (see model add --profile)"))
    if not device.enabled:
        return Refusal(f"{ref} is disabled")
    if not device.serves(profile):
        return Refusal(f"{ref} has no SIP proxy yet: set sip.domain, and flexisip.proxy for a "
                       "publishable phone")
    return Refusal(f"its User-Agent does not state MAC {shown_mac(mac)} where its vendor "
                   f"puts it: {escape(user_agent[:120])}" if stated != mac else "refused")


def _basic(header: bytes | None) -> bytes | None:
    """The `user:password` of a Basic Authorization header, or None."""
    if header is None or len(header) > MAX_HEADER:
        return None
    scheme, _, encoded = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


class DeviceFiles:
    """The /d/ endpoint over one store; close() when the app stops."""

    def __init__(self, store: Store, connections: DriverConnections | None = None) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="mtctl-device")
        self.reader = DeviceReader(store, connections)
        self.writer = DeliveryWriter(store)
        self.throttle = Throttle()
        self.credentials = Credentials()
        warm_up()

    def routes(self) -> list[Route]:
        return [Route("/d/{file}", _Asgi(self.handle), methods=["GET"])]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.writer.close()
        self.reader.close()

    def decide(self, file: str, given: bytes, user_agent: str,
               found: Lookup | None = None) -> tuple[str, Device] | Refusal:
        """(profile, phone) when the request may have the phone's file, else why not; the same
        work whatever fails: the credentials are checked and the MAC looked up every time."""
        wanted = requested_file(file)
        profile, mac = wanted if wanted is not None else ("", NO_MAC)
        if found is None:
            found = self.reader.lookup(mac)
        authorised = self.credentials.check(given, found.user, found.hashed)
        stated = mac_in_user_agent(profile, user_agent) if profile else None
        device = found.device
        if authorised and device is not None and device.serves(profile) and stated == mac:
            return profile, device
        return _refusal(authorised, found, profile, mac, stated, user_agent)

    def answer(self, file: str, given: bytes, user_agent: str, client: str) -> \
            tuple[str, bytes] | None:
        """(content type, body) of the file, or None for a 404 (blocking: for tests)."""
        decided = self.decide(file, given, user_agent)
        if isinstance(decided, Refusal):
            return None
        profile, device = decided
        delivered = (self.writer.deliver(device.mac, profile, client).result(TIMEOUT)
                     if device.secure else (device, None))
        return self._file(file, profile, delivered, client)

    def _file(self, file: str, profile: str, delivered: tuple[Device, str | None] | None,
              client: str) -> tuple[str, bytes] | None:
        if delivered is None:  # changed since the lookup: no longer served
            return None
        device, password = delivered
        assert device.account is not None
        account = replace(device.account, password=password)
        log.info("GET /d/%s 200 %s%s from %s", file, account.auth_user,
                 " (new key)" if password is not None else "", client)
        return CONTENT_TYPE[profile], RENDERERS[profile](account).encode()

    async def _serve(self, file: str, given: bytes, user_agent: str, client: str) -> \
            tuple[str, bytes] | Refusal | None:
        loop = asyncio.get_running_loop()
        decided: tuple[str, Device] | Refusal
        found = self._quick_lookup(file, given)
        if found is not None:  # SQLite, known credentials: no thread to wait for
            decided = self.decide(file, given, user_agent, found)
        else:
            decided = await loop.run_in_executor(self.pool, self.decide, file, given,
                                                 user_agent)
        if isinstance(decided, Refusal):
            return decided
        profile, device = decided
        if not device.secure:
            return self._file(file, profile, (device, None), client)
        # rotate-on-fetch: a fresh key, only in this response
        delivered = await asyncio.wrap_future(self.writer.deliver(device.mac, profile, client))
        return self._file(file, profile, delivered, client)

    def _quick_lookup(self, file: str, given: bytes) -> Lookup | None:
        """On SQLite, the lookup on the event loop when it cannot wait (WAL reads do not wait
        for writers; a locked file answers Busy at once) and the credentials' outcome is
        already known (no slow hash to verify); None: do it all in a thread."""
        if not self.reader.never_blocks:
            return None
        wanted = requested_file(file)
        try:
            found = self.reader.lookup(wanted[1] if wanted is not None else NO_MAC, wait=False)
        except Busy:
            return None
        if self.credentials.known_outcome(given, found.user, found.hashed) is None:
            return None
        return found

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("unknown", 0))[0]
        headers = dict(scope["headers"])
        status, body, extra = 404, NOT_FOUND, [TEXT]
        if scope["method"] != "GET":
            pass  # HEAD never delivers a key
        elif self.throttle.blocked(client):
            status, body = 429, b"too many requests\n"
            extra = [TEXT, (b"retry-after", b"%d" % int(self.throttle.window))]
        elif (given := _basic(headers.get(b"authorization"))) is None:
            status, body, extra = 401, b"credentials needed\n", [TEXT, CHALLENGE]
        else:
            user_agent = headers.get(b"user-agent", b"")[:MAX_HEADER].decode("latin-1")
            file = scope["path_params"]["file"]
            try:
                found = await asyncio.wait_for(self._serve(file, given, user_agent, client),
                                               TIMEOUT)
            except (MtctlError, TimeoutError) as exc:
                log.error("GET /d/ 503: %s", str(exc) or "the store did not answer in time")
                found, status, body = None, 503, b"unavailable\n"
            except Exception:  # a bug: 503 and its traceback (never a key: none is made yet)
                log.exception("GET /d/ 503: unexpected error")
                found, status, body = None, 503, b"unavailable\n"
            if isinstance(found, Refusal):  # a phone's other files: usual, and unthrottled
                log.log(logging.INFO if found.counts else logging.DEBUG, "GET /d/%s 404 from "
                        "%s: %s", escape(file[:64]), client, found.reason)
                if found.counts:
                    self.throttle.failed(client)
            elif found is not None:
                content_type, body = found
                status, extra = 200, [(b"content-type", content_type.encode()),
                                      (b"cache-control", b"no-store")]
            elif status == 404:
                self.throttle.failed(client)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*extra, (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


class _Asgi:
    """An ASGI callable that Starlette routes to as it is (a plain function it would wrap)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], object]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)  # type: ignore[misc]
