"""Benchmark mtctl on a large SQLite store, and fail when a performance target is missed.

Builds a store of 100,000 extensions x 4 phones (and 25,000 multiterminal users) through the
real migrations, then times whole `mtctl` processes against the start-up of a bare Python:

    .venv/bin/python bench/bench_store.py                 # make bench
    .venv/bin/python bench/bench_store.py --extensions 10000 --keep /tmp/mtctl-bench
    .venv/bin/python bench/bench_store.py --kamcli /path/to/venv/bin/kamcli   # and kamcli

See bench/README.md for what is measured and why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection

from mtctl.store.db import open_store, upgrade_store
from mtctl.store.tables import (
    app_user,
    category,
    extension,
    node,
    phone,
    phone_model,
    setting,
    template,
)

CHUNK = 10_000
PHONES_PER_EXTENSION = 4
USER_EVERY = 4            # every 4th extension is a user's login: 25,000 users in 100,000
SILENT_EVERY = 250        # 400 in 100,000 extensions have every phone at order 0 (warnings)
NODES = 8
FIRST_NUMBER = 400_000
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)

CISCO = "Cisco 8841"
WEBCALL = "VIVAit Call Web"
ANDROID = "VIVAit Call Business Android"
LINPHONE = "Linphone (no proxy)"

# Targets: start-up as a multiple of a bare `python -c 'import sqlite3'` on the same machine,
# so the gate means the same on a fast laptop and on a slow CI runner.
HELP_RATIO = 8.0
QUERY_RATIO = 10.0
CHECK_SECONDS = 4.0
CHECK_MIB = 100.0
ALL_RATE = 20_000        # ring-sim --all: numbers planned per second, at least
ALL_MIB = 100.0          # ... in bounded memory (it streams)
DOMAIN = "pbx.example.com"


# --- building the store ---------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """What the generated store holds, so the measured commands can be pointed and checked."""

    extensions: int
    users: int
    silent: int
    sample_number: str       # an extension for `phone list`
    sample_login: str        # a user's login number for `ring-sim`
    sample_username: str


def number_of(i: int) -> str:
    return str(FIRST_NUMBER + i)


def is_user_login(i: int) -> bool:
    return i % USER_EVERY == 0


def is_silent(i: int) -> bool:
    # Never a user's login: a multiterminal user whose Web Call phone has order 0 breaks MT009.
    return i % SILENT_EVERY == 1 and not is_user_login(i)


def chunks(rows: Iterable[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def insert_rows(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Core insert(table) executemany, CHUNK rows at a time."""
    count = 0
    for chunk in chunks(rows):
        conn.execute(insert(table), chunk)
        count += len(chunk)
    return count


def extension_rows(n: int, node_ids: list[int]) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "id": i + 1, "number": number_of(i), "node_id": node_ids[i % len(node_ids)],
            "display_name": f"Desk {number_of(i)}" if i % 10 else None,
            "ring_timeout": (15, 20, 20, 30)[i % 4],
        }


def phone_rows(n: int, node_ids: list[int], ids: dict[str, dict[str, int]],
               category_ids: list[int], now: datetime) -> Iterator[dict[str, Any]]:
    """Four phones per extension; Cisco always at 0, the other models shuffled over 1–3."""
    models, templates = ids["model"], ids["template"]
    others = [(WEBCALL, ANDROID, LINPHONE), (ANDROID, WEBCALL, LINPHONE),
              (LINPHONE, ANDROID, WEBCALL)]
    for i in range(n):
        number = number_of(i)
        # A user's login keeps its Web Call phone at position 1 (webcall_position 1, MT009).
        lineup = (CISCO, *(others[0] if is_user_login(i) else others[i % len(others)]))
        # Position 1 never has order 0 outside silent extensions: a user's Web Call phone
        # must be able to ring (MT009). At most one phone in four is disabled, so only the
        # silent extensions warn.
        orders = (0, 0, 0, 0) if is_silent(i) else ((1, 1, 2, 3), (1, 2, 2, 0), (2, 1, 1, 3))[
            i % 3]
        for position, model in enumerate(lineup):
            secure = model == ANDROID
            digest = hashlib.sha256(f"bench:{number}:{position}".encode()).hexdigest()
            yield {
                "extension_id": i + 1, "node_id": node_ids[i % len(node_ids)],
                "position": position, "ring_order": orders[position],
                "enabled": (i + position) % 19 != 0,
                "model_id": models[model],
                "template_id": templates["webfon" if model == WEBCALL else "default"],
                "category_id": category_ids[(i + position) % len(category_ids)]
                if (i + position) % 3 else None,
                "location": ("Madrid", "Sevilla", "Home office", None)[(i + position) % 4],
                "secure": secure,
                "publishable": secure and i % 2 == 0,
                "sip_auth_user": f"{number}-{position}",
                "ha1": digest[:32] if secure else None,
                "ha1_sha256": digest if secure else None,
                "key_expires_at": FAR_FUTURE if secure else None,
                "key_updated_at": now if secure else None,
            }


def user_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        if is_user_login(i):
            yield {
                "username": f"user{number_of(i)}", "display_name": f"User {number_of(i)}",
                "login_extension_id": i + 1, "webcall_mode": "multiterminal",
                "webcall_license": "dedicated", "webcall_position": 1,
            }


def build_store(url: str, n: int) -> tuple[Layout, float]:
    """Create the store with the real migrations, fill it with Core executemany; and the time."""
    start = time.perf_counter()
    upgrade_store(url)
    store = open_store(url)
    now = datetime.now(UTC)
    try:
        with store.write() as conn:
            insert_rows(conn, node, ({"name": f"node-{k:02d}"} for k in range(1, NODES + 1)))
            insert_rows(conn, category, ({"name": name} for name in ("office", "home", "mobile")))
            # The SIP domain Kamailio's subscriber view shows (kamcli looks subscribers up there).
            insert_rows(conn, setting, [{"key": "sip.domain", "value": DOMAIN}])
            node_ids = list(conn.execute(select(node.c.id).order_by(node.c.id)).scalars())
            category_ids = list(conn.execute(select(category.c.id).order_by(category.c.id))
                                .scalars())
            ids = {
                "model": dict(conn.execute(select(phone_model.c.name, phone_model.c.id)).all()),
                "template": dict(conn.execute(select(template.c.name, template.c.id)).all()),
            }
            insert_rows(conn, extension, extension_rows(n, node_ids))
            insert_rows(conn, phone, phone_rows(n, node_ids, ids, category_ids, now))
            users = insert_rows(conn, app_user, user_rows(n))
    finally:
        store.close()
    seconds = time.perf_counter() - start
    middle = (n // 2) - (n // 2) % USER_EVERY   # a user's login near the middle of the store
    return Layout(
        extensions=n, users=users, silent=sum(1 for i in range(n) if is_silent(i)),
        sample_number=number_of(min(n - 1, middle + 2)), sample_login=number_of(middle),
        sample_username=f"user{number_of(middle)}",
    ), seconds


# --- measuring ------------------------------------------------------------------------------

@dataclass
class Run:
    seconds: float
    cpu_seconds: float       # user + system: a check on wall times taken on a busy machine
    max_rss_mib: float
    exit_code: int
    stdout: str
    stderr: str


# A child's ru_maxrss starts at its parent's peak RSS (the pre-exec memory of a vfork or fork
# counts), and this process holds SQLAlchemy and the build's data. So each command is started
# by a bare `python -I -S` (about 8 MiB, less than any measured command) that times it and
# reports its wait4 rusage: the figures are the command's own.
LAUNCHER = """
import os, sys, time
out, err, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
files = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
         (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
         (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
start = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=files)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
print(repr(seconds), repr(usage.ru_utime + usage.ru_stime), usage.ru_maxrss,
      os.waitstatus_to_exitcode(status))
"""


def run_once(argv: list[str], workdir: Path) -> Run:
    """One run of a command: its wall time, its own peak RSS and exit code, its output."""
    out_path, err_path = workdir / "last.stdout", workdir / "last.stderr"
    launched = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-I", "-S", "-c", LAUNCHER, str(out_path), str(err_path), *argv],
        capture_output=True, text=True, check=True)
    seconds, cpu, maxrss, exit_code = launched.stdout.split()
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss_mib = int(maxrss) / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Run(float(seconds), float(cpu), rss_mib, int(exit_code),
               out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))


def best_of(argv: list[str], runs: int, workdir: Path) -> tuple[Run, list[Run]]:
    """Best wall time of `runs` runs (and all of them); a failing run ends the series."""
    done: list[Run] = []
    for _ in range(runs):
        done.append(run_once(argv, workdir))
        if done[-1].exit_code != 0:
            return done[-1], done
    return min(done, key=lambda r: r.seconds), done


@dataclass
class Row:
    label: str
    run: Run
    ratio: float
    target: str
    ok: bool | None          # None: no target (the baseline)
    why: str = ""


def verdict(ok: bool | None, why: str) -> str:
    if ok is None:
        return "-"
    return "PASS" if ok else f"FAIL{' (' + why + ')' if why else ''}"


def output_problem(label: str, run: Run, layout: Layout) -> str:
    """A short reason when a command's output is not what the generated store implies."""
    if run.exit_code != 0:
        first = (run.stderr.strip().splitlines() or [""])[0][:80]
        return f"exit {run.exit_code}: {first}"
    if label.startswith("ring-sim --all"):
        plans = run.stdout.splitlines()
        silent = sum(json.loads(line)["outcome"] == "silent" for line in plans)
        if len(plans) != layout.extensions or silent != layout.silent:
            return (f"{len(plans)} plans, {silent} silent; expected {layout.extensions} and "
                    f"{layout.silent}")
    elif label.startswith("phone list"):
        phones = json.loads(run.stdout)
        if len(phones) != PHONES_PER_EXTENSION:
            return f"{len(phones)} phones, expected {PHONES_PER_EXTENSION}"
    elif label.startswith("ring-sim"):
        plan = json.loads(run.stdout)
        if plan.get("user") != layout.sample_username or plan.get("outcome") != "rings":
            return f"user {plan.get('user')!r}, outcome {plan.get('outcome')!r}"
    elif label.startswith("user phones"):
        if len(json.loads(run.stdout)) != PHONES_PER_EXTENSION:
            return f"user phones: {len(json.loads(run.stdout))}, expected {PHONES_PER_EXTENSION}"
    elif label.startswith("kamcli subscriber"):
        if json.loads(run.stdout)[0]["domain"] != DOMAIN:
            return "kamcli did not find the subscriber"
    elif label.startswith("check"):
        found = json.loads(run.stdout)
        errors, warnings = len(found["errors"]), len(found["warnings"])
        if errors or warnings != layout.silent:
            return f"{errors} errors, {warnings} warnings; expected 0 and {layout.silent}"
    return ""


def measure(python: str, url: str, layout: Layout, runs: int, check_runs: int,
            workdir: Path, kamcli: str | None = None) -> list[Row]:
    mtctl = [python, "-m", "mtctl"]
    # Every ratio divides by the baseline, so it gets twice the runs (they are cheap).
    print(f"  timing the baseline ({2 * runs} runs)", file=sys.stderr, flush=True)
    baseline, _ = best_of([python, "-c", "import sqlite3"], 2 * runs, workdir)
    base = baseline.seconds
    rows = [Row("python -c 'import sqlite3'", baseline, 1.0, "baseline", None)]
    plans = [
        ("--help", [*mtctl, "--help"], runs, HELP_RATIO),
        (f"phone list {layout.sample_number} --json",
         [*mtctl, "--db", url, "phone", "list", layout.sample_number, "--json"], runs,
         QUERY_RATIO),
        (f"ring-sim {layout.sample_login} --json",
         [*mtctl, "--db", url, "ring-sim", layout.sample_login, "--json"], runs, QUERY_RATIO),
        (f"user phones {layout.sample_username} --json",
         [*mtctl, "--db", url, "user", "phones", layout.sample_username, "--json"], runs,
         QUERY_RATIO),
    ]
    for label, argv, count, limit in plans:
        print(f"  timing mtctl {label} ({count} runs)", file=sys.stderr, flush=True)
        best, _ = best_of(argv, count, workdir)
        ratio = best.seconds / base
        why = output_problem(label, best, layout)
        rows.append(Row(f"mtctl {label}", best, ratio, f"<= {limit:g}x",
                        not why and ratio <= limit, why or f"{ratio:.1f}x > {limit:g}x"))
    rows.append(ring_sim_all(mtctl, url, layout, check_runs, workdir, base))
    if kamcli is not None:
        rows += measure_kamcli(kamcli, url, layout, runs, workdir, base)
    print(f"  timing mtctl check --json ({check_runs} runs)", file=sys.stderr, flush=True)
    best, every = best_of([*mtctl, "--db", url, "check", "--json"], check_runs, workdir)
    peak = max(r.max_rss_mib for r in every)
    best.max_rss_mib = peak
    why = output_problem("check", best, layout)
    if not why:
        why = ", ".join(([f"{best.seconds:.1f} s"] if best.seconds >= CHECK_SECONDS else [])
                        + ([f"{peak:.0f} MiB"] if peak >= CHECK_MIB else []))
    rows.append(Row("mtctl check --json", best, best.seconds / base,
                    f"< {CHECK_SECONDS:g} s, < {CHECK_MIB:g} MiB", not why, why))
    return rows


def ring_sim_all(mtctl: list[str], url: str, layout: Layout, count: int, workdir: Path,
                 base: float) -> Row:
    """`ring-sim --all`: numbers planned per second (the whole process), in bounded memory."""
    print(f"  timing mtctl ring-sim --all ({count} runs)", file=sys.stderr, flush=True)
    best, every = best_of([*mtctl, "--db", url, "ring-sim", "--all"], count, workdir)
    best.max_rss_mib = max(r.max_rss_mib for r in every)
    rate = layout.extensions / best.seconds
    why = output_problem("ring-sim --all", best, layout)
    if not why:
        why = ", ".join(([f"{rate:,.0f}/s"] if rate < ALL_RATE else [])
                        + ([f"{best.max_rss_mib:.0f} MiB"] if best.max_rss_mib >= ALL_MIB
                           else []))
    return Row(f"mtctl ring-sim --all ({rate:,.0f} numbers/s)", best, best.seconds / base,
               f">= {ALL_RATE:,}/s, < {ALL_MIB:g} MiB", not why, why)


KAMCLI_INI = """[main]
domain={domain}

[db]
type=sqlite
driver=pysqlite
rwurl=sqlite+pysqlite:///{path}
rourl=sqlite+pysqlite:///{path}
adminurl=sqlite+pysqlite:///{path}
"""


def measure_kamcli(kamcli: str, url: str, layout: Layout, runs: int, workdir: Path,
                   base: float) -> list[Row]:
    """kamcli, the Kamailio admin CLI (Python, Click, SQLAlchemy), on the same store and the
    same baseline: its --help, and a subscriber looked up in the store's subscriber view (what
    Kamailio reads). No target: the figures stand next to mtctl's."""
    ini = workdir / "kamcli.ini"
    ini.write_text(KAMCLI_INI.format(domain=DOMAIN, path=url.removeprefix("sqlite:///")),
                   encoding="utf-8")
    user = f"{layout.sample_login}-2@{DOMAIN}"  # a login's secure phone (VIVAit Android)
    rows = []
    for label, argv in (("kamcli --help", [kamcli, "--help"]),
                        (f"kamcli subscriber show {user} -F json",
                         [kamcli, "-c", str(ini), "subscriber", "show", user, "-F", "json"])):
        print(f"  timing {label} ({runs} runs)", file=sys.stderr, flush=True)
        best, _ = best_of(argv, runs, workdir)
        why = output_problem(label, best, layout)
        # Not a gate on mtctl: a kamcli that fails is reported, not counted as a missed target.
        rows.append(Row(label + (f" [{why}]" if why else ""), best, best.seconds / base, "-",
                        None))
    return rows


def print_table(rows: list[Row]) -> None:
    head = ("command", "best wall", "x baseline", "its CPU", "peak RSS", "target", "result")
    cells = [head] + [
        (r.label, f"{r.run.seconds * 1000:,.0f} ms", f"{r.ratio:.1f}x",
         f"{r.run.cpu_seconds * 1000:,.0f} ms", f"{r.run.max_rss_mib:.0f} MiB", r.target,
         verdict(r.ok, r.why if not r.ok else ""))
        for r in rows
    ]
    widths = [max(len(c[k]) for c in cells) for k in range(len(head))]
    right = {1, 2, 3, 4}
    for n, cell in enumerate(cells):
        print("  ".join(c.rjust(w) if k in right else c.ljust(w)
                        for k, (c, w) in enumerate(zip(cell, widths, strict=True))).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


# --- main -----------------------------------------------------------------------------------

def positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time mtctl against a large SQLite store; exit 1 when a target is missed.")
    parser.add_argument("--extensions", type=positive, default=100_000, metavar="N",
                        help="extensions to generate, 4 phones each (default: 100000)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the store as DIR/bench.db and keep it (default: a "
                             "temporary directory, removed at the end)")
    parser.add_argument("--runs", type=positive, default=5, metavar="N",
                        help="runs per start-up command; the best counts (default: 5)")
    parser.add_argument("--check-runs", type=positive, default=2, metavar="N",
                        help="runs of `mtctl check` and `ring-sim --all` (default: 2)")
    parser.add_argument("--kamcli", metavar="PATH",
                        help="also time this kamcli executable (installed apart, e.g. in its "
                             "own virtual environment) on the same store")
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, workdir: Path) -> int:
    db_path = workdir / "bench.db"
    if db_path.exists():
        print(f"bench: {db_path} already exists; remove it or choose another --keep DIR",
              file=sys.stderr)
        return 2
    url = f"sqlite:///{db_path}"
    n = args.extensions
    print(f"bench: building {n:,} extensions x {PHONES_PER_EXTENSION} phones in {db_path}",
          file=sys.stderr, flush=True)
    layout, build_seconds = build_store(url, n)
    size_mib = db_path.stat().st_size / (1024 * 1024)

    rows = measure(sys.executable, url, layout, args.runs, args.check_runs, workdir,
                   args.kamcli)

    print()
    print(f"store: {n:,} extensions, {n * PHONES_PER_EXTENSION:,} phones, {layout.users:,} "
          f"multiterminal users, {layout.silent:,} silent extensions; {size_mib:.0f} MiB")
    print(f"build: {build_seconds:.1f} s (migrations + Core executemany in chunks of "
          f"{CHUNK:,})")
    print(f"python: {sys.executable} ({sys.version.split()[0]}); best of {args.runs} runs, "
          f"check best of {args.check_runs}")
    print()
    print_table(rows)
    missed = [r for r in rows if r.ok is False]
    print()
    print(f"{len(missed)} target(s) missed" if missed else "all targets met")
    return 1 if missed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return bench(args, args.keep.resolve())
    with tempfile.TemporaryDirectory(prefix="mtctl-bench-") as tmp:
        return bench(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
