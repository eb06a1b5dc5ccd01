"""The provisioning endpoint over real HTTP, and proof that no secret leaks anywhere."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from mtctl.domain import keys, provisioning
from mtctl.store.tables import audit_log, metadata, phone, provisioning_token

NS = {"lp": provisioning.LPCONFIG_NS}
TOKEN = "tok_" + "A1b2" * 9 + "xyz"  # 43 URL-safe characters, as a real token
PASSWORDS = iter(f"clear-password-{i:02d}-" + "q" * 20 for i in range(100))
UA = {"User-Agent": "LinphoneAndroid/5.2.5 (belle-sip/5.2.0)"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mtctl", "--db", url, "serve", "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"mtctl serve did not start: {self.log}")
            time.sleep(0.1)

    def get(self, path: str, headers: dict | None = None,
            method: str = "GET") -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers=headers or UA, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.log = out


@pytest.fixture
def provisioned(seeded, monkeypatch):
    monkeypatch.setattr(provisioning, "new_token", lambda: TOKEN)
    monkeypatch.setattr(keys, "new_passwords", lambda n: [next(PASSWORDS) for _ in range(n)])
    seeded.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure", "--order", "3")
    seeded.ok("provision", "40710", "2", "--json")
    return seeded


@pytest.fixture
def server(db_url) -> Iterator[Server]:
    srv = Server(db_url)
    yield srv
    srv.stop()


def _entries(xml_text: str) -> dict[str, dict[str, str]]:
    root = ET.fromstring(xml_text)
    assert root.tag == f"{{{provisioning.LPCONFIG_NS}}}config"
    return {
        section.get("name"): {e.get("name"): e.text for e in section.findall("lp:entry", NS)}
        for section in root.findall("lp:section", NS)
    }


def _ha1(url: str, auth_user: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(select(phone.c.ha1).where(phone.c.sip_auth_user == auth_user)
                             ).scalar_one()
    engine.dispose()
    return value


def test_fetch_serves_the_account_and_a_rotation_reaches_the_next_fetch(provisioned, server,
                                                                       db_url):
    status, body = server.get(f"/{TOKEN}")
    assert status == 200, body
    entries = _entries(body)
    auth = entries["auth_info_0"]
    assert auth["username"] == "40710-2"
    assert auth["ha1"] == _ha1(db_url, "40710-2")
    assert auth["algorithm"] == "MD5" and auth["realm"] == "pbx.example.com"
    assert "passwd" not in auth and "password" not in auth
    assert entries["proxy_0"]["reg_sendregister"] == "1"
    assert entries["proxy_0"]["reg_identity"].endswith("<sip:40710-2@pbx.example.com>")
    root = ET.fromstring(body)
    assert all(e.get("overwrite") == "true" for e in root.iter(f"{{{NS['lp']}}}entry"))
    old = auth["ha1"]

    from tests.dump import plant

    plant(db_url, update(phone).values(key_expires_at=datetime.now(UTC) - timedelta(days=1)))
    provisioned.ok("keys", "rotate")
    status, body = server.get(f"/{TOKEN}")
    assert status == 200
    assert _entries(body)["auth_info_0"]["ha1"] == _ha1(db_url, "40710-2") != old


def test_publishable_phones_get_the_flexisip_edge_over_tls(provisioned, server):
    provisioned.ok("config", "set", "flexisip.proxy", "sip:edge.example.com")
    provisioned.ok("phone", "set", "40710", "2", "--publishable")
    status, body = server.get(f"/{TOKEN}")
    assert status == 200, body
    assert _entries(body)["proxy_0"]["reg_proxy"] == "<sip:edge.example.com;transport=tls>"


def test_a_phone_registers_at_its_node_and_follows_its_extension_to_another(provisioned,
                                                                             server):
    provisioned.ok("config", "set", "sip.proxy", "sip:pbx.example.com:5060")
    assert _entries(server.get(f"/{TOKEN}")[1])["proxy_0"]["reg_proxy"] == \
        "<sip:pbx.example.com:5060>"  # a node without address: the site's proxy
    provisioned.ok("node", "set", "madrid", "--sip-address", "192.0.2.10:5070")
    assert _entries(server.get(f"/{TOKEN}")[1])["proxy_0"]["reg_proxy"] == \
        "<sip:192.0.2.10:5070>"
    provisioned.ok("node", "add", "lima", "--sip-address", "[2001:db8::7]:5060")
    provisioned.ok("ext", "set", "40710", "--node", "lima")
    assert _entries(server.get(f"/{TOKEN}")[1])["proxy_0"]["reg_proxy"] == \
        "<sip:[2001:db8::7]:5060>"
    provisioned.ok("config", "set", "flexisip.proxy", "sip:edge.example.com")
    provisioned.ok("phone", "set", "40710", "2", "--publishable")
    assert _entries(server.get(f"/{TOKEN}")[1])["proxy_0"]["reg_proxy"] == \
        "<sip:edge.example.com;transport=tls>"


def test_revoked_expired_unknown_and_foreign_tokens_get_404(provisioned, server, db_url):
    assert server.get("/" + "B" * 43)[0] == 404
    assert server.get("/not-a-token")[0] == 404
    assert server.get(f"/{TOKEN}")[0] == 200  # binds the token to this device
    other = {"User-Agent": "curl/8.0"}
    assert server.get(f"/{TOKEN}", other)[0] == 404
    provisioned.ok("provision", "revoke", "40710", "2")
    assert server.get(f"/{TOKEN}")[0] == 404


def test_a_first_anonymous_fetch_leaves_the_token_for_the_app_to_bind(provisioned, server):
    """A fresh linphonec fetches as `Unknown/...` once, then as itself."""
    assert server.get(f"/{TOKEN}", {"User-Agent": "Unknown/5.1.65"})[0] == 200
    assert server.get(f"/{TOKEN}", {"User-Agent": "Linphonec/5.1.65 (belle-sip)"})[0] == 200
    assert server.get(f"/{TOKEN}", {"User-Agent": "Linphonec/5.1.66"})[0] == 200
    assert server.get(f"/{TOKEN}", {"User-Agent": "curl/8.0"})[0] == 404


def test_a_token_not_redeemed_in_time_gets_404(provisioned, server, db_url):
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(provisioning_token).values(
            redeem_by=datetime.now(UTC) - timedelta(minutes=1)))
    engine.dispose()
    assert server.get(f"/{TOKEN}")[0] == 404


def _dump(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [[str(v) for v in row] for table in metadata.sorted_tables
                for row in conn.execute(select(table))]
    engine.dispose()
    return json.dumps(rows)


def test_no_clear_password_or_token_anywhere(seeded, db_url, monkeypatch):
    """Every key-related command's output, the audit trail, the database and the server log."""
    generated: list[str] = []

    def passwords(count: int) -> list[str]:
        generated.extend(next(PASSWORDS) for _ in range(count))
        return generated[-count:]

    monkeypatch.setattr(keys, "new_passwords", passwords)
    monkeypatch.setattr(provisioning, "new_token", lambda: TOKEN)
    admin_password = "admin-chosen-secret-42"
    outputs = [
        seeded.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p"),
        seeded.ok("phone", "add", "40710", "--position", "2", "--model",
                  "VIVAit Call Business Android", "--secure"),
        seeded.ok("phone", "set-password", "40710", "0", "--password-stdin",
                  input=admin_password + "\n"),
        seeded.ok("provision", "40710", "2"),
        seeded.ok("provision", "40710", "2", "--json"),
        seeded.ok("keys", "list"),
        seeded.ok("keys", "list", "--json"),
    ]
    from tests.dump import plant

    due = update(phone).values(key_expires_at=datetime.now(UTC) - timedelta(days=1),
                               prev_key_valid_until=None)  # expired, previous key let go
    plant(db_url, due)
    outputs.append(seeded.ok("keys", "rotate", "--verbose"))
    plant(db_url, due)
    outputs += [
        seeded.ok("keys", "rotate", "--json"),
        seeded.ok("phone", "show", "40710", "2", "--json"),
        seeded.ok("phone", "list", "--json"),
        seeded.ok("audit", "--json"),
        seeded.ok("audit"),
    ]
    srv = Server(db_url)
    try:
        assert srv.get(f"/{TOKEN}")[0] == 200
        assert srv.get("/" + "C" * 43)[0] == 404
    finally:
        srv.stop()
    secrets_ = [*generated, admin_password, TOKEN]
    assert len(generated) >= 3
    haystacks = [r.output for r in outputs] + [_dump(db_url), srv.log]
    for secret in secrets_:
        for haystack in haystacks:
            assert secret not in haystack
    assert "GET /<token> 200" in srv.log


def _token_row(url: str) -> tuple:
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(select(provisioning_token.c.redeemed_at, provisioning_token.c.device)
                           ).one()
        redeems = conn.execute(select(audit_log.c.id).where(audit_log.c.action == "redeem")
                               ).all()
    engine.dispose()
    return tuple(row), len(redeems)


def test_head_never_redeems_or_binds_a_token(provisioned, server, db_url):
    """A link checker's HEAD answers like GET would, but the token stays for the app."""
    assert server.get(f"/{TOKEN}", method="HEAD") == (200, "")
    assert server.get(f"/{TOKEN}", {"User-Agent": "curl/8.0"}, method="HEAD") == (200, "")
    assert _token_row(db_url) == ((None, None), 0)

    status, body = server.get(f"/{TOKEN}")  # the app's first fetch binds it
    assert status == 200 and _entries(body)["auth_info_0"]["username"] == "40710-2"
    (redeemed_at, device), redeems = _token_row(db_url)
    assert redeemed_at is not None and device == "LinphoneAndroid" and redeems == 1

    assert server.get(f"/{TOKEN}", {"User-Agent": "curl/8.0"}, method="HEAD") == (404, "")
    assert server.get(f"/{TOKEN}", method="HEAD") == (200, "")
    assert _token_row(db_url) == ((redeemed_at, "LinphoneAndroid"), 1)
    assert "GET 200 ×1, HEAD 200 ×3, HEAD 404 ×1" in _stopped_log(server)


def _stopped_log(server: Server) -> str:
    server.stop()
    return server.log


def test_concurrent_first_fetches_by_different_apps_bind_the_token_once(provisioned, server,
                                                                          db_url):
    results: dict[str, int] = {}

    def fetch(product: str) -> None:
        results[product] = server.get(f"/{TOKEN}", {"User-Agent": f"{product}/1.0"})[0]

    threads = [threading.Thread(target=fetch, args=(f"App{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [product for product, status in results.items() if status == 200]
    assert len(winners) == 1, results
    assert sorted(results.values()) == [200] + [404] * 7
    assert _token_row(db_url) == (_token_row(db_url)[0], 1)
    assert _token_row(db_url)[0][1] == winners[0]


class WriteLock:
    """Another program in a long write transaction: SQLite BEGIN IMMEDIATE and a write;
    PostgreSQL, every table a fetch reads locked against writers (EXCLUSIVE) and the token
    rows locked FOR UPDATE."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.held = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(make_url(self.url).database, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE setting SET value = value")
            self.held.set()
            self.release.wait(60)
            conn.execute("ROLLBACK")
            conn.close()
            return
        engine = create_engine(self.url)
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(text("LOCK TABLE provisioning_token, phone, extension, setting "
                              "IN EXCLUSIVE MODE"))
            conn.execute(text("SELECT id FROM provisioning_token FOR UPDATE"))
            self.held.set()
            self.release.wait(60)
            tx.rollback()
        engine.dispose()

    def __enter__(self) -> WriteLock:
        self.thread.start()
        assert self.held.wait(10), "could not take the write lock"
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.thread.join(10)


def _timed(server: Server, path: str, headers: dict | None = None) -> tuple[int, str, float]:
    start = time.monotonic()
    status, body = server.get(path, headers)
    return status, body, time.monotonic() - start


def test_healthz_and_repeat_fetches_answer_while_another_writer_holds_the_store(
        provisioned, server, db_url, monkeypatch):
    fresh = "tok_" + "Z9y8" * 9 + "abc"
    monkeypatch.setattr(provisioning, "new_token", lambda: fresh)
    provisioned.ok("phone", "add", "40710", "--position", "3", "--model",
                   "VIVAit Call Business Android", "--secure")
    provisioned.ok("provision", "40710", "3")
    assert server.get(f"/{TOKEN}")[0] == 200  # the first fetch binds the token (a write)
    with WriteLock(db_url):
        for _ in range(3):
            status, body, seconds = _timed(server, "/healthz")
            assert (status, body) == (200, "ok: store readable, schema "
                                      f"{body.rsplit(' ', 1)[-1]}") and seconds < 1, seconds
            status, body, seconds = _timed(server, f"/{TOKEN}")
            assert status == 200 and seconds < 1, (status, seconds)
            assert _entries(body)["auth_info_0"]["username"] == "40710-2"
            status, _, seconds = _timed(server, "/" + "D" * 43)
            assert status == 404 and seconds < 1, (status, seconds)
        # A first fetch needs the write lock: it waits for the writer instead of failing.
        waiting: list[tuple[int, str]] = []
        other = threading.Thread(target=lambda: waiting.append(server.get(f"/{fresh}")))
        other.start()
        time.sleep(0.5)
        status, _, seconds = _timed(server, "/healthz")
        assert status == 200 and seconds < 1, seconds
    other.join(15)
    assert waiting and waiting[0][0] == 200
    assert _entries(waiting[0][1])["auth_info_0"]["username"] == "40710-3"


def test_healthz_says_what_it_checks(provisioned, server, db_url):
    status, body = server.get("/healthz")
    assert status == 200 and body.startswith("ok: store readable, schema 0")


def test_a_store_file_replaced_at_its_path_is_served_from_then_on(provisioned, server, db_url):
    """A restored backup (`mv new.db store.db`) is what serve answers from next."""
    if not db_url.startswith("sqlite"):
        pytest.skip("a PostgreSQL store has no file to replace")
    path = make_url(db_url).database
    status, body = server.get(f"/{TOKEN}")
    assert status == 200
    old_ha1 = _entries(body)["auth_info_0"]["ha1"]

    restored = f"{path}.restored"
    with sqlite3.connect(path) as source, sqlite3.connect(restored) as copy:
        source.backup(copy)
        copy.execute("UPDATE phone SET ha1 = ? WHERE sip_auth_user = '40710-2'",
                     ("0123456789abcdef" * 2,))
    copy.close()
    source.close()
    os.rename(path, f"{path}.old")  # half-way through a restore: no store at the path
    assert server.get(f"/{TOKEN}") == (503, "unavailable\n")
    assert server.get("/healthz")[0] == 503
    assert not os.path.exists(path)  # and serve did not create an empty one
    os.replace(restored, path)

    status, body = server.get(f"/{TOKEN}")
    assert status == 200, body
    assert _entries(body)["auth_info_0"]["ha1"] == "0123456789abcdef" * 2 != old_ha1
    assert server.get("/healthz")[0] == 200
    assert server.get("/" + "E" * 43)[0] == 404
    # The restored file is used for writes too: a new token issued in it redeems.
    provisioned.ok("provision", "revoke", "40710", "2")
    assert server.get(f"/{TOKEN}")[0] == 404
    assert "the store file was replaced" in _stopped_log(server)


def test_responses_keep_their_shape(provisioned, server):
    """A 404 is bare and the same for every kind of refusal; other methods are 405."""
    import http.client

    def raw(method: str, path: str, headers: dict) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()

    status, headers, body = raw("GET", f"/{TOKEN}", UA)
    assert status == 200 and headers["content-type"] == "application/xml"
    assert headers["cache-control"] == "no-store" and int(headers["content-length"]) == len(body)
    refusals = [raw("GET", "/" + "F" * 43, UA), raw("GET", "/short", UA),
                raw("GET", f"/{TOKEN}", {"User-Agent": "curl/8.0"})]
    for status, headers, body in refusals:
        assert (status, body) == (404, b"not found\n")
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert "cache-control" not in headers
    assert raw("POST", f"/{TOKEN}", UA)[0] == 405
    assert raw("GET", f"/{TOKEN}", UA)[0] == 200  # a POST changed nothing


def test_a_batch_of_lookups_answers_each_token_for_itself(provisioned, db_url):
    """PostgreSQL serves concurrent fetches with one query for many tokens."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite looks tokens up one by one, on the event loop")
    from mtctl.store.db import open_store
    from mtctl.store.provisioning import TokenReader

    store = open_store(db_url)
    reader = TokenReader(store)
    try:
        found = reader.lookup_many([TOKEN, "B" * 43, "not-a-token", TOKEN])
    finally:
        reader.close()
        store.close()
    assert [f and f.account.auth_user for f in found] == ["40710-2", None, None, "40710-2"]
    assert found[0].redeemed_at is None and found[0].phone_ref == "40710:2"
