"""A real Linphone (linphonec) provisioned by `mtctl provision` + `mtctl serve` registers with
the HA1 only, answers a call, and lives through a key rotation and the end of its grace period."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mtctl.domain.provisioning import new_token
from mtctl.store.db import open_store
from mtctl.store.live import live_registrations
from mtctl.store.tables import phone
from tests.dump import plant
from tests.e2e import harness
from tests.e2e.conftest import Pbx, require_tools

# user_agent: a fresh linphonec fetches its provisioning as "Unknown/..." and every later time
# as "Linphonec/...", and mtctl binds a token to the product of the first fetch's User-Agent:
# without a stable one, the fetch after a restart would be refused (404).
LINPHONERC = """[misc]
{config_uri}
[sip]
user_agent=Linphonec/5.1
sip_port={sip_port}
sip_tcp_port=-1
sip_tls_port=-1
default_proxy=0
register_only_when_network_is_up=0

[rtp]
audio_rtp_port={rtp_port}
video_rtp_port={video_port}

[sound]
playback_dev_id=
capture_dev_id=

[video]
enabled=0
capture=0
display=0
"""


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def serve(pbx: Pbx, tmp_path: Path) -> Iterator[str]:
    """`mtctl serve` on a free loopback port; yields its base URL."""
    port = harness.free_udp_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mtctl", "--db", pbx.mtctl.url, "serve", "--host",
             "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=0.5) as response:
                    return response.status == 200
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                return False

        wait_until(healthy, "mtctl serve")
        yield base
    finally:
        harness.stop(proc)


class Linphonec:
    """linphonec processes with their own HOME and config, stopped at the end of the test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []

    def rc(self, name: str, config_uri: str | None) -> Path:
        rtp = harness.free_udp_port(span=12)
        path = self.workdir / f"{name}.rc"
        path.write_text(LINPHONERC.format(
            config_uri=f"config-uri={config_uri}" if config_uri else "",
            sip_port=harness.free_udp_port(), rtp_port=rtp, video_port=rtp + 10))
        return path

    def start(self, name: str, rc: Path) -> subprocess.Popen:
        home = self.workdir / f"home-{name}"
        # without its data directory linphonec never gets to remote provisioning
        (home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        out = open(self.workdir / f"{name}.out", "ab")  # the child keeps its own copy
        proc = subprocess.Popen(
            ["timeout", "-s", "KILL", "120", "linphonec", "-c", str(rc), "-a", "-d", "0"],
            stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
            env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd=home, start_new_session=True)
        out.close()
        self.procs.append(proc)
        return proc

    def quit(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.write(b"quit\n")
                proc.stdin.flush()
                proc.wait(timeout=8)
            except (OSError, subprocess.TimeoutExpired):
                pass
        harness.stop(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.quit(proc)


@pytest.fixture
def linphonec(tmp_path: Path) -> Iterator[Linphonec]:
    require_tools("linphonec")
    runner = Linphonec(tmp_path)
    yield runner
    runner.stop_all()


def linphone_registered(url: str, user_agent_prefix: str = "Linphone") -> bool:
    store = open_store(url)
    try:
        with store.read() as conn:
            regs = live_registrations(conn)
    finally:
        store.close()
    reg = regs.get(("40710", 0))
    return reg is not None and reg.user_agent.startswith(user_agent_prefix)


def current_ha1(url: str) -> str:
    store = open_store(url)
    try:
        with store.read() as conn:
            return conn.execute(select(phone.c.ha1)).scalar_one()
    finally:
        store.close()


def test_linphone_provisioned_by_mtctl_registers_answers_and_survives_rotation(
        pbx, serve, linphonec, monkeypatch, tmp_path):
    mtctl = pbx.mtctl
    token = new_token()
    monkeypatch.setattr("mtctl.domain.provisioning.new_token", lambda: token)
    mtctl.ok("config", "set", "sip.proxy", f"sip:127.0.0.1:{pbx.port};transport=udp")
    mtctl.ok("config", "set", "provisioning.base_url", serve)
    mtctl.ok("node", "add", "n1")
    mtctl.ok("ext", "add", "40710", "--node", "n1", "--name", "Ana")
    mtctl.ok("phone", "add", "40710", "--position", "0", "--model",
             "VIVAit Call Business Android", "--secure")
    mtctl.ok("provision", "40710", "0")
    url = f"{serve}/{token}"
    log = pbx.kamailio.log_text

    # 1. fetch, register with the HA1 only, auto-answer a call
    app_rc = linphonec.rc("app", url)
    app = linphonec.start("app", app_rc)
    wait_until(lambda: linphone_registered(mtctl.url), "linphonec to register")
    assert "password" not in app_rc.read_text()
    old_ha1 = current_ha1(mtctl.url)
    assert f"ha1={old_ha1}" in app_rc.read_text()
    call = harness.call(pbx.sipp, pbx.port, pbx.domain, "40710", name="call-1")
    assert call.final == 200, (call.responses, call.output[-1500:])

    # 2. rotate: a device still holding the old key keeps registering during the grace period
    plant(mtctl.url, update(phone).values(key_expires_at=_past()))  # due: it has expired
    mtctl.ok("keys", "rotate")
    new_ha1 = current_ha1(mtctl.url)
    assert new_ha1 != old_ha1
    linphonec.quit(app)
    wait_until(lambda: not linphone_registered(mtctl.url), "linphonec to unregister")
    stale_rc = linphonec.rc("stale", None)
    stale_rc.write_text(stale_rc.read_text() + _account_sections(app_rc.read_text()))
    before = log().count("authenticated with the previous key")
    stale = linphonec.start("stale", stale_rc)
    wait_until(lambda: linphone_registered(mtctl.url), "the old key to register in grace")
    assert log().count("authenticated with the previous key") > before
    linphonec.quit(stale)
    wait_until(lambda: not linphone_registered(mtctl.url), "the stale device to unregister")

    # 3. a restarted app fetches the new key and registers with it
    in_grace = log().count("authenticated with the previous key")
    app = linphonec.start("app-restarted", app_rc)
    wait_until(lambda: linphone_registered(mtctl.url), "the restarted app to register")
    assert log().count("authenticated with the previous key") == in_grace  # the new key
    call = harness.call(pbx.sipp, pbx.port, pbx.domain, "40710", name="call-2")
    assert call.final == 200, call.responses
    linphonec.quit(app)
    wait_until(lambda: not linphone_registered(mtctl.url), "the app to unregister")
    assert f"ha1={new_ha1}" in app_rc.read_text()  # saved on exit

    # 4. after the grace period the old key is refused
    plant(mtctl.url, update(phone).values(prev_key_valid_until=_past()))
    refused = len(re.findall(r"authentication failed for sip:\S+ \(rc=-2\)", log()))
    stale = linphonec.start("stale-after-grace", stale_rc)
    wait_until(lambda: len(re.findall(r"authentication failed for sip:\S+ \(rc=-2\)", log()))
               > refused, "the old key to be refused")
    time.sleep(0.5)
    assert not linphone_registered(mtctl.url)
    linphonec.quit(stale)
    assert json.loads(mtctl.ok("ring-sim", "40710", "--live", "--json").stdout)["outcome"] \
        == "silent"


def _account_sections(rc: str) -> str:
    """The proxy and auth sections linphonec saved after provisioning (the old key)."""
    keep = []
    for block in re.split(r"\n(?=\[)", rc):
        if block.startswith(("[proxy_0]", "[auth_info_0]")):
            keep.append(block.strip() + "\n")
    assert len(keep) == 2, rc
    return "\n" + "\n".join(keep)


def _past():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(minutes=1)
