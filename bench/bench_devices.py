"""Benchmark desk phone provisioning (`GET /d/<MAC>.xml`) with rotate-on-fetch, on SQLite and
PostgreSQL, and fail when a target is missed.

For each backend it fills a store with desk phones (Cisco 8841, each with a MAC), starts its
own `mtctl serve` on a free loopback port and drives it from an asyncio client over
`--concurrency` keep-alive connections, with the vendor's User-Agent and the device
credentials:

    .venv/bin/python bench/bench_devices.py                  # make bench
    .venv/bin/python bench/bench_devices.py --phones 2000 --seconds 5 --backend sqlite

1. baseline: `--seconds` of fetches by non-secure desk phones (the same lookups and
   credentials check, the file without a password: no write);
2. `--seconds` of fetches by secure desk phones: each makes a fresh key, stores its digests,
   keeps the previous one and writes an audit row, in one write transaction.

It prints fetches/s, p50/p99/max latency, errors, the server's CPU per fetch and the ratio of
the rotating fetches to the baseline, and checks afterwards that the store holds one
`deliver-key` audit row per successful rotating fetch. PostgreSQL runs in a fresh schema of
MTCTL_BENCH_DATABASE_URL (or MTCTL_TEST_DATABASE_URL), dropped afterwards. A valid fetch is a
200 carrying the phone's own SIP user (and, when secure, a password).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_serve import (
    PG_ENV,
    Backend,
    Load,
    Result,
    Server,
    cpu_seconds,
    cycle,
    drive,
    postgres_backend,
    sqlite_backend,
)
from sqlalchemy import func, insert, select

from mtctl.store.db import open_store, upgrade_store
from mtctl.store.tables import (
    audit_log,
    extension,
    node,
    phone,
    phone_model,
    secret,
    setting,
    template,
)

CISCO = "Cisco 8841"
DEVICE_PW = "bench-device-password"
FIRST_NUMBER = 600_000

# Targets, at --concurrency 50 (issue: desk phones by MAC).
MIN_RATE = 300          # rotating fetches/s, each with a new key
MAX_P99_MS = 150.0


def mac_of(i: int) -> str:
    return f"00562b{i:06x}"


def fill(url: str, phones: int) -> None:
    """Migrate the store and add `phones` secure and `phones` non-secure desk phones."""
    from passlib.hash import argon2

    upgrade_store(url)
    store = open_store(url)
    now = datetime.now(UTC)
    try:
        with store.write() as conn:
            conn.execute(insert(setting), [
                {"key": "sip.domain", "value": "pbx.example.com"},
                {"key": "sip.proxy", "value": "sip:10.0.0.5:5060;transport=udp"}])
            conn.execute(insert(secret).values(key="provisioning.device_password",
                                               hash=argon2.hash(DEVICE_PW), set_at=now))
            conn.execute(insert(node).values(name="madrid"))
            node_id = conn.execute(select(node.c.id)).scalar_one()
            model_id = conn.execute(select(phone_model.c.id)
                                    .where(phone_model.c.name == CISCO)).scalar_one()
            template_id = conn.execute(select(template.c.id)
                                       .where(template.c.name == "default")).scalar_one()
            total = 2 * phones
            conn.execute(insert(extension), [
                {"id": i + 1, "number": str(FIRST_NUMBER + i), "node_id": node_id,
                 "display_name": f"Desk {FIRST_NUMBER + i}"} for i in range(total)])
            conn.execute(insert(phone), [
                {"id": i + 1, "extension_id": i + 1, "node_id": node_id, "position": 0,
                 "model_id": model_id, "template_id": template_id, "secure": i < phones,
                 "sip_auth_user": f"{FIRST_NUMBER + i}-0", "mac": mac_of(i),
                 "ha1": f"{i:032x}" if i < phones else None,
                 "ha1_sha256": f"{i:064x}" if i < phones else None,
                 "key_expires_at": now + timedelta(days=90) if i < phones else None,
                 "key_updated_at": now} for i in range(total)])
    finally:
        store.close()


def requests_for(indexes: range, secure: bool) -> list[tuple[bytes, bytes]]:
    auth = base64.b64encode(f"mtctl:{DEVICE_PW}".encode()).decode()
    items = []
    for i in indexes:
        mac = mac_of(i)
        request = (f"GET /d/{mac.upper()}.xml HTTP/1.1\r\nHost: prov.example.com\r\n"
                   f"User-Agent: Cisco-CP8841-3PCC/11.3.7 ({mac})\r\n"
                   f"Authorization: Basic {auth}\r\n\r\n").encode()
        expected = (b"<Password_1_>" if secure
                    else f"<User_ID_1_>{FIRST_NUMBER + i}-0<".encode())
        items.append((request, expected))
    return items


def deliveries(url: str) -> int:
    store = open_store(url)
    try:
        with store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)
                                    .where(audit_log.c.action == "deliver-key")).scalar_one())
    finally:
        store.close()


def measure(server: Server, work: list[tuple[bytes, bytes]], args: argparse.Namespace,
            result: Result, what: str, target: str | None) -> Load:
    asyncio.run(drive(server.port, cycle(work), args.concurrency, seconds=args.warmup))
    pid = server.proc.pid
    cpu = cpu_seconds(pid)
    load = asyncio.run(drive(server.port, cycle(work), args.concurrency, seconds=args.seconds))
    cpu = cpu_seconds(pid) - cpu
    done = max(1, load.ok + load.errors)
    result.add(what, target or "", f"{load.rate:,.0f}/s ({load.ok:,} in {load.seconds:.1f} s)",
               load.rate >= MIN_RATE if target else None)
    result.add("  latency", f"p99 < {MAX_P99_MS:.0f} ms" if target else "",
               f"p50 {load.pct(0.5):.1f} ms, p99 {load.pct(0.99):.1f} ms, "
               f"max {load.pct(1.0):.0f} ms", load.pct(0.99) < MAX_P99_MS if target else None)
    result.add("  errors", "0", f"{load.errors}" + (f" ({load.first_error})"
                                                   if load.first_error else ""),
               load.errors == 0)
    result.add("  server CPU per fetch", "", f"{cpu / done * 1e6:.0f} µs")
    return load


def bench(backend: Backend, args: argparse.Namespace, workdir: Path) -> Result:
    result = Result(backend.name)
    print(f"\n{backend.name}: {args.phones:,} secure and {args.phones:,} non-secure desk "
          f"phones, concurrency {args.concurrency}", flush=True)
    start = time.perf_counter()
    fill(backend.url, args.phones)
    result.add("build the store", "", f"{time.perf_counter() - start:.1f} s")
    server = Server(backend.url, workdir / f"serve-{backend.name}.log")
    try:
        base = measure(server, requests_for(range(args.phones, 2 * args.phones), False), args,
                       result, "baseline: non-secure fetches (reads)", None)
        before = deliveries(backend.url)
        rotating = measure(server, requests_for(range(args.phones), True), args, result,
                           "rotating fetches (a new key each)", f">= {MIN_RATE}/s")
    finally:
        server.stop()
    result.add("  vs the baseline", "", f"{rotating.rate / base.rate if base.rate else 0:.2f} "
               f"× its rate, {rotating.pct(0.99) / base.pct(0.99):.2f} × its p99")
    made = deliveries(backend.url) - before
    # Warm-up fetches made keys too; every 200 of the measured run is among them.
    result.add("  one deliver-key audit row per key", f">= {rotating.ok:,}", f"{made:,}",
               made >= rotating.ok)
    result.add("  load average (1 min)", "", f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phones", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    results: list[Result] = []
    pg_base = next((os.environ[k] for k in PG_ENV if os.environ.get(k)), None)
    with tempfile.TemporaryDirectory(prefix="mtctl-bench-devices-") as tmp:
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
