"""Real processes for the end-to-end tests: Kamailio with the exported config, SIPp phones and
callers. Every process is started with a bounded life and stopped by the fixture that made it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
PACKAGES = ("kamailio", "kamailio-sqlite-modules", "kamailio-postgres-modules", "sip-tester",
            "linphone-cli")
REQUIRED_ENV = "MTCTL_E2E_REQUIRED"
HOST = "127.0.0.1"


def missing_tools(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def install_hint(missing: list[str]) -> str:
    return (f"{', '.join(missing)} not installed; on Debian/Ubuntu: apt-get install "
            + " ".join(PACKAGES))


_HANDED_OUT: set[int] = set()


def free_udp_port(span: int = 1) -> int:
    """A loopback UDP port (and the SPAN-1 after it) nobody uses right now, never one this
    test run handed out before (processes started together would otherwise get the same)."""
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        wanted = set(range(port, port + span))
        if port + span >= 65535 or wanted & _HANDED_OUT:
            continue
        socks = []
        try:
            for offset in range(span):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((HOST, port + offset))
            _HANDED_OUT.update(wanted)
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free loopback port")


def stop(proc: subprocess.Popen, timeout: float = 5) -> None:
    """Stop a process this test started: SIGTERM, then SIGKILL to its own process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:  # Kamailio's children, should the main process have died before them
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=timeout)


@dataclass
class Kamailio:
    port: int
    log: Path
    proc: subprocess.Popen

    def errors(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines()
                if re.search(r"\b(ERROR|CRITICAL|ALERT|BUG)\b", line)]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def options_ping(port: int, timeout: float) -> bool:
    """True when something answers a SIP OPTIONS on loopback PORT within TIMEOUT."""
    request = (f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:9;branch=z9hG4bK{time.monotonic_ns()}\r\n"
               "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\n"
               f"Call-ID: {time.monotonic_ns()}@probe\r\nCSeq: 1 OPTIONS\r\n"
               "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        # the reply goes to the Via's port unless rport: name ours
        request = request.replace(f"{HOST}:9;", f"{HOST}:{sock.getsockname()[1]};rport;")
        sock.settimeout(timeout)
        sock.sendto(request.encode(), (HOST, port))
        try:
            return sock.recv(4096).startswith(b"SIP/2.0 ")
        except OSError:
            return False


@contextmanager
def kamailio(cfg: Path, port: int, env: dict[str, str], workdir: Path) -> Iterator[Kamailio]:
    """Kamailio in the foreground on CFG; yields once it answers on PORT, stops it after."""
    log = workdir / "kamailio.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(workdir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **env}, start_new_session=True, cwd=workdir)
    running = Kamailio(port, log, proc)
    try:
        deadline = time.monotonic() + 10
        while not options_ping(port, 0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("Kamailio did not start:\n" + running.log_text()[-3000:])
        assert not running.errors(), "\n".join(running.errors())
        yield running
    finally:
        stop(proc)


@dataclass
class Sipp:
    """One SIPp process: a scenario, its log, and how it ended."""

    name: str
    proc: subprocess.Popen
    log: Path
    out: Path
    returncode: int | None = None

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""


@dataclass
class SippRunner:
    """Starts SIPp processes in WORKDIR and stops every one of them at the end."""

    workdir: Path
    started: list[Sipp] = field(default_factory=list)

    def start(self, name: str, scenario: str, *args: str, remote: str | None = None,
              keys: dict[str, str] | None = None, life: float = 30) -> Sipp:
        log = self.workdir / f"{name}.log"
        out = self.workdir / f"{name}.out"
        command = ["timeout", "-s", "KILL", str(life), "sipp"]
        if remote:
            command.append(remote)
        command += ["-sf", str(SCENARIOS / scenario), "-i", HOST, "-p", str(free_udp_port()),
                    "-mp", str(free_udp_port(span=4)), "-nostdin", "-trace_logs",
                    "-log_file", str(log), "-trace_err", "-error_file",
                    str(self.workdir / f"{name}.err")]
        for key, value in (keys or {}).items():
            command += ["-key", key, value]
        command += list(args)
        with open(out, "wb") as handle:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=handle,
                                    stderr=subprocess.STDOUT, cwd=self.workdir,
                                    start_new_session=True)
        sipp = Sipp(name, proc, log, out)
        self.started.append(sipp)
        return sipp

    def port_of(self, sipp: Sipp) -> int:
        args = sipp.proc.args
        assert isinstance(args, list)
        return int(args[args.index("-p") + 1])

    def wait(self, sipp: Sipp, timeout: float = 30) -> int:
        sipp.returncode = sipp.proc.wait(timeout=timeout)
        return sipp.returncode

    def stop_all(self) -> None:
        for sipp in self.started:
            stop(sipp.proc, timeout=2)


def register(runner: SippRunner, kamailio_port: int, domain: str,
             phones: list[tuple[str, str, int]], name: str = "register",
             expires: int = 300) -> dict[str, str]:
    """REGISTER each (auth user, password, contact port) at once; auth user -> outcome."""
    started = [
        runner.start(f"{name}-{user}", "register.xml", "-s", user, "-au", user, "-ap", password,
                     "-m", "1", "-timeout", "10s", "-timeout_error",
                     remote=f"{HOST}:{kamailio_port}",
                     keys={"domain": domain, "contact_port": str(port),
                           "expires": str(expires)}, life=15)
        for user, password, port in phones]
    return {user: word for user, (word, _) in refusals(started, runner).items()}


def refusals(started: list[Sipp], runner: SippRunner) -> dict[str, tuple[str, str]]:
    """Wait for register.xml processes; auth user -> (registered|refused, the 403's status
    line and its X-Mtctl-Node header, empty when registered)."""
    outcome = {}
    for sipp in started:
        runner.wait(sipp, timeout=20)
        for line in sipp.lines():
            word, _, rest = line.strip().partition(" ")
            if word in ("REGISTERED", "REFUSED"):
                user, _, detail = rest.partition(" ")
                node, bar, status = detail.partition("|")
                if bar:
                    detail = status + (f" (X-Mtctl-Node: {node.strip()})" if node.strip()
                                       else "")
                outcome[user] = (word.lower(), detail)
    return outcome


@dataclass
class CallResult:
    returncode: int
    responses: list[tuple[int, str]]  # (status, P-Asserted-Identity) in arrival order
    output: str

    @property
    def final(self) -> int | None:
        finals = [code for code, _ in self.responses if code >= 200]
        return finals[-1] if finals else None


def call(runner: SippRunner, kamailio_port: int, domain: str, number: str,
         name: str = "caller", life: float = 30, caller: str = "caller") -> CallResult:
    """Dial NUMBER through Kamailio as CALLER (the From user) and wait for the call to end."""
    sipp = runner.start(name, "caller.xml", "-s", number, "-m", "1", "-timeout", f"{life}s",
                        remote=f"{HOST}:{kamailio_port}",
                        keys={"domain": domain, "caller": caller}, life=life + 5)
    code = runner.wait(sipp, timeout=life + 10)
    responses = []
    for line in sipp.lines():
        match = re.match(r"RESPONSE (\d{3}) PAI=(.*)$", line.strip())
        if match:
            responses.append((int(match.group(1)), match.group(2).strip()))
    return CallResult(code, responses, sipp.output())


def requests(phone: Sipp, method: str) -> list[tuple[float, str]]:
    """(wall-clock time in ms, auth user) of every METHOD request a phone process logged."""
    found = []
    for line in phone.lines():
        # <METHOD> <user> <date> <time> <epoch seconds> <the matched request line>
        words = line.split()
        if len(words) > 4 and words[0] == method:
            found.append((float(words[4]) * 1000, words[1]))
    return found


def invites(phone: Sipp) -> list[tuple[float, str]]:
    """(wall-clock time in ms, auth user) of every INVITE a phone process received."""
    return requests(phone, "INVITE")


def cancels(phone: Sipp) -> list[tuple[float, str]]:
    """(wall-clock time in ms, auth user) of every CANCEL a phone process received (only
    phone_no_answer.xml logs them)."""
    return requests(phone, "CANCEL")
