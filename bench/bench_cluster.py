"""Load on a 2-node cluster (SPEC §8): calls entering at node A for extensions living on node B.

    .venv/bin/python bench/bench_cluster.py                     # 100 calls/s for 60 s
    .venv/bin/python bench/bench_cluster.py --rate 50 --seconds 10 --extensions 100

It needs kamailio (with kamailio-postgres-modules), sipp and a PostgreSQL server: the store is a
fresh schema of MTCTL_BENCH_DATABASE_URL (or MTCTL_TEST_DATABASE_URL), dropped afterwards;
without them it prints SKIP and exits 0. Not part of `make bench` (it needs those services).

1. The store: nodes A and B on free loopback ports; `--extensions` extensions on B, one desk
   phone each, with a password (`phone set-password`'s store function).
2. `mtctl export kamailio --node A|B`, and one Kamailio per node, as exported.
3. `--phones` SIPp processes (scenarios/phone.xml) answer every call; every phone
   REGISTERs at B with one of them as its contact.
4. A SIPp caller offers `--rate` calls/s (110) to A for `--seconds` s (60), each to the next
   extension, held 500 ms and hung up. A relays each call to B, B rings the phone, the
   phone answers; ACK and BYE go through both nodes (both record-route).

It prints the calls completed per second, sustained (the mean of SIPp's per-second counts while
calls were offered, without the first two seconds and the last, and the slowest second), the
share of the offered calls completed, and the ERROR (or worse) lines in both Kamailio logs;
exits 1 when a target is missed: >= 100 calls/s sustained, >= 99.9 % completed, no Kamailio
error. SIPp's own messages on failed calls stay in the --keep directory.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e import harness  # noqa: E402

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
DOMAIN = "pbx.example.com"
PASSWORD = "bench-password-" + uuid.uuid4().hex[:8]
HOST = "127.0.0.1"
PG_ENV = ("MTCTL_BENCH_DATABASE_URL", "MTCTL_TEST_DATABASE_URL")
FIRST = 600_000
MIN_RATE = 100.0
MIN_COMPLETED = 0.999
FATAL = re.compile(r"\b(ERROR|CRITICAL|ALERT|BUG)\b")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    schema = f"bench_cluster_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def fill(url: str, ports: dict[str, int], extensions: int) -> list[tuple[str, str]]:
    """Nodes A and B, EXTENSIONS extensions on B with one phone each: [(number, auth user)]."""
    from mtctl.store import catalog, config, phones
    from mtctl.store import extensions as ext_store
    from mtctl.store.db import open_store, upgrade_store

    upgrade_store(url)
    store = open_store(url)
    made = []
    try:
        with store.write() as conn:
            config.set_value(conn, actor="bench", name="sip.domain", value=DOMAIN)
            for name, port in ports.items():
                catalog.add_node(conn, actor="bench", name=name, sip_address=f"{HOST}:{port}")
            for i in range(extensions):
                number = str(FIRST + i)
                ext_store.add_extension(conn, actor="bench", number=number, node_name="B",
                                        display_name=f"Desk {number}")
                phones.add_phone(conn, actor="bench", number=number, position=0,
                                 model="Generic SIP hardphone")
                phones.set_password(conn, actor="bench", number=number, position=0,
                                    password=PASSWORD)
                made.append((number, f"{number}-0"))
    finally:
        store.close()
    return made


def export(url: str, node: str, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "mtctl", "--db", url, "export", "kamailio", "--node",
                    node, "--out", str(out)], check=True, capture_output=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)


@contextmanager
def process(command: list[str], log: Path, env: dict[str, str] | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=log.parent,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def kamailio(stack: ExitStack, cfg: Path, port: int, env: dict[str, str], log: Path) -> None:
    proc = stack.enter_context(process(
        ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(log.parent)], log, env))
    deadline = time.monotonic() + 10
    while not harness.options_ping(port, 0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"Kamailio did not start:\n{log.read_text()[-2000:]}")


def sipp(scenario: str, *args: str, remote: str | None = None) -> list[str]:
    command = ["sipp"] + ([remote] if remote else [])
    return command + ["-sf", str(SCENARIOS / scenario), "-i", HOST, "-nostdin",
                      "-key", "domain", DOMAIN, *args]


def register(port: int, auth_user: str, contact_port: int) -> bool:
    """REGISTER AUTH_USER at loopback PORT with digest authentication (RFC 2617, MD5, qop
    auth); the contact is CONTACT_PORT on loopback. True on 200."""
    import hashlib

    def md5(value: str) -> str:
        return hashlib.md5(value.encode()).hexdigest()  # noqa: S324 (SIP digest is MD5)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(2)
        local = sock.getsockname()[1]
        call_id = uuid.uuid4().hex
        uri = f"sip:{DOMAIN}"
        authorization = ""
        for cseq in (1, 2):
            request = (f"REGISTER {uri} SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP {HOST}:{local};rport;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                       f"From: <sip:{auth_user}@{DOMAIN}>;tag={cseq}{call_id[:8]}\r\n"
                       f"To: <sip:{auth_user}@{DOMAIN}>\r\nCall-ID: {call_id}\r\n"
                       f"CSeq: {cseq} REGISTER\r\n"
                       f"Contact: <sip:{auth_user}@{HOST}:{contact_port}>\r\n{authorization}"
                       "Expires: 3600\r\nMax-Forwards: 70\r\nUser-Agent: bench-cluster\r\n"
                       "Content-Length: 0\r\n\r\n")
            sock.sendto(request.encode(), (HOST, port))
            reply = sock.recv(65535).decode(errors="replace")
            if reply.startswith("SIP/2.0 200"):
                return True
            found = re.search(r'realm="([^"]*)".*?nonce="([^"]*)"', reply, re.S)
            if not reply.startswith("SIP/2.0 401") or found is None:
                return False
            realm, nonce = found.groups()
            response = md5(f"{md5(f'{auth_user}:{realm}:{PASSWORD}')}:{nonce}:00000001:"
                           f"bench:auth:{md5(f'REGISTER:{uri}')}")
            authorization = (f'Authorization: Digest username="{auth_user}", realm="{realm}", '
                             f'nonce="{nonce}", uri="{uri}", response="{response}", '
                             'algorithm=MD5, qop=auth, nc=00000001, cnonce="bench"\r\n')
    return False


def fatal_lines(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if FATAL.search(line)]


def stat_rows(path: Path) -> list[dict[str, str]]:
    """SIPp's statistics, one row a second (-fd 1), the cumulative counts in the last."""
    if not path.exists():
        return []
    return list(csv.DictReader(path.read_text().splitlines(), delimiter=";"))


def run(args: argparse.Namespace, url: str, workdir: Path) -> bool:
    from mtctl.formats.kamailio import kamailio_db

    ports = dict(zip(("A", "B"), free_ports(2), strict=True))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    started = time.monotonic()
    made = fill(url, ports, args.extensions)
    print(f"store: nodes A {HOST}:{ports['A']}, B {HOST}:{ports['B']}; {len(made)} extensions "
          f"on B ({time.monotonic() - started:.1f} s)")
    env = kamailio_db(url, cwd=Path.cwd()).env
    logs = {}
    with ExitStack() as stack:
        for node, port in ports.items():
            out = workdir / node
            export(url, node, out)
            logs[node] = out / "kamailio.log"
            kamailio(stack, out / "kamailio.cfg", port, env, logs[node])
        phone_ports = free_ports(args.phones)
        for i, port in enumerate(phone_ports):
            stack.enter_context(process(
                sipp("phone.xml", "-p", str(port), "-mp", str(free_port())),
                workdir / f"uas-{i}.log"))
        refused = [auth for i, (_, auth) in enumerate(made)
                   if not register(ports["B"], auth, phone_ports[i % len(phone_ports)])]
        if refused:
            print(f"FAIL: B refused {len(refused)} REGISTERs, e.g. {refused[0]}")
            return False
        print(f"registered {len(made)} phones at B, on {len(phone_ports)} SIPp UAS processes")

        numbers = workdir / "numbers.csv"
        numbers.write_text("SEQUENTIAL\n" + "\n".join(n for n, _ in made) + "\n")
        total = int(args.rate * args.seconds)
        stats = workdir / "caller_stats.csv"
        started = time.monotonic()
        caller = subprocess.run(
            sipp("caller.xml", "-inf", str(numbers), "-r", str(args.rate), "-m", str(total),
                 "-l", str(int(args.rate * 10)), "-p", str(free_port()),
                 "-mp", str(free_port()), "-trace_stat", "-stf", str(stats), "-fd", "1",
                 "-timeout", f"{args.seconds + 60}s", "-recv_timeout", "10000",
                 *(["-trace_msg", "-trace_err"] if args.keep else []),
                 remote=f"{HOST}:{ports['A']}"),
            cwd=workdir, capture_output=True, timeout=args.seconds + 120)
        elapsed = time.monotonic() - started
        time.sleep(1)  # the last BYEs' transactions end before the logs are read
        errors = {node: fatal_lines(log) for node, log in logs.items()}
    periods = stat_rows(stats)
    final = periods[-1] if periods else {}
    done = int(final.get("SuccessfulCall(C)", 0))
    failed = int(final.get("FailedCall(C)", 0))
    # completions per second while calls were being offered, without the first two seconds
    # (ramp-up: the first calls are still held) and the last one (a partial second)
    offering = [i for i, row in enumerate(periods) if int(row.get("OutgoingCall(P)", 0))]
    window = periods[offering[0] + 2:offering[-1]] if offering else []
    per_second = [int(row.get("SuccessfulCall(P)", 0)) for row in window]
    sustained = sum(per_second) / len(per_second) if per_second else 0.0
    share = done / total if total else 0.0
    print(f"caller: {total} calls offered at {args.rate:g}/s to node A for {args.seconds:g} s, "
          f"each held 500 ms; {done} completed, {failed} failed in {elapsed:.1f} s "
          f"(sipp exit {caller.returncode})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = True

    def line(what: str, target: str, measured: str, passed: bool) -> None:
        nonlocal ok
        ok = ok and passed
        print(f"  {what:<32} {target:<10} {measured:<36} {'ok' if passed else 'FAIL'}")

    line("calls/s completed, sustained", f">= {MIN_RATE:g}",
         f"{sustained:.1f} (slowest second {min(per_second, default=0)})",
         sustained >= MIN_RATE)
    line("share completed", f">= {MIN_COMPLETED:.1%}", f"{share:.2%}", share >= MIN_COMPLETED)
    for node in ports:
        line(f"Kamailio {node}: error lines", "0", str(len(errors[node])), not errors[node])
        for text_line in errors[node][:3]:
            print(f"    {text_line[:160]}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=110.0, help="calls/s offered to node A")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--extensions", type=int, default=200)
    parser.add_argument("--phones", type=int, default=2, help="SIPp UAS processes")
    parser.add_argument("--keep", type=Path, help="keep logs in this directory")
    args = parser.parse_args()
    missing = [tool for tool in ("kamailio", "sipp") if shutil.which(tool) is None]
    base = next((os.environ[name] for name in PG_ENV if os.environ.get(name)), None)
    if missing or base is None:
        why = f"{', '.join(missing)} not installed" if missing else \
            f"no PostgreSQL: set {PG_ENV[0]}"
        print(f"SKIP: {why}")
        return 0
    with ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=False)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(postgres_schema(base))
        return 0 if run(args, url, workdir) else 1


if __name__ == "__main__":
    sys.exit(main())
