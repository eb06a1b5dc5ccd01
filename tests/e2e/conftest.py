"""End-to-end fixtures: a Kamailio on a free loopback port running `mtctl export kamailio`'s
config over the test's store, and SIPp processes; all stopped when the test ends.

Without kamailio/sipp/linphonec the tests skip, naming the Debian packages; with
MTCTL_E2E_REQUIRED=1 (CI) a missing tool fails them instead."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Mtctl
from tests.e2e import harness

DOMAIN = "pbx.example.com"


def require_tools(*tools: str) -> None:
    missing = harness.missing_tools(*tools)
    if not missing:
        return
    message = harness.install_hint(missing)
    if os.environ.get(harness.REQUIRED_ENV) == "1":
        pytest.fail(f"{harness.REQUIRED_ENV}=1 but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _e2e_tools() -> None:
    require_tools("kamailio", "sipp")  # the Linphone test asks for linphonec itself


@dataclass
class Pbx:
    """A running Kamailio over the test's store, and the SIPp processes of the test."""

    mtctl: Mtctl
    kamailio: harness.Kamailio
    sipp: harness.SippRunner
    workdir: Path
    domain: str = DOMAIN

    @property
    def port(self) -> int:
        return self.kamailio.port

    def port_of(self, node: str) -> int:
        """Where the phones of NODE's extensions register (one Kamailio: here)."""
        return self.kamailio.port

    def registrar(self, node: str) -> str | None:
        """The node ring-sim --live names for a registration of NODE's phones (None: the
        single-proxy export)."""
        return None

    def errors(self) -> list[str]:
        return self.kamailio.errors()

    def log_tail(self) -> str:
        return self.kamailio.log_text()[-2000:]


def start_kamailio(mtctl: Mtctl, workdir: Path,  # type: ignore[no-untyped-def]
                   extra_env: dict[str, str] | None = None):
    """Export the config with mtctl and run it (with EXTRA_ENV, e.g. TZ); a context manager
    yielding harness.Kamailio."""
    from mtctl.formats.kamailio import kamailio_db

    port = harness.free_udp_port()
    out = workdir / "kamailio"
    mtctl.ok("export", "kamailio", "--out", str(out), "--listen", f"udp:127.0.0.1:{port}")
    env = {**kamailio_db(mtctl.url, cwd=Path.cwd()).env, **(extra_env or {})}
    return harness.kamailio(out / "kamailio.cfg", port, env, workdir)


@pytest.fixture
def kamailio_env() -> dict[str, str]:
    """Extra environment for Kamailio (a test overrides it, e.g. to set TZ)."""
    return {}


@pytest.fixture
def pbx(mtctl: Mtctl, tmp_path: Path, kamailio_env: dict[str, str]) -> Iterator[Pbx]:
    mtctl.ok("config", "set", "sip.domain", DOMAIN)
    runner = harness.SippRunner(tmp_path)
    try:
        with start_kamailio(mtctl, tmp_path, kamailio_env) as kam:
            yield Pbx(mtctl, kam, runner, tmp_path)
            assert not kam.errors(), "\n".join(kam.errors())
    finally:
        runner.stop_all()


@pytest.fixture
def captured_passwords(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password mtctl generates, in order (mtctl never shows one)."""
    from mtctl.domain import keys

    made: list[str] = []
    real = keys.new_passwords

    def recording(count: int) -> list[str]:
        passwords = real(count)
        made.extend(passwords)
        return passwords

    monkeypatch.setattr(keys, "new_password", lambda: recording(1)[0])
    monkeypatch.setattr(keys, "new_passwords", recording)
    return made


def admin_password() -> str:
    return "pw-" + secrets.token_hex(8)
