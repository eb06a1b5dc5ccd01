"""Desk phones fetch their files by MAC from `mtctl serve` (`/d/<file>`), over real HTTP:
who gets a file, rotate-on-fetch, the same 404 for everything else, throttling, no key leaks."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import statistics
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, delete, select, update

from mtctl.serve_devices import Credentials, Throttle
from mtctl.store.tables import phone, secret
from tests.domain.test_devices import yealink_pairs
from tests.dump import plant
from tests.test_serve import Server, _dump, _stopped_log

DEVICE_PW = "device-password-0123"
CISCO_MAC, YEALINK_MAC = "00562b043615", "805ec0123456"
CISCO_UA = "Cisco-CP8841-3PCC/11.3.7 (00562b043615)"
YEALINK_UA = "Yealink SIP-T54W 96.86.0.100 80:5e:c0:12:34:56"
CISCO_FILE, YEALINK_FILE = "/d/00562B043615.xml", "/d/805ec0123456.cfg"


def basic(user: str = "mtctl", password: str = DEVICE_PW) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def headers(ua: str, user: str = "mtctl", password: str = DEVICE_PW) -> dict[str, str]:
    return {"User-Agent": ua, "Authorization": basic(user, password)}


def cisco_password(body: str) -> str | None:
    root = ET.fromstring(body)
    assert root.tag == "flat-profile"
    found = root.find("Password_1_")
    return found.text if found is not None else None


def ha1(user: str, password: str, realm: str = "pbx.example.com") -> str:
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()  # noqa: S324


def stored(url: str, auth_user: str):  # type: ignore[no-untyped-def]
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(select(phone).where(phone.c.sip_auth_user == auth_user)).one()
    engine.dispose()
    return row


@pytest.fixture
def desks(seeded):
    """40710:0 a secure Cisco 8841, 40710:2 a secure Yealink T54W, 40710:3 a plain Yealink."""
    seeded.ok("config", "set-secret", "provisioning.device_password", "--password-stdin",
              input=DEVICE_PW + "\n")
    seeded.ok("config", "set", "sip.proxy", "sip:10.0.0.5:5070;transport=udp")
    seeded.ok("phone", "set", "40710", "0", "--secure", "--mac", "00:56:2B:04:36:15")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Yealink T54W",
              "--secure", "--mac", "80:5e:c0:12:34:56")
    seeded.ok("phone", "add", "40710", "--position", "3", "--model", "Yealink T54W",
              "--mac", "80-5E-C0-00-00-03")
    return seeded


@pytest.fixture
def server(db_url):  # type: ignore[no-untyped-def]
    srv = Server(db_url)
    yield srv
    srv.stop()


def test_a_cisco_phone_gets_its_flat_profile_with_a_fresh_key_at_every_fetch(desks, server,
                                                                             db_url):
    status, body = server.get(CISCO_FILE, headers(CISCO_UA))
    assert status == 200, body
    first = cisco_password(body)
    assert first and len(first) >= 32
    root = ET.fromstring(body)
    assert root.findtext("User_ID_1_") == root.findtext("Auth_ID_1_") == "40710-0"
    assert root.findtext("Proxy_1_") == "pbx.example.com"
    assert root.findtext("Outbound_Proxy_1_") == "10.0.0.5:5070"
    assert root.findtext("Resync_Periodic") == "86400"
    row = stored(db_url, "40710-0")
    assert row.ha1 == ha1("40710-0", first)
    assert row.key_delivered_to == "127.0.0.1" and row.key_delivered_at is not None

    status, body = server.get(CISCO_FILE, headers(CISCO_UA))
    second = cisco_password(body)
    assert status == 200 and second and second != first
    row = stored(db_url, "40710-0")
    assert (row.ha1, row.prev_ha1) == (ha1("40710-0", second), ha1("40710-0", first))
    valid_until = row.prev_key_valid_until
    valid_until = valid_until if valid_until.tzinfo else valid_until.replace(tzinfo=UTC)
    assert valid_until > datetime.now(UTC) + timedelta(days=6)  # keys.grace_days, 7

    shown = json.loads(desks.ok("phone", "show", "40710", "0", "--json").stdout)
    assert shown["key_delivered_to"] == "127.0.0.1" and shown["key_delivered_at"]
    shown_table = desks.ok("phone", "show", "40710", "0", "--format", "table").stdout
    assert "key delivered to" in shown_table
    delivered = [a for a in json.loads(desks.ok("audit", "--json").stdout)
                 if a["action"] == "deliver-key"]
    assert [a["object"] for a in delivered] == ["phone 40710:0"] * 2
    assert delivered[0]["actor"] == "provisioning"
    assert delivered[0]["changes"]["delivered_to"] == [None, "127.0.0.1"]
    assert delivered[0]["changes"]["key_expires_at"][0] is not None  # the key made on add
    assert delivered[1]["changes"]["delivered_to"] == ["127.0.0.1", "127.0.0.1"]
    assert delivered[1]["changes"]["key_expires_at"][0] == \
        delivered[0]["changes"]["key_expires_at"][1]


def test_a_phone_is_pointed_at_its_extensions_node_once_the_node_has_an_address(desks,
                                                                                 server):
    desks.ok("node", "set", "madrid", "--sip-address", "192.0.2.10:5080")
    status, body = server.get(CISCO_FILE, headers(CISCO_UA))
    assert status == 200, body
    assert ET.fromstring(body).findtext("Outbound_Proxy_1_") == "192.0.2.10:5080"
    status, body = server.get(YEALINK_FILE, headers(YEALINK_UA))
    pairs = yealink_pairs(body)
    assert (pairs["account.1.outbound_proxy.1.address"],
            pairs["account.1.outbound_proxy.1.port"]) == ("192.0.2.10", "5080")


def test_a_yealink_phone_gets_its_cfg_and_resync_follows_the_setting(desks, server, db_url):
    desks.ok("config", "set", "provisioning.resync_hours", "6")
    status, body = server.get(YEALINK_FILE, headers(YEALINK_UA))
    assert status == 200, body
    pairs = yealink_pairs(body)
    assert pairs["account.1.auth_name"] == "40710-2"
    assert pairs["auto_provision.repeat.minutes"] == "360"
    assert stored(db_url, "40710-2").ha1 == ha1("40710-2", pairs["account.1.password"])


def test_a_non_secure_desk_phone_gets_everything_but_a_password(desks, server, db_url):
    before = stored(db_url, "40710-3")
    status, body = server.get("/d/805EC0000003.cfg", headers(YEALINK_UA.replace(
        "80:5e:c0:12:34:56", "80:5e:c0:00:00:03")))
    assert status == 200, body
    pairs = yealink_pairs(body)
    assert "account.1.password" not in pairs and pairs["account.1.auth_name"] == "40710-3"
    assert stored(db_url, "40710-3") == before  # no key made, nothing recorded


def test_everything_else_gets_the_same_bare_404(desks, server, db_url):
    desks.ok("phone", "add", "40710", "--position", "4", "--model", "Yealink T54W", "--secure",
             "--mac", "80:5e:c0:00:00:04", "--disabled")
    other = YEALINK_UA.replace("80:5e:c0:12:34:56", "80:5e:c0:00:00:04")
    before = _dump(db_url)
    cases = {
        "disabled phone": ("/d/805ec0000004.cfg", headers(other)),
        "wrong MAC in UA": (CISCO_FILE, headers(CISCO_UA.replace("615)", "616)"))),
        "no MAC in UA": (CISCO_FILE, headers("Cisco-CP8841-3PCC/11.3.7")),
        "other vendor's UA": (CISCO_FILE, headers(YEALINK_UA.replace(
            "80:5e:c0:12:34:56", "00:56:2b:04:36:15"))),
        "wrong password": (CISCO_FILE, headers(CISCO_UA, password="not-the-password")),
        "wrong user": (CISCO_FILE, headers(CISCO_UA, user="admin")),
        "unknown MAC": ("/d/00562B043699.xml", headers(CISCO_UA.replace("615)", "699)"))),
        "wrong profile": ("/d/00562B043615.cfg", headers(CISCO_UA)),
        "not a file name": ("/d/phone.xml", headers(CISCO_UA)),
    }
    for name, (path, hdrs) in cases.items():
        assert server.get(path, hdrs) == (404, "not found\n"), name
    assert _dump(db_url) == before  # no key was made for any of them
    status, _ = server.get(CISCO_FILE, {"User-Agent": CISCO_UA})
    assert status == 401


def test_head_never_makes_a_key(desks, server, db_url):
    before = _dump(db_url)
    assert server.get(CISCO_FILE, headers(CISCO_UA), method="HEAD")[0] == 404
    assert _dump(db_url) == before


def test_a_request_without_credentials_is_asked_for_them(desks, server):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/d/00562B043699.xml",
                                     headers={"User-Agent": CISCO_UA})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert caught.value.code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith('Basic realm="mtctl')


def test_failures_take_the_same_time_whatever_failed(desks, db_url):
    """Each path checks the credentials and looks the MAC up; no early answer. Measured on the
    endpoint's own work (HTTP on a shared machine adds more noise than the paths could)."""
    from mtctl.serve_devices import DeviceFiles
    from mtctl.store.db import open_store

    store = open_store(db_url)
    files = DeviceFiles(store)
    right = f"mtctl:{DEVICE_PW}".encode()
    cases = [("00562B043615.xml", right, CISCO_UA.replace("615)", "616)")),  # wrong UA MAC
             ("00562B043615.xml", b"mtctl:not-the-password", CISCO_UA),  # wrong password
             ("00562B043699.xml", right, CISCO_UA.replace("615)", "699)")),  # unknown MAC
             ("805ec0123456.cfg", b"admin:" + DEVICE_PW.encode(), YEALINK_UA)]  # wrong user
    try:
        for case in cases:  # the first sight of a password costs its hash verification
            assert files.answer(*case, "192.0.2.1") is None
        times: list[list[float]] = [[] for _ in cases]
        for _ in range(150):
            for i, case in enumerate(cases):
                start = time.perf_counter()
                assert files.answer(*case, "192.0.2.1") is None
                times[i].append(time.perf_counter() - start)
    finally:
        files.close()
        store.close()
    medians = [statistics.median(t) for t in times]
    assert max(medians) - min(medians) < max(0.0003, 0.35 * min(medians)), medians


def test_repeated_failures_from_one_address_are_throttled(desks, server):
    wrong = headers(CISCO_UA, password="not-the-password")
    statuses = [server.get(CISCO_FILE, wrong)[0] for _ in range(21)]
    assert statuses[:20] == [404] * 20 and statuses[20] == 429
    assert server.get(CISCO_FILE, headers(CISCO_UA))[0] == 429  # even the right phone, a while


def test_a_phone_asking_for_its_vendors_other_files_is_not_throttled(desks, server):
    """A Yealink asks for its boot and common files before its own, with the device
    credentials: an office of them behind one address still gets their files."""
    for name in ("805ec0123456.boot", "y000000000000.boot", "y000000000123.cfg") * 10:
        assert server.get(f"/d/{name}", headers(YEALINK_UA)) == (404, "not found\n"), name
    assert server.get(YEALINK_FILE, headers(YEALINK_UA))[0] == 200


def test_serve_logs_why_a_fetch_got_404_never_the_password(desks, server, db_url):
    desks.ok("phone", "add", "40710", "--position", "4", "--model", "Yealink T54W", "--secure",
             "--mac", "80:5e:c0:00:00:04", "--disabled")
    desks.ok("model", "add", "Acme Desk", "--vendor", "Acme", "--kind", "hardphone",
             "--profile", "cisco-mpp")
    desks.ok("phone", "set", "40710", "3", "--model", "Acme Desk")
    cases = {
        "wrong device user or password": (CISCO_FILE, headers(CISCO_UA, password="wrong-pw-1")),
        "its User-Agent does not state MAC 00:56:2b:04:36:15 where its vendor puts it: "
        "Cisco-CP8841-3PCC/11.3.7 (00562b043616)\\tx": (
            CISCO_FILE, headers(CISCO_UA.replace("615)", "616)\tx"))),
        "no phone has MAC 00:56:2b:04:36:99": (
            "/d/00562B043699.xml", headers(CISCO_UA.replace("615)", "699)"))),
        "phone 40710:4 is disabled": ("/d/805ec0000004.cfg", headers(
            YEALINK_UA.replace("80:5e:c0:12:34:56", "80:5e:c0:00:00:04"))),
        "phone 40710:3's model is provisioned as cisco-mpp, not yealink": (
            "/d/805ec0000003.cfg", headers(YEALINK_UA.replace("12:34:56", "00:00:03"))),
    }
    assert server.get("/d/y000000000123.cfg", headers(YEALINK_UA))[0] == 404
    for path, hdrs in cases.values():
        assert server.get(path, hdrs) == (404, "not found\n"), path
    plant(db_url, delete(secret))
    assert server.get(YEALINK_FILE, headers(YEALINK_UA))[0] == 404
    log = _stopped_log(server)
    for reason, (path, _) in cases.items():
        assert f"GET {path} 404 from 127.0.0.1: {reason}" in log, reason
    assert "no device password is set (mtctl config set-secret provisioning.device_password" \
        in log
    assert DEVICE_PW not in log and "wrong-pw-1" not in log
    assert "y000000000123.cfg" not in log  # a Yealink's common file: asked for at every boot


def test_the_throttle_forgets_old_windows_and_holds_a_bounded_number_of_addresses():
    now = [0.0]
    throttle = Throttle(limit=3, window=60, addresses=100, clock=lambda: now[0])
    for _ in range(3):
        throttle.failed("10.0.0.1")
    assert throttle.blocked("10.0.0.1") and not throttle.blocked("10.0.0.2")
    now[0] = 61
    assert not throttle.blocked("10.0.0.1")
    for i in range(10_000):
        throttle.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(throttle.failures) == 100


def test_credentials_are_checked_once_per_distinct_attempt():
    from mtctl.store.devices import _hasher

    hashed = _hasher().hash(DEVICE_PW)
    credentials = Credentials(size=4)
    assert credentials.check(f"mtctl:{DEVICE_PW}".encode(), "mtctl", hashed)
    assert not credentials.check(b"mtctl:wrong", "mtctl", hashed)
    assert not credentials.check(f"admin:{DEVICE_PW}".encode(), "mtctl", hashed)
    assert not credentials.check(f"mtctl:{DEVICE_PW}".encode(), "mtctl", None)
    assert credentials.check(f"mtctl:{DEVICE_PW}".encode(), "mtctl", hashed)  # remembered
    assert not credentials.check(f"mtctl:{DEVICE_PW}".encode(), "mtctl",
                                 _hasher().hash("a new device password"))
    assert len(credentials.known) <= 4
    assert all(DEVICE_PW.encode() not in tag for tag in credentials.known)


def test_a_new_device_user_takes_effect_at_once(desks, server):
    assert server.get(CISCO_FILE, headers(CISCO_UA))[0] == 200
    desks.ok("config", "set", "provisioning.device_user", "phones")
    assert server.get(CISCO_FILE, headers(CISCO_UA)) == (404, "not found\n")  # the old user
    assert server.get(CISCO_FILE, headers(CISCO_UA, user="phones"))[0] == 200


def test_concurrent_fetches_each_get_a_key_and_the_store_keeps_the_last_two(desks, server,
                                                                           db_url):
    passwords: list[str] = []
    lock = threading.Lock()

    def fetch() -> None:
        status, body = server.get(CISCO_FILE, headers(CISCO_UA))
        assert status == 200, body
        with lock:
            passwords.append(cisco_password(body) or "")

    threads = [threading.Thread(target=fetch) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(passwords)) == 12
    row = stored(db_url, "40710-0")
    digests = {ha1("40710-0", p): p for p in passwords}
    assert row.ha1 in digests and row.prev_ha1 in digests and row.ha1 != row.prev_ha1
    delivered = [a for a in json.loads(desks.ok("audit", "--json").stdout)
                 if a["action"] == "deliver-key"]
    assert len(delivered) == 12
    # each says what the one before it left, those delivered in one batch included
    assert [a["changes"]["delivered_to"][0] for a in delivered] == [None] + ["127.0.0.1"] * 11


def test_keys_rotate_marks_desk_phone_keys_due_instead_of_making_one(desks, db_url):
    plant(db_url, update(phone).values(key_expires_at=datetime.now(UTC) - timedelta(days=1),
                                       key_delivered_at=datetime.now(UTC)))  # fetched once
    before = {p: stored(db_url, p).ha1 for p in ("40710-0", "40710-2")}
    report = json.loads(desks.ok("keys", "rotate", "--json").stdout)
    assert report["count"] == 0
    assert report["marked"] == [{"extension": "40710", "position": 0},
                                {"extension": "40710", "position": 2}]
    assert {p: stored(db_url, p).ha1 for p in before} == before  # no key nobody has
    states = {k["position"]: k["state"] for k in
              json.loads(desks.ok("keys", "list", "--json").stdout)}
    assert states[0] == states[2] == "due-on-fetch"
    again = json.loads(desks.ok("keys", "rotate", "--json").stdout)
    assert again["marked"] == []  # once per due period
    marks = [a for a in json.loads(desks.ok("audit", "--json").stdout)
             if a["action"] == "mark-key-due"]
    assert len(marks) == 2


def test_check_warns_about_secure_desk_phones_that_never_fetched(desks, server):
    def never() -> set[str]:
        found = json.loads(desks("check", "--json").stdout)["warnings"]
        return {w["object"] for w in found if w["rule"] == "never-provisioned"}

    assert never() == {"phone 40710:0", "phone 40710:2"}
    assert server.get(CISCO_FILE, headers(CISCO_UA))[0] == 200
    assert never() == {"phone 40710:2"}


def test_a_phone_given_another_device_or_a_new_key_must_fetch_again(desks, server, db_url):
    """The device that fetched a key is no longer the phone's once its MAC changes: its keys
    stop working, and check and phone show say the phone has not fetched since."""
    def never() -> set[str]:
        found = json.loads(desks("check", "--json").stdout)["warnings"]
        return {w["object"] for w in found if w["rule"] == "never-provisioned"}

    old_device = [cisco_password(server.get(CISCO_FILE, headers(CISCO_UA))[1]) for _ in "ab"]
    assert server.get(YEALINK_FILE, headers(YEALINK_UA))[0] == 200
    assert never() == set()
    desks.ok("phone", "set", "40710", "0", "--mac", "00:56:2B:04:36:15")  # the same MAC
    assert stored(db_url, "40710-0").ha1 == ha1("40710-0", old_device[1])

    desks.ok("phone", "set", "40710", "0", "--mac", "00:56:2b:04:36:16")
    row = stored(db_url, "40710-0")
    assert row.ha1 is not None and row.prev_ha1 is None
    assert row.ha1 not in {ha1("40710-0", p or "") for p in old_device}
    shown = json.loads(desks.ok("phone", "show", "40710", "0", "--json").stdout)
    assert (shown["key_delivered_at"], shown["key_delivered_to"]) == (None, None)
    desks.ok("phone", "set", "40710", "2", "--not-secure")
    desks.ok("phone", "set", "40710", "2", "--secure")
    assert never() == {"phone 40710:0", "phone 40710:2"}

    new_ua = CISCO_UA.replace("615)", "616)")
    assert server.get("/d/00562b043616.xml", headers(new_ua))[0] == 200
    assert never() == {"phone 40710:2"}


def test_no_delivered_key_anywhere_but_in_its_response(desks, db_url):
    srv = Server(db_url)
    bodies: list[str] = []
    try:
        for path, ua in ((CISCO_FILE, CISCO_UA), (YEALINK_FILE, YEALINK_UA)) * 2:
            status, body = srv.get(path, headers(ua))
            assert status == 200
            bodies.append(body)
    finally:
        srv.stop()
    keys = [cisco_password(bodies[0]), yealink_pairs(bodies[1])["account.1.password"],
            cisco_password(bodies[2]), yealink_pairs(bodies[3])["account.1.password"]]
    assert all(keys) and len(set(keys)) == 4
    plant(db_url, update(phone).values(key_expires_at=datetime.now(UTC) - timedelta(days=1)))
    outputs = [desks.ok(*args) for args in (
        ("phone", "show", "40710", "0"), ("phone", "show", "40710", "2", "--json"),
        ("phone", "list", "--json"), ("keys", "list", "--json"), ("keys", "rotate", "--json"),
        ("audit",), ("audit", "--json"), ("check", "--json"), ("export",),
        ("config", "list", "--json"))]
    outputs.append(desks.ok("config", "set-secret", "provisioning.device_password",
                            "--password-stdin", input=DEVICE_PW + "\n"))
    haystacks = [r.output for r in outputs] + [_dump(db_url), srv.log]
    for key in [*keys, DEVICE_PW]:
        for haystack in haystacks:
            assert key not in haystack
    for body, key in zip(bodies, keys, strict=True):
        assert body.count(key) == 1
        assert all(key not in other for other in bodies if other is not body)
    assert re.search(r"GET /d/00562B043615\.xml 200 40710-0 \(new key\) from 127\.0\.0\.1",
                     srv.log)


def test_a_store_file_replaced_at_its_path_is_what_desk_phones_get_from_then_on(desks, server,
                                                                                db_url):
    """A restored backup (`mv new.db store.db`): lookups and key deliveries use the new file."""
    import os
    import sqlite3

    from sqlalchemy.engine import make_url

    if not db_url.startswith("sqlite"):
        pytest.skip("a PostgreSQL store has no file to replace")
    path = make_url(db_url).database
    assert server.get(CISCO_FILE, headers(CISCO_UA))[0] == 200

    restored = f"{path}.restored"
    with sqlite3.connect(path) as source, sqlite3.connect(restored) as copy:
        source.backup(copy)
        # In the backup, the Cisco phone is another device.
        copy.execute("UPDATE phone SET mac = '00562b040000', key_delivered_at = NULL "
                     "WHERE sip_auth_user = '40710-0'")
    copy.close()
    # Serve's last delivery is in the old file's WAL: the restore checkpoints it (README).
    source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    source.close()
    os.rename(path, f"{path}.old")  # half-way through a restore: no store at the path
    assert server.get(CISCO_FILE, headers(CISCO_UA))[0] == 503
    assert not os.path.exists(path)  # and serve did not create an empty one
    os.replace(restored, path)

    assert server.get(CISCO_FILE, headers(CISCO_UA))[0] == 404  # not this MAC any more

    moved_ua = CISCO_UA.replace(CISCO_MAC, "00562b040000")
    status, body = server.get("/d/00562b040000.xml", headers(moved_ua))
    assert status == 200, body
    row = stored(db_url, "40710-0")  # the delivery was written to the restored file
    assert row.mac == "00562b040000" and row.ha1 == ha1("40710-0", cisco_password(body) or "")
    assert row.key_delivered_at is not None
    assert "the store file was replaced" in _stopped_log(server)
