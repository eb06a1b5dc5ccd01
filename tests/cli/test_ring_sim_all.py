"""`ring-sim --all`: every login number and plain extension, one JSON object per line, each
what `ring-sim NUMBER --json` prints; --fail-if-silent for monitoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Mtctl
from tests.store.test_reader import build


def lines(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("seed", range(1, 11))
def test_all_is_ring_sim_of_every_number(mtctl: Mtctl, tmp_path: Path, seed: int) -> None:
    store = build(mtctl, tmp_path, seed)
    numbers = sorted(store.names)
    for flags in ([], ["--webcall-running"]):
        result = mtctl.ok("ring-sim", "--all", *flags)
        assert result.stderr == ""
        expected = [json.loads(mtctl.ok("ring-sim", n, "--json", *flags).stdout)
                    for n in numbers]
        assert lines(result.stdout) == expected
        assert all("\n" not in line for line in result.stdout.splitlines())


@pytest.mark.parametrize("fmt", ["plain", "tsv", "csv"])
def test_all_as_rows_is_the_rows_of_every_number(mtctl: Mtctl, tmp_path: Path,
                                                 fmt: str) -> None:
    store = build(mtctl, tmp_path, 3)
    result = mtctl.ok("ring-sim", "--all", "--format", fmt)
    header, *rows = result.stdout.splitlines()
    expected = []
    for number in sorted(store.names):
        _, *its = mtctl.ok("ring-sim", number, "--format", fmt).stdout.splitlines()
        expected += its
    assert rows == expected
    assert header == mtctl.ok("ring-sim", "--all", "--format", fmt).stdout.splitlines()[0]
    picked = mtctl.ok("ring-sim", "--all", "--format", fmt, "--fields", "number,reason")
    assert len(picked.stdout.splitlines()) == len(rows) + 1


def test_ndjson_is_the_default_and_can_be_named(seeded: Mtctl) -> None:
    assert seeded.ok("ring-sim", "--all").stdout == \
        seeded.ok("ring-sim", "--all", "--format", "ndjson").stdout


def test_fail_if_silent_prints_everything_then_exits_1(seeded: Mtctl) -> None:
    assert len(lines(seeded.ok("ring-sim", "--all", "--fail-if-silent").stdout)) == 1
    seeded.ok("ext", "add", "40799", "--node", "madrid")  # no phone: silent
    result = seeded("ring-sim", "--all", "--fail-if-silent")
    assert result.exit_code == 1
    assert [p["number"] for p in lines(result.stdout)] == ["40710", "40799"]
    assert [p["outcome"] for p in lines(result.stdout)] == ["rings", "silent"]
    assert result.stderr.strip() == \
        "mtctl: error: 1 of 2 numbers ring no phone (--fail-if-silent)"
    assert seeded("ring-sim", "--all").exit_code == 0  # silent alone is not a failure


def test_offline_phones_apply_to_every_number(seeded: Mtctl) -> None:
    plans = lines(seeded.ok("ring-sim", "--all", "--offline", "40710:0").stdout)
    assert plans == [json.loads(seeded.ok("ring-sim", "40710", "--json", "--offline",
                                          "40710:0").stdout)]
    result = seeded("ring-sim", "--all", "--offline", "40710:6")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "--offline 40710:6: no such phone" in result.stderr


def test_an_empty_store_prints_nothing(mtctl: Mtctl) -> None:
    result = mtctl.ok("ring-sim", "--all", "--fail-if-silent")
    assert (result.stdout, result.stderr) == ("", "")


@pytest.mark.parametrize(("args", "says"), [
    (["ring-sim", "--all", "40710"], "--all plans every number"),
    (["ring-sim", "--all", "--json"], "--all streams, and --format json prints a whole"),
    (["ring-sim", "--all", "--format", "table"], "--all streams, and --format table"),
    (["ring-sim", "--all", "--fields", "number"], "--fields picks columns"),
    (["ring-sim", "--all", "--live"], "--all cannot be combined with --live"),
    (["ring-sim", "--all", "--webcall-ext", "40710"], "--all cannot be combined with --webcall"),
    (["ring-sim", "--all", "--at", "-15m"], "--all cannot be combined with --at"),
    (["ring-sim"], "no number to call"),
])
def test_usage_errors(seeded: Mtctl, args: list[str], says: str) -> None:
    result = seeded(*args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output
