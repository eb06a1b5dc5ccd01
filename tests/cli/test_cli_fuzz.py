"""A seeded fuzz suite over every command's arguments (SPEC §6): whatever a user types, mtctl
ends with an exit code of the SPEC, never a traceback, changes nothing when it refuses, and
each run stays under 10 s and 512 MiB (measured on real processes).

Commands and their parameters come from the Typer app, so a new command is fuzzed as soon as
it is registered. Values: huge and negative numbers, Unicode digits, NUL and other control
characters, non-UTF-8 bytes (surrogate-escaped in-process, real bytes in subprocesses),
over-long text, unknown options, bad `--db` URLs and paths.

MTCTL_FUZZ_CASES (default 300) sets how many in-process cases run per backend,
MTCTL_FUZZ_PROCESSES (default 12) how many measured subprocess cases, MTCTL_FUZZ_SEED the
seed (default: fixed, so CI runs are reproducible; a failure names its seed and case).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from mtctl.cli import output
from tests.conftest import COMMAND
from tests.dump import dump_engine
from tests.measure import MeasuredPopen

CASES = int(os.environ.get("MTCTL_FUZZ_CASES", "300"))
PROCESSES = int(os.environ.get("MTCTL_FUZZ_PROCESSES", "12"))
SEED = int(os.environ.get("MTCTL_FUZZ_SEED", "20261130"))
SPEC_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6}
MAX_SECONDS = 10.0
MAX_RSS_KIB = 512 * 1024
NEVER_IN_PROCESS = {("serve",)}  # a valid --port would serve forever: subprocesses only

NAMES = ["40710", "40711", "40790", "ana", "bea", "madrid", "lisbon", "national", "pool",
         "default", "webfon", "mobile", "Cisco 8841", "Generic SIP hardphone",
         "VIVAit Call Web", "VIVAit Call Business Android", "sip.domain", "keys.grace_days",
         "keys.lifetime_days", "keys.rotate_within_days", "provisioning.token_ttl_hours",
         "provisioning.base_url", "revoke", "0", "1", "2", "7"]
NUMBERS = ["0", "1", "2", "7", "8", "-1", "-0", "00", "30", "600", "601", "8760", "36499",
           "36500", "36501", "2147483647", "2147483648", "-2147483649", str(2**63),
           "9" * 20, "9" * 400, "9" * 5000, "²", "٣", "１", "1e3", "0x10", "1.5", " 7 ", "",
           "7d", "99999999h", "3000000", "+3"]
CONTROLS = ["\n", "\r", "\t", "\x00", "\x1b", "\x1b[2J", "\x7f", "\x85", "\x9b", "\x07",
            "\u2028", "\ufeff"]
NOT_UTF8 = ["\udcff", "\udcc3\udca9", "a\udc80b"]  # how Python holds non-UTF-8 argv bytes
BAD_URLS = ["", "   ", "nonsense", "sqlite://", "sqlite:////nonexistent/dir/x.db",
            "postgresql+psycopg://nobody@127.0.0.1:1/none", "mysql://x/y", "sqlite:///.",
            "sqlite:///\x00", "sqlite:///\udcff.db", "http://example.com",
            "sqlite:///" + "x" * 5000]


def leaf_commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the app, by its words (`phone set`), with its Click command."""
    found = []

    def walk(command: Any, words: tuple[str, ...]) -> None:
        if runs_itself(command):  # `export`, `provision EXT POS`: a group that is a command too
            found.append((words, command))
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*words, name))
        else:
            found.append((words, command))

    walk(COMMAND, ())
    return found


def runs_itself(group: Any) -> bool:
    """A group that runs something when no subcommand is named."""
    return bool(getattr(group, "invoke_without_command", False)
                or getattr(group, "default_verb", None))


def text(rng: random.Random) -> str:
    """A string a user might type, or one meant to break things."""
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(NAMES)
    if roll < 0.5:
        return rng.choice(NUMBERS)
    if roll < 0.65:
        base = rng.choice(NAMES)
        cut = rng.randrange(len(base) + 1)
        return base[:cut] + rng.choice(CONTROLS) + base[cut:]
    if roll < 0.75:
        return rng.choice(NAMES) + rng.choice(NOT_UTF8)
    if roll < 0.85:
        return rng.choice("ax4é") * rng.choice([65, 129, 254, 10_000, 60_000])
    if roll < 0.92:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 12)))
    return rng.choice(["-", "--", "-x", "--help-me", "'", '"', "%s", "{}", "[", "*", "☃"])


def value_for(param: Any, rng: random.Random, workdir: Path) -> str:
    """A value for one parameter, shaped by its type most of the time."""
    kind = type(param.type).__name__
    if rng.random() < 0.15:
        return text(rng)
    if kind in ("FuncParamType", "IntParamType", "IntRange"):
        return rng.choice(NUMBERS)
    if kind == "TyperChoice":
        return rng.choice([*map(str, param.type.choices), "", "fax", "EXCLUSIVE"])
    if kind == "TyperPath" or param.name in ("file", "to", "png", "svg"):
        return path_value(rng, workdir)
    if param.name == "offline":
        return rng.choice(["40710:0", "40710:2", "40710:" + rng.choice(NUMBERS), "40710",
                           ":", "40710:", text(rng) + ":" + text(rng)])
    if param.name == "key" or param.name == "value":
        return rng.choice([*NAMES[16:22], "sip.proxy", "flexisip.proxy", text(rng),
                           "sip:" + text(rng), "https://p.example.com/" + text(rng),
                           rng.choice(NUMBERS)])
    return text(rng)


def path_value(rng: random.Random, workdir: Path) -> str:
    """A file name inside the test's directory, or a path that cannot be used."""
    choice = rng.randrange(8)
    if choice == 0:
        return ""
    if choice == 1:
        return str(workdir)  # a directory
    if choice == 2:
        return "/nonexistent/dir/file"
    if choice == 3:
        return str(workdir / ("x" * 300))
    if choice == 4:
        return str(workdir / ("bad" + rng.choice(CONTROLS + NOT_UTF8)))
    path = workdir / f"f{rng.randrange(1000)}.toml"
    if rng.random() < 0.7:
        path.write_bytes(rng.choice([
            b"", b"\xff\xfe\x00", b"nodes = [\n", b'nodes = ["lisbon"]\n',
            b"[settings]\nkeys.lifetime_days = 2147483647\n",
            b'[extensions.40710]\nnode = "madrid"\nname = "a\\nb"\n',
            b"a = " + b"[" * 5000, ("x = '" + "é" * 1000 + "'\n").encode(),
            bytes(rng.randrange(256) for _ in range(rng.randrange(200)))]))
    return str(path)


def make_case(rng: random.Random, commands: list[tuple[tuple[str, ...], Any]],
              workdir: Path) -> tuple[list[str], bytes | None, str | None]:
    """argv after the global options, stdin, and a replacement store URL (or None)."""
    words, command = rng.choice(commands)
    argv = list(words)
    for param in command.params:
        required = getattr(param, "required", False)
        if param.param_type_name == "argument":
            if required and rng.random() < 0.03:
                continue  # a missing argument
            count = rng.randrange(1, 4) if param.nargs == -1 else 1
            if required or rng.random() < 0.7:
                argv += [value_for(param, rng, workdir) for _ in range(count)]
        elif getattr(param, "is_flag", False):
            if rng.random() < 0.3:
                argv.append(rng.choice(param.opts + param.secondary_opts))
        elif required or rng.random() < 0.35:
            if required and rng.random() < 0.03:
                continue
            for _ in range(rng.randrange(1, 3) if param.multiple else 1):
                value = value_for(param, rng, workdir)
                if rng.random() < 0.5:
                    argv += [param.opts[0], value]
                elif param.opts[0].startswith("--"):
                    argv.append(f"{param.opts[0]}={value}")
                else:
                    argv += [param.opts[0], value]
    if rng.random() < 0.05:
        argv.insert(rng.randrange(len(words), len(argv) + 1), rng.choice(["--nope", "-q"]))
    stdin = None
    if "set-password" in words or rng.random() < 0.1:
        stdin = rng.choice([b"", b"long enough password\n", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\n",
                            b"short\n", b"pass\x00word long\n", b"x" * 100_000])
    url = rng.choice(BAD_URLS) if rng.random() < 0.05 else None
    return argv, stdin, url


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    crash: str | None = None


def run_in_process(url: str, actor: str, argv: list[str], stdin: bytes | None) -> Outcome:
    """One mtctl command through Click, as the test suite's runner does."""
    output.reset()
    runner = CliRunner()
    crash = None
    try:
        with runner.isolation(input=stdin) as (out, err, _):
            try:
                COMMAND.main(["--db", url, "--actor", actor, *argv], prog_name="mtctl")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except BaseException as exc:  # anything else is a traceback for a user
                import traceback

                crash = "".join(traceback.format_exception(exc))
                code = -1
            sys.stdout.flush()
            sys.stderr.flush()
            return Outcome(code, out.getvalue().decode(errors="replace"),
                           err.getvalue().decode(errors="replace"), crash)
    finally:
        output.reset()


class Dumper:
    """Every row of every table, through one engine (a fresh engine per dump costs too much)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def __call__(self) -> dict[str, list[tuple[Any, ...]]]:
        return dump_engine(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def problems_of(result: Outcome, changed: bool) -> list[str]:
    """What is wrong with one run: the SPEC's promises, checked."""
    found = []
    if result.crash:
        found.append("crashed: " + result.crash.strip().splitlines()[-1][:200])
    elif result.exit_code not in SPEC_EXIT_CODES:
        found.append(f"exit code {result.exit_code} is not one of SPEC §6")
    if "Traceback" in result.stdout + result.stderr:
        found.append("printed a traceback")
    if result.exit_code not in (0, 6) and changed:
        found.append(f"exit {result.exit_code} but the store changed")
    if result.exit_code in (2, 3, 4, 5) and not result.stderr.strip():
        found.append(f"exit {result.exit_code} with nothing on stderr")
    if "\x1b" in result.stdout + result.stderr:
        found.append("printed a raw escape character")
    return found


@pytest.fixture
def fuzz_store(seeded):
    """The seed's example with a bit of everything, for commands to find."""
    seeded.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p")
    seeded.ok("category", "add", "national")
    seeded.ok("template", "add", "mobile", "--key-lifetime", "30", "--secure")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--template", "mobile")
    seeded.ok("ext", "add", "40790", "--node", "madrid")
    seeded.ok("phone", "add", "40790", "--position", "0", "--model", "VIVAit Call Web")
    seeded.ok("group", "add", "pool")
    seeded.ok("group", "add-ext", "pool", "40790")
    return seeded


def test_every_command_is_fuzzed(fuzz_store):
    """The enumeration finds the commands of SPEC §7 (and any added since)."""
    words = {" ".join(w) for w, _ in leaf_commands()}
    assert {"phone set", "ext add", "user add", "config set", "keys rotate", "ring-sim",
            "provision", "audit", "apply", "export", "serve", "check"} <= words


def test_fuzzed_arguments_never_crash_and_refusals_change_nothing(fuzz_store, tmp_path,
                                                                  monkeypatch, backend):
    monkeypatch.chdir(tmp_path)
    commands = [(w, c) for w, c in leaf_commands() if w not in NEVER_IN_PROCESS]
    rng = random.Random(f"{SEED}-{backend}")
    dump = Dumper(fuzz_store.url)
    failures: list[str] = []
    try:
        before = dump()
        for index in range(CASES):
            argv, stdin, url = make_case(rng, commands, tmp_path)
            actor = text(rng) if rng.random() < 0.05 else "fuzz"
            start = time.monotonic()
            result = run_in_process(url if url is not None else fuzz_store.url, actor, argv,
                                    stdin)
            elapsed = time.monotonic() - start
            after = dump()
            problems = problems_of(result, after != before)
            if elapsed > MAX_SECONDS:
                problems.append(f"took {elapsed:.1f} s")
            for problem in problems:
                failures.append(f"seed {SEED} case {index}: mtctl {shown(argv)} "
                                f"(db {shown([url]) if url is not None else 'test'}, "
                                f"actor {actor!r}): {problem}\n  stderr: "
                                f"{result.stderr.strip()[:300]!r}")
            before = after
    finally:
        dump.close()
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures)


def shown(argv: list[str | None]) -> str:
    return " ".join(repr(a if a is None or len(a) < 80 else a[:80] + "…") for a in argv)


def encode_arg(arg: str) -> bytes:
    """argv bytes: surrogates become the raw bytes they stand for; a NUL cannot be passed."""
    return os.fsencode(arg).replace(b"\x00", b"")


def test_real_processes_stay_bounded_on_fuzzed_and_non_utf8_arguments(fuzz_store, tmp_path,
                                                                      backend):
    rng = random.Random(f"{SEED}-{backend}-processes")
    commands = leaf_commands()
    env = {k: v for k, v in os.environ.items() if k != "MTCTL_DATABASE_URL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    dump = Dumper(fuzz_store.url)
    failures: list[str] = []
    worst = (0.0, 0)
    try:
        before = dump()
        for index in range(PROCESSES):
            words, _ = rng.choice(commands)
            argv, stdin, url = make_case(rng, [(words, _)], tmp_path)
            if words == ("serve",):  # never a port that could be served
                argv = ["serve", "--port", rng.choice(["-1", "65536", "9" * 20, "x", "²"])]
            values = [i for i, arg in enumerate(argv) if i >= len(words)
                      and not arg.startswith("-")]
            if index % 2 == 0 and values:  # real non-UTF-8 bytes in one of the values
                spot = rng.choice(values)
                argv[spot] = argv[spot] + rng.choice(NOT_UTF8)
            argv = ["--db", url if url is not None else fuzz_store.url, "--actor", "fuzz",
                    *argv]
            start = time.monotonic()
            proc = MeasuredPopen([sys.executable, "-m", "mtctl", *map(encode_arg, argv)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, cwd=tmp_path)
            try:
                out, err = proc.communicate(stdin or b"", timeout=MAX_SECONDS * 3)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            elapsed = time.monotonic() - start
            result = Outcome(proc.returncode, out.decode(errors="replace"),
                             err.decode(errors="replace"))
            after = dump()
            problems = problems_of(result, after != before)
            if elapsed > MAX_SECONDS:
                problems.append(f"took {elapsed:.1f} s")
            if proc.max_rss > MAX_RSS_KIB:
                problems.append(f"peak RSS {proc.max_rss // 1024} MiB")
            if proc.max_rss == 0:
                problems.append("no rusage measured")
            worst = (max(worst[0], elapsed), max(worst[1], proc.max_rss))
            for problem in problems:
                failures.append(f"seed {SEED} process {index}: mtctl {shown(argv[4:])}: "
                                f"{problem}\n  stderr: {result.stderr.strip()[-300:]!r}")
            before = after
    finally:
        dump.close()
    print(f"worst of {PROCESSES} processes: {worst[0]:.2f} s, {worst[1] // 1024} MiB")
    assert not failures, f"{len(failures)} of {PROCESSES} processes failed:\n" + \
        "\n".join(failures)
