"""A seeded fuzz suite for the files `mtctl apply` reads (SPEC §6): whatever a file holds,
apply ends with 0 or 1, never a traceback, every problem names its line, a refused or dry-run
file leaves the store byte-identical, and each run stays under 10 s and 512 MiB.

Mutations of `mtctl export` output and of examples/*.toml run in-process (the bulk: each
case's CPU time is held to 10 s and its wall time to 30 s, so that a loaded machine does not
fail them; the process's peak RSS may not grow by 512 MiB over all of them); files built to
exhaust memory or time (dotted keys and headers of 200,000 parts, deep brackets, huge keys,
files over the size limit, an endless device) run as real processes whose wall time and peak
RSS (wait4) are measured and held to 10 s and 512 MiB.

MTCTL_APPLY_FUZZ_CASES (else MTCTL_FUZZ_CASES, default 200) sets how many mutation cases run
per backend; MTCTL_FUZZ_SEED the seed (fixed by default: a failure names its seed and case).
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from tests.cli.test_apply_properties import BASE
from tests.conftest import Mtctl
from tests.dump import dump_engine, dump_store
from tests.measure import MeasuredPopen

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
CASES = int(os.environ.get("MTCTL_APPLY_FUZZ_CASES", os.environ.get("MTCTL_FUZZ_CASES", "200")))
SEED = int(os.environ.get("MTCTL_FUZZ_SEED", "20261130"))
MAX_SECONDS = 10.0
MAX_RSS_KIB = 512 * 1024

TOKENS = ["[", "]", "[[", "]]", "{", "}", "=", ",", ".", '"', "'", '"""', "'''", "#", "\n",
          "\r\n", "\r", "\t", " ", "\\", "\\u00e9", "\\uD800", "\x00", "\x01", "\x7f", "\x85",
          "\u2028", "\ufeff", "ñ", "😀", "1", "-1", "0", "007", "1.5", "1e999", "inf", "nan",
          "2147483648", "9" * 30, "0x1F", "true", "false", "2024-01-01", "07:32:00",
          "1979-05-27T07:32:00Z", "extensions", "phones", "position", "order", "model", "node",
          "users", "settings", "sip", "domain", "40710", '"40710"', "ana", "madrid", "ha1",
          "webcall_mode", "[extensions.40710]", "[[extensions.40710.phones]]", "[users.ana]",
          "[settings]", "x = 1", "a.b.c = 1", '"a.b" = 1', "{ position = 0 }", "[]", "{}"]
BYTES = [b"\xff", b"\xfe", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xed\xa0\x80", b"\xef\xbb\xbf",
         b"\x00", b"\xc0\xaf"]
VALUES = ['""', '"x"', "1", "-1", "0", "8", "601", "2147483648", "1.5", "true", "[]",
          "[1, 2]", '["a", 1]', "{}", '{ a = 1 }', "2024-01-01", '"40710"', '"\\u0000"',
          '"' + "x" * 300 + '"', "[" * 70 + "]" * 70, '"Cisco 8841"', '"VIVAit Call Web"']


def mutate(rng: random.Random, text: str) -> bytes:
    """One to three random edits: text tokens, lines, values, structure; raw bytes last."""
    raw: list[tuple[int, bytes]] = []
    for _ in range(rng.randint(1, 3)):
        lines = text.splitlines(keepends=True) or [""]
        index = rng.randrange(len(lines))
        spot = rng.randint(0, len(text))
        op = rng.randrange(12)
        if op == 0:
            text = text[:spot] + rng.choice(TOKENS) + text[spot:]
        elif op == 1:
            text = text[:spot] + text[spot + rng.randint(1, 40):]
        elif op == 2:
            lines.insert(index, lines[index])
            text = "".join(lines)
        elif op == 3:
            del lines[index]
            text = "".join(lines)
        elif op == 4:
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
            text = "".join(lines)
        elif op == 5 and "=" in lines[index]:
            key = lines[index].split("=", 1)[0]
            lines[index] = f"{key}= {rng.choice(VALUES)}\n"
            text = "".join(lines)
        elif op == 6 and "=" in lines[index]:
            value = lines[index].split("=", 1)[1]
            lines[index] = f"{rng.choice(TOKENS)} ={value}"
            text = "".join(lines)
        elif op == 7:
            text = text[:spot]
        elif op == 8:  # dotted keys and headers, within and over the limits
            parts = ".".join(["a"] * rng.choice([2, 10, 63, 64, 65, 200, 5000]))
            line = rng.choice([f"{parts} = 1\n", f"[{parts}]\n", f"[[{parts}]]\n",
                               f"x = {{ {parts} = 1 }}\n", f'"{parts}" = 1\n'])
            lines.insert(index, line)
            text = "".join(lines)
        elif op == 9:  # brackets, within and over the limits
            depth = rng.choice([1, 30, 64, 65, 300, 20000])
            opener, closer = rng.choice([("[", "]"), ("{ a = ", " }"), ("[{ a = ", " }]")])
            lines.insert(index, f"deep = {opener * depth}1{closer * depth}\n")
            text = "".join(lines)
        elif op == 10:
            lines[index:index] = [lines[index]] * rng.choice([2, 50, 2000])
            text = "".join(lines)
        else:
            raw.append((spot, rng.choice(BYTES)))
    data = text.encode("utf-8", "surrogatepass")
    for spot, piece in raw:
        spot = min(spot, len(data))
        data = data[:spot] + piece + data[spot:]
    return data


def run_in_process(mtctl: Mtctl, args: list[str]) -> tuple[Any, float, float]:
    """The result, the CPU seconds it took (what the code costs, whatever else the machine
    runs) and the wall seconds (a wait, e.g. for a lock)."""
    cpu, wall = time.process_time(), time.monotonic()
    result = mtctl(*args)
    return result, time.process_time() - cpu, time.monotonic() - wall


LOCATED = re.compile(r"^mtctl: error: (?P<file>.+?)(?::(?P<line>\d+): | \(store\): ).* — .+$")


def problems_of(result: Any, *, as_json: bool, changed: bool, dry_run: bool) -> list[str]:
    """What one run got wrong against SPEC §6 and this suite's promises."""
    found = []
    if "Traceback" in result.output:
        found.append("printed a traceback")
    if result.exit_code not in (0, 1):
        found.append(f"exit {result.exit_code}: {result.stderr.strip()[:300]}")
    if changed and (result.exit_code != 0 or dry_run):
        found.append(f"exit {result.exit_code}{' (dry run)' * dry_run} but the store changed")
    if result.exit_code != 1:
        return found
    if as_json:
        try:
            errors = json.loads(result.stdout)["errors"]
        except (ValueError, KeyError) as exc:
            return [*found, f"--json printed no report ({exc}): {result.stdout[:200]!r}"]
        if not errors:
            found.append("exit 1 with no errors in the report")
        found += [f"no line for {e['location']}: {e['message']}" for e in errors
                  if e["location"] != "(store)" and not isinstance(e["line"], int)]
        return found
    lines = result.stderr.strip().split("\n")  # not splitlines(): U+2028 is not a line end here
    errors = [line for line in lines if line.startswith("mtctl: error: ")]
    if not errors or not lines[-1].endswith("nothing was written"):
        found.append(f"no error list: {result.stderr[:300]!r}")
    found += [f"not located: {line[:300]}" for line in errors if not LOCATED.match(line)]
    return found


def seeds(mtctl: Mtctl) -> list[str]:
    """The examples, the properties test's file, and `mtctl export` of a store made from them;
    each also written with inline tables and dotted keys instead of table headers."""
    texts = [e.read_text(encoding="utf-8") for e in EXAMPLES] + [BASE]
    for example in EXAMPLES:
        mtctl.ok("apply", str(example))
    texts.append(mtctl.ok("export").stdout)
    return texts + [inline_form(tomllib.loads(text)) for text in texts]


def inline_form(doc: dict[str, Any]) -> str:
    """The same document as `section."name" = { ... }` lines."""
    lines = []
    for section, value in doc.items():
        if isinstance(value, dict):
            lines += [f"{section}.{json.dumps(name)} = {inline(entry)}"
                      for name, entry in value.items()]
        else:
            lines.append(f"{section} = {inline(value)}")
    return "\n".join(lines) + "\n"


def inline(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def test_mutated_files_are_applied_or_refused_with_their_line(mtctl: Mtctl, tmp_path: Path,
                                                               backend: str):
    texts = seeds(mtctl)
    rng = random.Random(f"{SEED}-{backend}")
    path = tmp_path / "fuzz.toml"
    failures: list[str] = []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine = create_engine(mtctl.url)  # one engine for every dump: a new one per case is slow
    before = dump_engine(engine)
    for index in range(CASES):
        data = mutate(rng, rng.choice(texts))
        path.write_bytes(data)
        dry_run, as_json = rng.random() < 0.5, rng.random() < 0.5
        args = ["apply", str(path), *["--dry-run"] * dry_run, *["--json"] * as_json,
                *["--prune"] * (rng.random() < 0.2)]
        result, cpu, wall = run_in_process(mtctl, args)
        after = dump_engine(engine)
        found = problems_of(result, as_json=as_json, changed=after != before, dry_run=dry_run)
        if cpu > MAX_SECONDS or wall > 3 * MAX_SECONDS:
            found.append(f"took {cpu:.1f} s of CPU, {wall:.1f} s")
        failures += [f"seed {SEED} case {index} ({' '.join(args[2:])}): {problem}\n"
                     f"  file: {data[:300]!r}" for problem in found]
        before = after
    engine.dispose()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown < MAX_RSS_KIB, f"the test process grew by {grown // 1024} MiB"
    assert not failures, f"{len(failures)} problems in {CASES} cases:\n" + "\n".join(
        failures[:20])


def _address_space() -> None:
    """A safety net: a regression fails the test instead of exhausting the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))


def run_measured(url: str, *args: str) -> tuple[int, str, str, float, int]:
    """mtctl in a real process: exit code, stdout, stderr, wall seconds, peak RSS in KiB."""
    env = {k: v for k, v in os.environ.items() if k != "MTCTL_DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    start = time.monotonic()
    with MeasuredPopen([sys.executable, "-m", "mtctl", "--db", url, *args],  # noqa: S603
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       preexec_fn=_address_space) as proc:
        out, err = proc.communicate(timeout=120)
    seconds = time.monotonic() - start
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), \
        seconds, proc.max_rss


def _parts(count: int) -> str:
    return ".".join(["a"] * count)


# (name, file contents or a path, extra arguments, exit code, what stderr says)
BOMBS: list[tuple[str, Any, list[str], int, str]] = [
    ("dotted key", f"nodes = []\nzz.{_parts(200_000)} = 1\n", [], 1,
     ":2: a key or table header has more than 64 dotted parts"),
    ("dotted header", f"[extensions.{_parts(200_000)}]\n", [], 1, ":1: a key or table header"),
    ("dotted array of tables", f"[[{_parts(100_000)}]]\n", [], 1, ":1: a key or table header"),
    ("dotted key in an inline table", f"x = [{{ {_parts(200_000)} = 1 }}]\n", [], 1,
     ":1: a key or table header"),
    ("quoted parts", "nodes = []\n" + '."x".'.join(['"a"'] * 100_000) + " = 1\n", [], 1,
     ":2: a key or table header"),
    ("deep arrays", "x = " + "[" * 1_000_000 + "]" * 1_000_000 + "\n", [], 1,
     ":1: nested more than 64 deep"),
    ("deep inline tables", "x = " + "{a = " * 200_000 + "1" + "}" * 200_000 + "\n", [], 1,
     ":1: nested more than 64 deep"),
    ("a 5 MB key", '[models."' + "k" * 5_000_000 + '"]\nkind = "app"\n', [], 1,
     ":1: models.\"kkkk"),
    ("over --max-size", "# filler\n" * 250_000, ["--max-size", "1"], 1,
     ":1: the file is larger than 1 MiB"),
    ("an endless device", Path("/dev/zero"), [], 1, ":1: the file is larger than 64 MiB"),
    ("10,000 unknown tables", "".join(f"[[a{i}]]\n" for i in range(10_000)), [], 1,
     ":1: a0: unknown key"),
    ("5,000 bad extensions", "".join(f'[extensions.{40000 + i}]\nnode = "m"\ncolour = 1\n'
                                     for i in range(5_000)), [], 1, ": unknown key"),
    ("brackets and dots in strings", 'nodes = ["a"]\ncategories = ["' + "[{." * 30 + '"]\n'
     + "# " + "[" * 100_000 + "\n" + "# " + "." * 100_000 + "\n", [], 1,
     "categories[0]: string should have at most 64 characters"),
    ("a directory", Path("/"), [], 2, "cannot read /: Is a directory — check the path"),
]


@pytest.mark.parametrize(("name", "content", "extra", "code", "says"), BOMBS,
                         ids=[b[0] for b in BOMBS])
def test_files_built_to_exhaust_mtctl_are_refused_in_bounded_time_and_memory(
        mtctl: Mtctl, tmp_path: Path, name: str, content: Any, extra: list[str], code: int,
        says: str):
    mtctl.ok("apply", str(EXAMPLES[0]))
    if isinstance(content, Path):
        path = content
    else:
        path = tmp_path / "bomb.toml"
        path.write_text(content, encoding="utf-8")
    before = dump_store(mtctl.url)
    exit_code, out, err, seconds, rss = run_measured(mtctl.url, "apply", str(path), *extra)
    assert "Traceback" not in out + err, err[-2000:]
    assert exit_code == code, (name, err[:500])
    assert says in err, (name, err[:500])
    assert all(line.startswith("mtctl: error: ") for line in err.splitlines()[:-1]), err[:500]
    assert dump_store(mtctl.url) == before, f"{name} changed the store"
    assert seconds < MAX_SECONDS, f"{name} took {seconds:.1f} s"
    assert rss < MAX_RSS_KIB, f"{name} peaked at {rss // 1024} MiB"


def test_a_large_valid_file_applies_in_bounded_time_and_memory(mtctl: Mtctl, tmp_path: Path):
    """The limits leave room for real files: 2,000 extensions with 3 phones each."""
    lines = ['nodes = ["madrid"]\n']
    for number in range(50000, 52000):
        lines.append(f'[extensions.{number}]\nnode = "madrid"\nname = "Desk {number}"\n'
                     f'phones = [{{ position = 0, model = "Cisco 8841" }}, '
                     f'{{ position = 1, model = "VIVAit Call Web", order = 2 }}, '
                     f'{{ position = 2, model = "Linphone (no proxy)", order = 0 }}]\n')
    path = tmp_path / "large.toml"
    path.write_text("".join(lines), encoding="utf-8")
    exit_code, _, err, seconds, rss = run_measured(mtctl.url, "apply", str(path), "--dry-run")
    assert exit_code == 0, err[:500]
    assert "dry run: 8001 to add" in err, err[:500]  # the node, extensions, phones
    assert seconds < MAX_SECONDS, f"took {seconds:.1f} s"
    assert rss < MAX_RSS_KIB, f"peaked at {rss // 1024} MiB"
