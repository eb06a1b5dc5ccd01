"""Rotation rate of `mtctl keys rotate` on 100,000 due phones (SQLite), with peak memory.

Run: .venv/bin/python bench/bench_rotate.py [--phones N] [--runs N]
Target: >= 150,000 phones/s, and peak memory flat in the number of phones (the 100,000-phone
run uses about as much memory as a 10,000-phone run).

Each store is built once; each of --runs rotations runs on a fresh copy of it, and the
fastest counts, as in bench_store.py (other work on the machine only ever adds time); the
peak RSS is the highest of the runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlite_files import copy_store, reference_ms  # bench/, beside this script

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATE = 150_000  # phones rotated per second, start-up excluded



def rotate(url: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one `keys rotate` run
    in its own process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mtctl", "--db", url, "--actor", "bench",
                             "keys", "rotate"], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("keys rotate failed")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def startup(url: str) -> tuple[float, float]:
    """Wall and CPU seconds of a run with nothing due: the fixed cost to subtract."""
    seconds, cpu, _ = rotate(url)
    return seconds, cpu


def build(url: str, phones: int) -> None:
    """Make the store in a child process: a child's peak RSS includes its parent's at fork."""
    code = ("import sys; from mtctl.store.db import upgrade_store; "
            "from tests.bulk import make_due_phones; url, n = sys.argv[1], int(sys.argv[2]); "
            "upgrade_store(url); make_due_phones(url, extensions=n // 4, per_extension=4)")
    subprocess.run([sys.executable, "-c", code, url, str(phones)], check=True, cwd=ROOT)


def measure(phones: int, workdir: Path, runs: int,
            ) -> tuple[float, float, float, float, float]:
    """Best wall and CPU seconds of a rotation and of a run with nothing due, and the highest
    peak RSS of the rotations."""
    built, db = workdir / f"built-{phones}.db", workdir / f"rotate-{phones}.db"
    build(f"sqlite:///{built}", phones)
    url = f"sqlite:///{db}"
    seconds = cpu = fixed = fixed_cpu = float("inf")
    rss = 0.0
    for _ in range(runs):
        copy_store(built, db)
        run_s, run_cpu, run_rss = rotate(url)
        # everything is rotated now: this run only starts and looks
        idle_s, idle_cpu = startup(url)
        seconds, cpu, rss = min(seconds, run_s), min(cpu, run_cpu), max(rss, run_rss)
        fixed, fixed_cpu = min(fixed, idle_s), min(fixed_cpu, idle_cpu)
    return seconds, fixed, rss, cpu, fixed_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="rotations of each store (the "
                        "fastest counts)")
    args = parser.parse_args()
    runs = max(args.runs, 1)
    with tempfile.TemporaryDirectory() as tmp:
        small_s, small_fixed, small_rss, _, _ = measure(max(args.phones // 10, 1000), Path(tmp),
                                                        runs)
        big_s, big_fixed, big_rss, big_cpu, big_fixed_cpu = measure(args.phones, Path(tmp), runs)
    rate = args.phones / max(big_s - big_fixed, 1e-9)
    # CPU time is the figure a busy machine disturbs least: when it is much above the wall
    # rate, other work was running and the wall rate understates mtctl.
    cpu_rate = args.phones / max(big_cpu - big_fixed_cpu, 1e-9)
    print(f"best of {runs} runs; peak RSS: the highest of them")
    print(f"machine: sum(range(1_000_000)) takes {reference_ms():.1f} ms here (the rates "
          "scale with it)")
    print(f"{'phones':>8}  {'wall s':>7}  {'start-up s':>10}  {'peak MiB':>8}")
    print(f"{args.phones // 10:>8}  {small_s:7.2f}  {small_fixed:10.2f}  {small_rss:8.1f}")
    print(f"{args.phones:>8}  {big_s:7.2f}  {big_fixed:10.2f}  {big_rss:8.1f}")
    print(f"rotation rate: {rate:,.0f} phones/s (target >= {TARGET_RATE:,}); "
          f"{cpu_rate:,.0f} phones per CPU second")
    growth = big_rss / small_rss
    print(f"memory: {growth:.2f}x for 10x the phones (target: flat, < 1.5x)")
    ok = rate >= TARGET_RATE and growth < 1.5
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
