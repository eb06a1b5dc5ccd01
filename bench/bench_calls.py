"""What call recording costs: the sustained call rate of the exported Kamailio with and without
recording, in the same run.

    .venv/bin/python bench/bench_calls.py [--calls 600] [--rate 300] [--db URL]

A store with one extension and one phone that declines every call (486) is built (SQLite in a
temporary directory, or --db, e.g. a PostgreSQL test schema); Kamailio runs the exported
config, once as exported and once with the recording hooks taken out, alternately, ROUNDS times
each; a SIPp caller places --calls calls at up to --rate per second, at most 50 at once. The
figure is calls completed per second of wall time; the best round of each variant counts. The
bench exits 1 when recording costs more than 10% of the rate, or when the recorded calls and
branches are not exactly the calls placed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, delete, func, select  # noqa: E402

from mtctl.formats.kamailio import kamailio_db  # noqa: E402
from mtctl.store.db import upgrade_store  # noqa: E402
from mtctl.store.tables import call_branch, call_record, location  # noqa: E402
from tests.conftest import Mtctl  # noqa: E402
from tests.e2e import harness  # noqa: E402

DOMAIN = "pbx.example.com"
ROUNDS = 2
TARGET = 0.10
HOOKS = ("route(REC_CALL);", "route(REC_END);", "route(REC_ANSWERED);",
         't_on_branch("REC_BRANCH");', 't_on_branch_failure("REC_BRANCH_END");')
NO_OP = "$var(norec) = 0;"  # a statement where a hook was, so no block is left empty


def build(url: str) -> tuple[Mtctl, str]:
    mtctl = Mtctl(url)
    password = "pw-" + secrets.token_hex(8)
    for args in (("config", "set", "sip.domain", DOMAIN), ("node", "add", "n1"),
                 ("ext", "add", "500", "--node", "n1"),
                 ("phone", "add", "500", "--position", "0", "--model",
                  "Generic SIP hardphone")):
        mtctl.ok(*args)
    mtctl.ok("phone", "set-password", "500", "0", "--password-stdin", input=password + "\n")
    return mtctl, password


def without_recording(cfg: str) -> str:
    """The config with every recording hook replaced by a statement that does nothing."""
    for hook in HOOKS:
        assert hook in cfg, f"the exported config has no {hook}"
        cfg = cfg.replace(hook, NO_OP)
    return cfg


def one_round(mtctl: Mtctl, password: str, work: Path, *, record: bool, calls: int,
              rate: int) -> float:
    """Calls per second for CALLS calls through a fresh Kamailio."""
    port = harness.free_udp_port()
    out = work / f"kam-{record}-{time.monotonic_ns()}"
    mtctl.ok("export", "kamailio", "--out", str(out), "--listen", f"udp:127.0.0.1:{port}")
    cfg = out / "kamailio.cfg"
    if not record:
        cfg.write_text(without_recording(cfg.read_text()))
    runner = harness.SippRunner(out)
    env = kamailio_db(mtctl.url, cwd=Path.cwd()).env
    try:
        with harness.kamailio(cfg, port, env, out) as kam:
            phone = runner.start("phone", "phone_busy.xml", "-m", str(calls), life=300)
            got = harness.register(runner, port, DOMAIN,
                                   [("500-0", password, runner.port_of(phone))])
            assert got == {"500-0": "registered"}, got
            started = time.monotonic()
            caller = runner.start("caller", "caller.xml", "-s", "500", "-m", str(calls),
                                  "-r", str(rate), "-l", "50", "-timeout", "240s",
                                  remote=f"127.0.0.1:{port}",
                                  keys={"domain": DOMAIN, "caller": "caller"},
                                  life=300)
            runner.wait(caller, timeout=300)
            elapsed = time.monotonic() - started
            # what the recorder still holds in its queue is written within a few ticks
            deadline = time.monotonic() + 10
            while record and _written(mtctl.url) < calls and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not kam.errors(), kam.errors()[:5]
    finally:
        runner.stop_all()
    return calls / elapsed


def _written(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(call_record)
                                .where(call_record.c.outcome.is_not(None))).scalar() or 0
    finally:
        engine.dispose()


def recorded(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            counts = (conn.execute(select(func.count()).select_from(call_record)
                                   .where(call_record.c.outcome == "busy")).scalar() or 0,
                      conn.execute(select(func.count()).select_from(call_branch)
                                   .where(call_branch.c.final_code == 486)).scalar() or 0)
            conn.execute(delete(call_branch))
            conn.execute(delete(call_record))
            # the next Kamailio would load this round's registration, whose phone is gone
            conn.execute(delete(location))
            return counts
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--db", help="an empty store, migrated here (default: a new SQLite "
                        "file); e.g. a PostgreSQL URL with ?options=-csearch_path=SCHEMA")
    args = parser.parse_args()
    missing = harness.missing_tools("kamailio", "sipp")
    if missing:
        print(harness.install_hint(missing), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.db or f"sqlite:///{work / 'bench.db'}"
        upgrade_store(url)
        mtctl, password = build(url)
        rates: dict[bool, list[float]] = {False: [], True: []}
        problems = []
        for _ in range(ROUNDS):
            for record in (False, True):
                rates[record].append(one_round(mtctl, password, work, record=record,
                                               calls=args.calls, rate=args.rate))
                calls, branches = recorded(url)
                expected = args.calls if record else 0
                if (calls, branches) != (expected, expected):
                    problems.append(f"recording {'on' if record else 'off'}: {calls} calls and "
                                    f"{branches} branches recorded, {expected} expected")
    off, on = max(rates[False]), max(rates[True])
    cost = 1 - on / off
    print(f"store: {'SQLite' if args.db is None else args.db.split(':')[0]}, {args.calls} calls "
          f"at up to {args.rate}/s, best of {ROUNDS}")
    print(f"without recording  {off:8.1f} calls/s   (rounds: "
          f"{', '.join(f'{r:.1f}' for r in rates[False])})")
    print(f"with recording     {on:8.1f} calls/s   (rounds: "
          f"{', '.join(f'{r:.1f}' for r in rates[True])})")
    print(f"recording costs    {cost * 100:8.1f} %       (target: at most {TARGET * 100:.0f} %)")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems or cost > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
