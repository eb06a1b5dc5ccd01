"""Benchmark `mtctl serve` under load, on SQLite and PostgreSQL, and fail when a target is missed.

For each backend it fills a store with many provisioned phones, starts its own `mtctl serve` on
a free loopback port, and drives it from an asyncio client (raw keep-alive HTTP/1.1
connections) in this process:

    .venv/bin/python bench/bench_serve.py                    # make bench
    .venv/bin/python bench/bench_serve.py --phones 5000 --seconds 5 --backend sqlite

1. first fetches: `--bound` tokens redeemed and bound to a device (writes), at the concurrency;
2. warm-up, then `--seconds` of repeat fetches by the bound devices (reads): valid fetches/s,
   latency p50/p99/max, errors, the server's RSS before and after;
3. the same load for `--lock-seconds` while this process holds a write transaction on the store
   (SQLite BEGIN IMMEDIATE; PostgreSQL LOCK TABLE ... IN EXCLUSIVE MODE on the tables a fetch
   reads), probing /healthz every 100 ms.

PostgreSQL runs in a fresh schema of MTCTL_BENCH_DATABASE_URL (or MTCTL_TEST_DATABASE_URL),
dropped afterwards; without either it is reported as SKIP. A valid fetch is a 200 carrying the
token's own SIP user; anything else, a timeout or a dropped connection is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from mtctl.domain.provisioning import token_hash
from mtctl.store.db import open_store, upgrade_store
from mtctl.store.tables import (
    extension,
    node,
    phone,
    phone_model,
    provisioning_token,
    setting,
    template,
)

ANDROID = "VIVAit Call Business Android"
UA = "LinphoneAndroid/5.2.5 (belle-sip/5.2.0)"
CHUNK = 10_000
FIRST_NUMBER = 500_000

# Targets, at --concurrency 50.
MIN_RATE = 1_000          # valid fetches/s
MAX_P99_MS = 100.0
MAX_RSS_GROWTH = 0.10     # server RSS after the load vs after the warm-up
MAX_HEALTHZ_S = 1.0       # under a held write lock
PG_ENV = ("MTCTL_BENCH_DATABASE_URL", "MTCTL_TEST_DATABASE_URL")


# --- the store ------------------------------------------------------------------------------

def fill(url: str, phones: int) -> list[tuple[str, str]]:
    """Migrate the store and add `phones` provisioned secure phones: [(token, SIP user)]."""
    upgrade_store(url)
    store = open_store(url)
    now = datetime.now(UTC)
    tokens = [secrets.token_urlsafe(32) for _ in range(phones)]
    try:
        with store.write() as conn:
            conn.execute(insert(setting), [
                {"key": "sip.domain", "value": "pbx.example.com"},
                {"key": "flexisip.proxy", "value": "sip:edge.example.com"},
                {"key": "provisioning.base_url", "value": "https://prov.example.com/p"}])
            conn.execute(insert(node).values(name="madrid"))
            node_id = conn.execute(select(node.c.id)).scalar_one()
            model_id = conn.execute(select(phone_model.c.id)
                                    .where(phone_model.c.name == ANDROID)).scalar_one()
            template_id = conn.execute(select(template.c.id)
                                       .where(template.c.name == "default")).scalar_one()
            for start in range(0, phones, CHUNK):
                span = range(start, min(phones, start + CHUNK))
                conn.execute(insert(extension), [
                    {"id": i + 1, "number": str(FIRST_NUMBER + i), "node_id": node_id,
                     "display_name": f"Desk {FIRST_NUMBER + i}" if i % 3 else None}
                    for i in span])
                conn.execute(insert(phone), [
                    {"id": i + 1, "extension_id": i + 1, "node_id": node_id, "position": 1,
                     "model_id": model_id, "template_id": template_id, "secure": True,
                     "publishable": i % 2 == 0, "sip_auth_user": f"{FIRST_NUMBER + i}-1",
                     "ha1": f"{i:032x}", "ha1_sha256": f"{i:064x}",
                     "key_expires_at": now + timedelta(days=90), "key_updated_at": now}
                    for i in span])
                conn.execute(insert(provisioning_token), [
                    {"phone_id": i + 1, "token_hash": token_hash(tokens[i]), "created_at": now,
                     "redeem_by": now + timedelta(days=1)} for i in span])
    finally:
        store.close()
    return [(tokens[i], f"{FIRST_NUMBER + i}-1") for i in range(phones)]


@dataclass
class Backend:
    name: str
    url: str
    hold_lock: Callable[[threading.Event, threading.Event], None]
    cleanup: Callable[[], None] = lambda: None


def sqlite_backend(workdir: Path) -> Backend:
    path = workdir / "serve.db"

    def hold(held: threading.Event, release: threading.Event) -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE setting SET value = value WHERE key = 'sip.domain'")
        held.set()
        release.wait()
        conn.execute("ROLLBACK")
        conn.close()

    return Backend("sqlite", f"sqlite:///{path}", hold)


def postgres_backend(base: str) -> Backend:
    schema = f"bench_serve_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)

    def hold(held: threading.Event, release: threading.Event) -> None:
        engine = create_engine(url_text)
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(text("LOCK TABLE provisioning_token, phone, extension, setting "
                              "IN EXCLUSIVE MODE"))
            held.set()
            release.wait()
            tx.rollback()
        engine.dispose()

    def cleanup() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return Backend("postgresql", url_text, hold, cleanup)


# --- the server -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, url: str, log: Path) -> None:
        self.port = free_port()
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mtctl", "--db", url, "serve", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while asyncio.run(probe(self.port, timeout=2))[0] != 200:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit(f"mtctl serve did not start; see {log}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- the load generator ---------------------------------------------------------------------

async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line[15:])
    return status, await reader.readexactly(length) if length else b""


async def probe(port: int, path: str = "/healthz", timeout: float = 5) -> tuple[int, float]:
    """One request on a fresh connection: (status or 0, seconds)."""
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout)
        try:
            status, _ = await asyncio.wait_for(exchange(
                reader, writer, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()), timeout)
        finally:
            writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        status = 0
    return status, time.perf_counter() - start


@dataclass
class Load:
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drive(port: int, work: Iterator[tuple[bytes, bytes]], concurrency: int, *,
                seconds: float | None = None, count: int | None = None,
                timeout: float = 30) -> Load:
    """Keep `concurrency` keep-alive connections busy with (request, expected) pairs."""
    load = Load()
    start = time.perf_counter()
    deadline = start + seconds if seconds else None
    remaining = [count] if count is not None else None

    def next_item() -> tuple[bytes, bytes] | None:
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        if remaining is not None:
            if remaining[0] <= 0:
                return None
            remaining[0] -= 1
        return next(work)

    async def worker() -> None:
        conn = None
        while (item := next_item()) is not None:
            request, expected = item
            sent = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", port)
                status, body = await asyncio.wait_for(exchange(*conn, request), timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                load.errors += 1
                load.first_error = load.first_error or f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            load.latencies.append(time.perf_counter() - sent)
            if status == 200 and expected in body:
                load.ok += 1
            else:
                load.errors += 1
                load.first_error = load.first_error or f"HTTP {status}"
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    load.seconds = time.perf_counter() - start
    return load


def requests_for(phones: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(f"GET /{token} HTTP/1.1\r\nHost: prov.example.com\r\nUser-Agent: {UA}\r\n\r\n"
             .encode(), f">{user}<".encode()) for token, user in phones]


def cycle(items: list[Any]) -> Iterator[Any]:
    while True:
        yield from items


# --- one backend ----------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    rows: list[tuple[str, str, str, bool | None]] = field(default_factory=list)

    def add(self, what: str, target: str, measured: str, ok: bool | None = None) -> None:
        self.rows.append((what, target, measured, ok))
        mark = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"  {what:<38} {target:<14} {measured:<44} {mark}", flush=True)


def bench(backend: Backend, args: argparse.Namespace, workdir: Path) -> Result:
    result = Result(backend.name)
    print(f"\n{backend.name}: {args.phones:,} provisioned phones, concurrency "
          f"{args.concurrency}", flush=True)
    start = time.perf_counter()
    phones = fill(backend.url, args.phones)
    result.add("build the store", "", f"{time.perf_counter() - start:.1f} s")
    server = Server(backend.url, workdir / f"serve-{backend.name}.log")
    try:
        run_load(server, phones, backend, args, result)
    finally:
        server.stop()
    return result


def run_load(server: Server, phones: list[tuple[str, str]], backend: Backend,
             args: argparse.Namespace, result: Result) -> None:
    bound = requests_for(phones[:args.bound])
    c = args.concurrency

    first = asyncio.run(drive(server.port, iter(bound), c, count=len(bound)))
    result.add("first fetches (redeem + bind: writes)", "0 errors",
               f"{first.ok:,} at {first.rate:,.0f}/s, p99 {first.pct(0.99):.0f} ms, "
               f"{first.errors} errors", first.errors == 0)
    if first.first_error:
        print(f"    first error: {first.first_error}")

    asyncio.run(drive(server.port, cycle(bound), c, seconds=args.warmup))
    rss_start = rss_mib(server.proc.pid)
    pid = server.proc.pid
    cpu_server, cpu_client, load_avg = cpu_seconds(pid), time.process_time(), os.getloadavg()[0]
    load = asyncio.run(drive(server.port, cycle(bound), c, seconds=args.seconds))
    cpu_server, cpu_client = cpu_seconds(pid) - cpu_server, time.process_time() - cpu_client
    rss_end = rss_mib(server.proc.pid)
    done = max(1, load.ok + load.errors)
    result.add("repeat fetches (reads)", f">= {MIN_RATE:,}/s",
               f"{load.rate:,.0f}/s ({load.ok:,} in {load.seconds:.1f} s)",
               load.rate >= MIN_RATE)
    result.add("  latency", f"p99 < {MAX_P99_MS:.0f} ms",
               f"p50 {load.pct(0.5):.1f} ms, p99 {load.pct(0.99):.1f} ms, "
               f"max {load.pct(1.0):.0f} ms", load.pct(0.99) < MAX_P99_MS)
    result.add("  errors", "0", f"{load.errors}" + (f" ({load.first_error})"
                                                   if load.first_error else ""),
               load.errors == 0)
    result.add("  CPU per request: server / this client", "",
               f"{cpu_server / done * 1e6:.0f} / {cpu_client / done * 1e6:.0f} µs "
               f"(server alone: {done / cpu_server if cpu_server else 0:,.0f}/s per core)")
    result.add("  load average (1 min)", "",
               f"{load_avg:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} CPUs")
    result.add("  server RSS after warm-up / after", f"< +{MAX_RSS_GROWTH:.0%}",
               f"{rss_start:.1f} / {rss_end:.1f} MiB ({load.ok + load.errors:,} requests)",
               rss_end <= rss_start * (1 + MAX_RSS_GROWTH))

    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=backend.hold_lock, args=(held, release), daemon=True)
    holder.start()
    if not held.wait(30):
        result.add("write lock held", "", "could not take the lock", False)
        return
    try:
        locked, health = asyncio.run(load_and_probe(server.port, bound, c, args.lock_seconds))
    finally:
        release.set()
        holder.join(30)
    worst = max(seconds for _, seconds in health)
    result.add("under a held write lock: fetches", "0 errors",
               f"{locked.rate:,.0f}/s, p99 {locked.pct(0.99):.1f} ms, {locked.errors} errors",
               locked.errors == 0)
    result.add("  /healthz", f"< {MAX_HEALTHZ_S:.0f} s, 200",
               f"{len(health)} probes, slowest {worst * 1000:.0f} ms, "
               f"{sum(status != 200 for status, _ in health)} not 200",
               worst < MAX_HEALTHZ_S and all(status == 200 for status, _ in health))


async def load_and_probe(port: int, bound: list[tuple[bytes, bytes]], concurrency: int,
                         seconds: float) -> tuple[Load, list[tuple[int, float]]]:
    health: list[tuple[int, float]] = []

    async def probes() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            health.append(await probe(port))
            await asyncio.sleep(0.1)

    load, _ = await asyncio.gather(drive(port, cycle(bound), concurrency, seconds=seconds),
                                   probes())
    return load, health


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phones", type=int, default=20_000)
    parser.add_argument("--bound", type=int, default=2_000,
                        help="tokens redeemed first, then fetched again and again")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lock-seconds", type=float, default=4.0)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    results: list[Result] = []
    pg_base = next((os.environ[k] for k in PG_ENV if os.environ.get(k)), None)
    with tempfile.TemporaryDirectory(prefix="mtctl-bench-serve-") as tmp:
        workdir = Path(tmp)
        if args.backend in ("sqlite", "both"):
            results.append(bench(sqlite_backend(workdir), args, workdir))
        if args.backend in ("postgresql", "both"):
            if pg_base is None:
                print(f"\npostgresql: SKIP (set {PG_ENV[0]} or {PG_ENV[1]})")
            else:
                backend = postgres_backend(pg_base)
                try:
                    results.append(bench(backend, args, workdir))
                finally:
                    backend.cleanup()
    failed = [f"{r.name}: {what.strip()}" for r in results for what, _, _, ok in r.rows
              if ok is False]
    print("\n" + ("FAIL: " + "; ".join(failed) if failed else "PASS: every target met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
