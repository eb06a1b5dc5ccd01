"""The portal over real HTTP, as a browser without JavaScript uses it: login, the seed's table,
changes through the CLI's rules, and the security promises of SPEC §11."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from mtctl.store.tables import portal_login_link
from tests.cli.test_secrets import everything_stored
from tests.dump import plant
from tests.portal.conftest import Client, Server, link_for

SEED_COLUMNS = ["Modelo de teléfono", "Extensión", "Ubicación", "Posición dispositivo", "Orden",
                "Habilitado", "Aprovisionar"]


def _cells(html: str, position: int) -> list[str]:
    row = re.search(rf'<tr id="phone-{position}">(.*?)</tr>', html, re.S)
    assert row, html
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def _phone(mtctl, number: str, position: int) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(mtctl.ok("phone", "show", number, str(position), "--json").stdout)


def test_link_login_shows_the_seed_table_in_spanish(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server, lang="es-ES,es;q=0.9,en;q=0.5")
    response = client.login(link_for(mtctl, "ana"))
    cookie = response.cookies[0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie, "plain http: a Secure cookie would never come back"
    home = client.get("/portal/")
    assert home.status == 200
    assert "PROPIETARIO" in home.body and "40710" in home.body and "40720" not in home.body
    page = client.get("/portal/ext/40710")
    assert page.status == 200
    headers = re.findall(r'<th scope="col">(.*?)</th>', page.body)
    assert headers == SEED_COLUMNS
    assert _cells(page.body, 0)[:4] == ["Linphone (no proxy)", "40710", "", "0"]
    assert "NO" in _cells(page.body, 0)[5]
    assert _cells(page.body, 2)[0] == "VIVAit Call Business Android"
    assert 'value="3"' in page.body.split('id="phone-2"')[1].split("</tr>")[0]
    assert "SÍ" in _cells(page.body, 2)[5]
    assert 'id="provision-2"' in page.body and 'id="provision-1"' not in page.body
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_english_by_accept_language_and_lang_override(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server, lang="en-GB,en;q=0.8")
    client.login(link_for(mtctl, "ana"))
    page = client.get("/portal/ext/40710")
    assert "Phone model" in page.body and "Device position" in page.body
    assert '<html lang="en">' in page.body
    spanish = client.get("/portal/ext/40710?lang=es")
    assert "Posición dispositivo" in spanish.body and '<html lang="es">' in spanish.body
    assert "Posición dispositivo" in client.get("/portal/ext/40710").body, "kept by a cookie"


def test_changes_go_through_the_cli_rules_and_are_audited(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    csrf = client.csrf("/portal/ext/40710")
    r = client.post("/portal/ext/40710/1/order", {"csrf": csrf, "order": "2"})
    assert r.status == 303 and r.headers["location"] == "/portal/ext/40710?saved=1"
    assert _phone(mtctl, "40710", 1)["order"] == 2
    r = client.post("/portal/ext/40710/2/disable", {"csrf": csrf})
    assert r.status == 303
    assert _phone(mtctl, "40710", 2)["enabled"] is False
    # A refusal shows the rule id and the hint, and changes nothing.
    before = everything_stored(mtctl.url)
    r = client.post("/portal/ext/40710/1/order", {"csrf": csrf, "order": "-1"})
    assert r.status == 422 and "order" in r.body
    r = client.post("/portal/ext/40710/2/order", {"csrf": csrf, "order": "99999999999"})
    assert r.status == 422, r.body
    assert everything_stored(mtctl.url) == before
    rows = json.loads(mtctl.ok("audit", "--json").stdout)
    mine = [(row["action"], row["object"]) for row in rows if row["actor"] == "portal:ana"]
    assert ("set", "phone 40710:1") in mine and ("disable", "phone 40710:2") in mine


def test_a_rule_refusal_names_the_rule_and_its_hint(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    mtctl.ok("config", "unset", "provisioning.base_url")
    csrf = client.csrf("/portal/ext/40710")
    r = client.post("/portal/ext/40710/0/provision", {"csrf": csrf})
    assert r.status == 422
    assert "MT015" in r.body and "How to fix it" in r.body
    assert "Linphone (no proxy)" in r.body, "the table is still shown"


def test_provision_shows_a_qr_svg_once_and_audits_it(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    r = client.post("/portal/ext/40710/2/provision", {"csrf": client.csrf("/portal/ext/40710")})
    assert r.status == 200, r.body
    assert '<figure id="qr"><svg' in r.body
    assert r.headers["cache-control"] == "no-store"
    rows = json.loads(mtctl.ok("audit", "--json").stdout)
    assert ("portal:ana", "provision", "phone 40710:2") in [
        (row["actor"], row["action"], row["object"]) for row in rows]


def test_another_users_phones_cannot_be_seen_or_changed(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    csrf = client.csrf()
    before = everything_stored(mtctl.url)
    assert client.get("/portal/ext/40720").status == 404
    assert "Sevilla" not in client.get("/portal/ext/40720").body
    for verb, form in [("order", {"order": "5"}), ("disable", {}), ("enable", {}),
                       ("provision", {})]:
        for target in ("40720/0", "40720/1", "99999/0", "40710/9", "40710/x", "40710/00007"):
            r = client.post(f"/portal/ext/{target}/{verb}", {"csrf": csrf, **form})
            assert r.status == 404, (target, verb, r.status)
    assert client.post("/portal/ext/40710/0/rm", {"csrf": csrf}).status == 404
    assert everything_stored(mtctl.url) == before


def test_posts_without_or_with_a_wrong_csrf_token_are_refused(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    other = Client(server)
    other.login(link_for(mtctl, "ana"))
    foreign = other.csrf()
    assert foreign != client.csrf(), "one token per session"
    before = everything_stored(mtctl.url)
    for form in ({"order": "5"}, {"order": "5", "csrf": ""}, {"order": "5", "csrf": "0" * 64},
                 {"order": "5", "csrf": foreign}):
        r = client.post("/portal/ext/40710/1/order", form)
        assert r.status == 403, r.body
        assert "security token" in r.body
    assert client.post("/portal/logout", {}).status == 403
    assert client.post("/portal/webcall/start", {}).status == 403
    assert everything_stored(mtctl.url) == before
    assert client.get("/portal/").status == 200 and "Log out" in client.get("/portal/").body


def test_used_expired_revoked_and_bogus_links_are_refused(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    used = link_for(mtctl, "ana")
    Client(server).login(used)
    for link in (used, server.base + "/portal/login/" + "A" * 43, server.base +
                 "/portal/login/short"):
        client = Client(server)
        assert client.get(link).status == 404
        r = client.post(link)
        assert r.status == 404 and not r.cookies, r.cookies
        assert "does not work" in r.body
    expired = link_for(mtctl, "ana")
    plant(mtctl.url, update(portal_login_link).values(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert Client(server).post(expired).status == 404
    revoked = link_for(mtctl, "ana")
    mtctl.ok("user", "logout-all", "ana")
    assert Client(server).post(revoked).status == 404


def test_logout_and_logout_all_end_live_sessions(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    first, second, third = Client(server), Client(server), Client(server)
    for client in (first, second, third):
        client.login(link_for(mtctl, "ana"))
        assert "Log out" in client.get("/portal/").body
    r = first.post("/portal/logout", {"csrf": first.csrf()})
    assert r.status == 200 and "You are logged out." in r.body
    assert any("mtctl_portal=" in c and "Max-Age=0" in c for c in r.cookies), r.cookies
    assert "Log out" not in first.get("/portal/").body
    assert "Log out" in second.get("/portal/").body
    mtctl.ok("user", "logout-all", "ana")
    for client in (second, third):
        assert "Log out" not in client.get("/portal/").body
        assert client.get("/portal/ext/40710").status == 303


def test_password_login_is_throttled(served) -> None:  # type: ignore[no-untyped-def]
    """Wrong passwords are counted per user and address, per address, and per user from
    anywhere; the server trusts X-Forwarded-For from loopback (uvicorn's default), so each
    header stands for another client."""
    mtctl, server = served
    right = "a long portal passphrase"
    mtctl.ok("user", "set-portal-password", "ana", "--password-stdin", input=right + "\n")
    client = Client(server)

    def login(address: str, username: str, password: str) -> int:
        return client.request("/portal/login", form={"username": username,
                                                     "password": password},
                              headers={"X-Forwarded-For": address}).status

    for _ in range(5):
        assert login("203.0.113.7", "ana", "wrong guess!!") == 401
    assert login("203.0.113.7", "ana", right) == 429, "throttled, even with the right password"
    # Somebody else's wrong guesses do not lock ana out where she is.
    assert login("198.51.100.9", "ana", right) == 303
    # One address guessing many users is stopped too.
    for i in range(20):
        assert login("203.0.113.8", f"user{i}", "wrong guess!!") == 401
    assert login("203.0.113.8", "ana", right) == 429
    # A guess spread over many addresses: 50 failures for ana in all, then she waits too.
    for i in range(45):
        assert login(f"192.0.2.{i // 4 + 1}", "ana", "wrong guess!!") == 401
    assert login("198.51.100.10", "ana", right) == 429
    fresh = Server(mtctl.url)  # the throttle lives in the server process
    try:
        other = Client(fresh)
        r = other.post("/portal/login", {"username": "ana", "password": right})
        assert r.status == 303 and "mtctl_portal=" in r.cookies[0]
        assert "ana" in other.get("/portal/").body
    finally:
        fresh.stop()


def test_webcall_start_and_stop_from_the_portal(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    mtctl.ok("ext", "add", "901", "--node", "madrid")
    mtctl.ok("phone", "add", "901", "--position", "0", "--model", "VIVAit Call Web")
    mtctl.ok("user", "set", "ana", "--webcall-mode", "exclusive", "--webcall-ext", "901")
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    assert "Your Web Call is not running." in client.get("/portal/").body
    r = client.post("/portal/webcall/start", {"csrf": client.csrf()})
    assert r.status == 303
    assert json.loads(mtctl.ok("webcall", "list", "--json").stdout)[0]["extension"] == "901"
    assert "running on extension 901" in client.get("/portal/").body
    r = client.post("/portal/webcall/start", {"csrf": client.csrf()})
    assert r.status == 409, "a second start is a conflict, as in the CLI"
    assert client.post("/portal/webcall/stop", {"csrf": client.csrf()}).status == 303
    assert json.loads(mtctl.ok("webcall", "list", "--json").stdout) == []
    actions = [(row["actor"], row["action"]) for row in
               json.loads(mtctl.ok("audit", "--json").stdout)]
    assert ("portal:ana", "start") in actions and ("portal:ana", "stop") in actions


def test_no_token_or_session_id_in_the_server_log(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    link = link_for(mtctl, "ana")
    client = Client(server)
    response = client.login(link)
    session_id = response.cookies[0].split("=", 1)[1].split(";", 1)[0]
    client.get("/portal/ext/40710")
    page = client.post("/portal/ext/40710/2/provision", {"csrf": client.csrf()})
    assert page.status == 200
    Client(server).post(link)  # a used link
    client.post("/portal/ext/40710/1/order", {"order": "x"})  # no CSRF
    log = server.stop()
    token = link.rsplit("/", 1)[1]
    assert token not in log and session_id not in log
    stored = everything_stored(mtctl.url)
    assert token not in stored and session_id not in stored


def test_serve_without_portal(example) -> None:  # type: ignore[no-untyped-def]
    server = Server(example.url, "--no-portal")
    try:
        client = Client(server)
        assert client.get("/portal").status == 404
        assert client.get("/portal/ext/40710").status == 404
        assert client.get("/portal/").status != 200
    finally:
        server.stop()


def test_a_broken_store_is_a_503_page_not_a_traceback(served) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    mtctl, server = served
    client = Client(server)
    client.login(link_for(mtctl, "ana"))
    plant(mtctl.url, text("DROP TABLE portal_session"))
    r = client.get("/portal/")
    assert r.status == 503, r.body
    assert "unavailable" in r.body and "Ask your administrator." in r.body
    assert "mtctl" not in r.body, "the detail is for the administrator, not the owner"
    log = server.stop()
    assert "Traceback" not in log
    assert "the store is unavailable" in log and "mtctl db upgrade" in log


def test_the_session_cookie_is_secure_behind_https(served) -> None:  # type: ignore[no-untyped-def]
    """Behind a TLS proxy on the same host (uvicorn trusts its X-Forwarded-Proto from
    loopback), the cookie is only ever sent over https."""
    mtctl, server = served
    client = Client(server)
    link = link_for(mtctl, "ana")
    r = client.request(link, form={}, headers={"X-Forwarded-Proto": "https"})
    assert r.status == 303
    cookie = r.cookies[0]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_the_login_page_says_to_ask_the_administrator_and_names_no_command(served) -> None:  # type: ignore[no-untyped-def]
    """An owner cannot run `mtctl`: the login page sends them to the administrator, in their
    language."""
    _, server = served
    for lang, asks in (("es-ES,es;q=0.9", "pida uno a su administrador"),
                       ("en", "ask your administrator for one")):
        page = Client(server, lang=lang).get("/portal/")
        assert page.status == 200
        assert asks in page.body, page.body
        assert "mtctl " not in page.body and "login-link" not in page.body
