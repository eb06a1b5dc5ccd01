"""The portal against hostile or broken requests, over real HTTP: huge and cut-off bodies,
bytes that are not UTF-8, paths that name nothing. Each gets a short page with the right
status, in the visitor's language; never a traceback, never unbounded memory, never a change."""

from __future__ import annotations

import json
import re
import socket
import time

from tests.cli.test_secrets import everything_stored
from tests.portal.conftest import (
    HOST,
    SPANISH,
    Client,
    Server,
    link_for,
    spanish_ana_with_webcall_at_3,
)


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        found = re.search(r"VmHWM:\s+(\d+) kB", status.read())
    assert found
    return int(found.group(1))


def _raw(server: Server, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
    """Send HEAD then BODY on one connection; the status line and headers of the answer."""
    with socket.create_connection((HOST, server.port), timeout=timeout) as conn:
        conn.sendall(head)
        try:
            conn.sendall(body)
        except OSError:  # the server answered and closed before reading it all: fine
            pass
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_huge_form_body_is_refused_without_being_read(served) -> None:  # type: ignore[no-untyped-def]
    """A 200 MiB login form (no session needed) is a 413 at once: the server does not hold
    the body in memory first."""
    mtctl, server = served
    before = _peak_rss_kib(server.proc.pid)
    size = 200 * 1024 * 1024
    with socket.create_connection((HOST, server.port), timeout=20) as conn:
        conn.sendall(b"POST /portal/login HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        chunk, sent = b"a" * (1 << 20), 0
        started = time.monotonic()
        try:
            while sent < size:
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # refused and closed before the whole body was read
        answer = conn.recv(65536)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    grown = _peak_rss_kib(server.proc.pid) - before
    assert grown < 32 * 1024, f"the server peaked {grown} KiB higher for a refused body"
    assert elapsed < 10
    # chunked, with no length said up front: cut off as soon as it passes the limit
    head = (b"POST /portal/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    body = b"".join(b"4000\r\n" + b"a" * 0x4000 + b"\r\n" for _ in range(64)) + b"0\r\n\r\n"
    assert _raw(server, head, body).startswith(b"HTTP/1.1 413")
    assert "Traceback" not in server.stop()


def test_a_client_that_hangs_up_mid_form_leaves_no_traceback(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    cookie = next(c for c in client.jar if c.name == "mtctl_portal")
    before = everything_stored(mtctl.url)
    for path in ("/portal/ext/40710/2/order", "/portal/login"):
        with socket.create_connection((HOST, server.port), timeout=10) as conn:
            conn.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nCookie: mtctl_portal=%s\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: 100\r\n\r\ncsrf=" % (path.encode(),
                                                               cookie.value.encode()))
            time.sleep(0.3)
    time.sleep(0.5)
    assert client.get("/portal/").status == 200, "still serving"
    assert everything_stored(mtctl.url) == before
    log = server.stop()
    assert "Traceback" not in log and "ClientDisconnect" not in log, log


def test_percent_encoded_bytes_that_are_not_utf8_are_a_400(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = spanish_ana_with_webcall_at_3(mtctl, server)
    csrf = client.csrf()
    before = everything_stored(mtctl.url)
    for path, body in (("/portal/webcall/start", f"csrf={csrf}&extension=%ff%fe"),
                       ("/portal/ext/40710/2/order", f"csrf={csrf}&order=3%ff"),
                       ("/portal/login", "username=an%e1&password=x")):
        r = client.request(path, headers={"Content-Type": "application/x-www-form-urlencoded"},
                           data=body.encode())
        assert r.status == 400, (path, r.status, r.body)
        assert "No se pudo leer el formulario." in r.body
        assert "\ufffd" not in r.body
    assert everything_stored(mtctl.url) == before


def test_an_unknown_web_call_verb_is_a_404_and_stops_nothing(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    mtctl.ok("phone", "add", "40710", "--position", "3", "--model", "VIVAit Call Web")
    mtctl.ok("user", "set", "ana", "--webcall-mode", "multiterminal", "--webcall-position", "3")
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    assert client.post("/portal/webcall/start", {"csrf": client.csrf()}).status == 303
    for verb in ("restart", "STOP", "stop-all"):
        r = client.post(f"/portal/webcall/{verb}", {"csrf": client.csrf()})
        assert r.status == 404, (verb, r.status)
        assert "No such page." in r.body
    sessions = json.loads(mtctl.ok("webcall", "list", "--json").stdout)
    assert [s["user"] for s in sessions] == ["ana"], "the session still runs"


def test_a_phone_that_does_not_exist_is_refused_in_the_owners_words(served) -> None:  # type: ignore[no-untyped-def]
    """A free position of one's own extension reads like any phone that is not one's own:
    in Spanish for a Spanish owner, and never a command."""
    mtctl, server = served
    client = Client(server, lang=SPANISH)
    client.login(link_for(mtctl, "ana"))
    csrf = client.csrf()
    before = everything_stored(mtctl.url)
    for verb, form in (("order", {"order": "2"}), ("disable", {}), ("enable", {}),
                       ("provision", {})):
        r = client.post(f"/portal/ext/40710/7/{verb}", {"csrf": csrf, **form})
        assert r.status == 404, (verb, r.status)
        assert "No existe ese teléfono entre los suyos." in r.body, r.body
        assert "mtctl" not in r.body and "has no phone" not in r.body
    assert everything_stored(mtctl.url) == before


def test_a_form_sent_from_another_site_is_refused(served) -> None:  # type: ignore[no-untyped-def]
    """Login CSRF: another site's page must not log a visitor in as someone else (the
    attacker's own link or password), nor change anything; the browser says where a form
    came from (Sec-Fetch-Site), and the portal's own forms still work."""
    mtctl, server = served
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    victim = Client(server, lang=SPANISH)
    r = victim.request(link_for(mtctl, "bo"), form={}, headers=cross)
    assert r.status == 403 and not r.cookies, r.cookies
    assert "Este formulario llegó desde otro sitio" in r.body
    mtctl.ok("user", "set-portal-password", "bo", "--password-stdin",
             input="a long portal passphrase\n")
    r = victim.request("/portal/login", form={"username": "bo",
                                              "password": "a long portal passphrase"},
                       headers=cross)
    assert r.status == 403 and not r.cookies
    victim.login(link_for(mtctl, "ana"))
    before = everything_stored(mtctl.url)
    r = victim.request("/portal/ext/40710/2/disable", form={"csrf": victim.csrf()},
                       headers=cross)
    assert r.status == 403
    assert everything_stored(mtctl.url) == before
    same = {"Sec-Fetch-Site": "same-origin"}
    r = victim.request("/portal/ext/40710/2/disable", form={"csrf": victim.csrf()},
                       headers=same)
    assert r.status == 303


def test_unknown_portal_paths_and_wrong_methods_get_a_portal_page(served) -> None:  # type: ignore[no-untyped-def]
    """A path under /portal/ that names nothing is a 404, a method the path does not take a
    405 with Allow: each a portal page in the visitor's language with a way back, not
    Starlette's English plain text. The provisioning endpoint keeps its own bare answers."""
    mtctl, server = served
    spanish = Client(server, lang=SPANISH)
    for path in ("/portal/foo", "/portal/login/a/b", "/portal/ext/40710/2"):
        r = spanish.get(path)
        assert r.status == 404, (path, r.status)
        assert r.headers["content-type"].startswith("text/html"), path
        assert "No existe esa página." in r.body and 'lang="es"' in r.body
        assert 'href="/portal/"' in r.body and "Volver al portal" in r.body
        assert r.headers["cache-control"] == "no-store"
    for path, allowed in (("/portal/logout", "POST"), ("/portal/login", "POST"),
                          ("/portal/ext/40710/2/order", "POST"), ("/portal/webcall/stop", "POST")):
        r = spanish.get(path)
        assert r.status == 405, (path, r.status)
        assert r.headers["allow"] == allowed
        assert "Esta página no se abre así." in r.body and "Volver al portal" in r.body
    r = spanish.post("/portal/portal.css")
    assert r.status == 405 and "Esta página no se abre así." in r.body
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
    english = Client(server, lang="en")
    english.login(link_for(mtctl, "ana"))
    r = english.get("/portal/nothing/here")
    assert r.status == 404 and "No such page." in r.body and 'lang="en"' in r.body
    assert "Logged in as ana" in r.body, "the visitor's own session, as on every page"
    assert "Not Found" not in r.body
    r = english.post("/portal")  # kept a POST by the 308 to /portal/, which takes none
    assert r.status == 308
    r = english.post("/portal/")
    assert r.status == 405 and "This page cannot be opened this way." in r.body
    # the provisioning endpoints answer as before
    r = english.get("/nosuchtoken")
    assert r.status == 404 and r.body == "not found\n"
    r = english.post("/nosuchtoken")
    assert r.status == 405 and r.body == "Method Not Allowed"
    assert "Traceback" not in server.stop()


def test_request_headers_are_bounded_for_the_portal_and_provisioning_alike(served) -> None:  # type: ignore[no-untyped-def]
    """A 1 MiB header, a 60 KB cookie or a head trickled in small pieces is refused (431) and
    the connection closed, on the portal's paths and the provisioning endpoints alike; the
    server does not grow by what was sent, and ordinary requests still work."""
    mtctl, server = served
    before = _peak_rss_kib(server.proc.pid)
    for path in (b"/portal/", b"/portal/login", b"/healthz", b"/d/001122334455.cfg",
                 b"/" + b"t" * 43):
        for extra in (b"X-Big: " + b"a" * (1 << 20), b"Cookie: c=" + b"b" * 60_000):
            answer = _raw(server, b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (path, extra))
            assert answer.startswith(b"HTTP/1.1 431"), (path, answer[:100])
    with socket.create_connection((HOST, server.port), timeout=10) as conn:
        conn.sendall(b"GET /portal/ HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        try:
            for _ in range(200):  # 200 KB in 1 KB headers, one by one
                conn.sendall(b"X-A: " + b"a" * 1000 + b"\r\n")
        except OSError:
            pass
        answer = conn.recv(200)
    assert answer.startswith(b"HTTP/1.1 431"), answer
    grown = _peak_rss_kib(server.proc.pid) - before
    assert grown < 16 * 1024, f"the server peaked {grown} KiB higher for refused headers"
    client = Client(server, lang=SPANISH)
    client.login(link_for(mtctl, "ana"))
    page = client.get("/portal/ext/40710", headers={"X-Padding": "p" * 8000})
    assert page.status == 200 and "Posición dispositivo" in page.body
    csrf = client.csrf("/portal/ext/40710")
    r = client.request("/portal/ext/40710/2/order", form={"csrf": csrf, "order": "4",
                                                          "pad": "x" * 15_000},
                       headers={"X-Padding": "p" * 8000})
    assert r.status == 303, r.body
    assert "Traceback" not in server.stop()
