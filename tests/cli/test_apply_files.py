"""`mtctl apply` on damaged and hostile files: each problem is one line naming the file, the
line and (where there is one) the TOML path, with a hint; exit 1 for what is in the file, 2
for a file that cannot be read; the store never changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Mtctl
from tests.dump import dump_store

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "multiterminal.toml").read_bytes()


def refused(mtctl: Mtctl, path: Path, *extra: str, code: int = 1) -> list[str]:
    """Apply a file that must be refused; its error lines (the store unchanged)."""
    before = dump_store(mtctl.url)
    result = mtctl("apply", str(path), *extra)
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert dump_store(mtctl.url) == before
    errors = [line for line in result.stderr.splitlines() if line.startswith("mtctl: error: ")]
    assert errors and all(" — " in line for line in errors), result.stderr
    return errors


@pytest.mark.parametrize(("data", "expected"), [
    (EXAMPLE[:300] + b"\xff\xfe" + EXAMPLE[300:],
     ":5: invalid TOML: not UTF-8 text (byte 0xff at column 53) — save the file as UTF-8"),
    (b'nodes = ["m"]\n\x00\n', ":2: invalid TOML: "),
    (b'nodes = ["a", 1]\n', ":1: nodes[1]: should be a valid string, not the integer 1"),
    (b'[groups.pool]\nextensions = ["1", ["2"]]\n',
     ":2: groups.pool.extensions[1]: should be a valid string, not an array"),
    (b'[extensions.40710]\nnode = "m"\nphones = [{ position = 0, model = "x" }, 5]\n',
     ':3: extensions."40710".phones[1]: should be a valid dictionary, not the integer 5'),
    (b'nodes = ["a"]\nnodes = ["b"]\n', ":2: nodes: nodes is defined twice (first at line 1)"),
    (b'[extensions.40710]\nnode = "m"\nphones = [{ position = 0, position = 1, model = "x" }]\n',
     ':3: extensions."40710".phones: position is defined twice in one inline table'),
    (b'nodes = ["a"]\r\ncategories = ["x"\r\n', ":2: invalid TOML: unclosed array"),
    (b'nodes = ["a"]\rcategories = []\r', ":1: invalid TOML: carriage return"),
    (b'[models."' + b"k" * 5000 + b'"]\nkind = "app"\n',
     ':1: models."' + "k" * 40 + '…": a key of 5000 characters (the limit is 1024)'),
    (b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", ":1: nested more than 64 deep"),
    (b"nodes = []\nzz." + b".".join([b"a"] * 100_000) + b" = 1\n",
     ":2: a key or table header has more than 64 dotted parts"),
    (b"[extensions." + b".".join([b"a"] * 100_000) + b"]\n",
     ":1: a key or table header has more than 64 dotted parts"),
])
def test_every_problem_names_its_line_and_path(mtctl: Mtctl, tmp_path: Path, data: bytes,
                                               expected: str):
    mtctl.ok("apply", "-", input=EXAMPLE.decode())
    path = tmp_path / "bad.toml"
    path.write_bytes(data)
    [error] = refused(mtctl, path)
    assert error.startswith(f"mtctl: error: {path}{expected}"), error


def test_json_gives_every_problem_a_line(mtctl: Mtctl, tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[users.ana]\nname = 5\nlogin = ["x"]\n[groups.p]\nextensions = [1]\n',
                    encoding="utf-8")
    result = mtctl("apply", str(path), "--json")
    assert result.exit_code == 1, result.output
    errors = json.loads(result.stdout)["errors"]
    assert [(e["location"], e["line"]) for e in errors] == [
        ("users.ana.name", 2), ("users.ana.login", 3), ("groups.p.extensions[0]", 5)]


@pytest.mark.parametrize("data", [b"", b"# nothing\n", b"\xef\xbb\xbf" + EXAMPLE,
                                  EXAMPLE.replace(b"\n", b"\r\n")])
def test_empty_files_a_byte_order_mark_and_crlf_are_fine(mtctl: Mtctl, tmp_path: Path,
                                                         data: bytes):
    path = tmp_path / "ok.toml"
    path.write_bytes(data)
    result = mtctl("apply", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert ("6 to add" in result.stderr) == (EXAMPLE in data.replace(b"\r\n", b"\n")), \
        result.stderr


def test_a_file_over_the_size_limit_is_refused_and_the_limit_can_be_raised(mtctl: Mtctl,
                                                                           tmp_path: Path):
    path = tmp_path / "big.toml"
    path.write_bytes(EXAMPLE + b"#" * 2**20)
    [error] = refused(mtctl, path, "--max-size", "1")
    assert error == (f"mtctl: error: {path}:1: the file is larger than 1 MiB — split it, or "
                     "raise the limit with --max-size")
    assert "6 to add" in mtctl.ok("apply", str(path), "--max-size", "2", "--dry-run").stderr


def test_an_endless_stdin_is_refused_at_the_limit(mtctl: Mtctl):
    before = dump_store(mtctl.url)
    result = mtctl("apply", "-", "--max-size", "1", input="#" * (2**20 + 10))
    assert result.exit_code == 1, result.output
    assert "<stdin>:1: the file is larger than 1 MiB" in result.stderr
    assert dump_store(mtctl.url) == before


def test_a_directory_is_a_usage_error(mtctl: Mtctl, tmp_path: Path):
    [error] = refused(mtctl, tmp_path, code=2)
    assert error == f"mtctl: error: cannot read {tmp_path}: Is a directory — check the path"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_a_usage_error(mtctl: Mtctl, tmp_path: Path):
    path = tmp_path / "secret.toml"
    path.write_bytes(EXAMPLE)
    path.chmod(0)
    [error] = refused(mtctl, path, code=2)
    assert error == f"mtctl: error: cannot read {path}: Permission denied — check the path"


def test_a_missing_file_is_a_usage_error(mtctl: Mtctl, tmp_path: Path):
    [error] = refused(mtctl, tmp_path / "nope.toml", code=2)
    assert "No such file or directory — check the path" in error


def test_a_missing_sip_domain_is_reported_at_the_phone_that_needs_a_key(mtctl: Mtctl,
                                                                        tmp_path: Path):
    path = tmp_path / "secure.toml"
    path.write_text('nodes = ["m"]\n\n[templates.mobile]\nsecure = true\n\n[extensions.40710]\n'
                    'node = "m"\nphones = [\n    { position = 0, model = "VIVAit Call Web" },\n'
                    '    { position = 1, model = "VIVAit Call Business Android", '
                    'template = "mobile" },\n]\n', encoding="utf-8")
    [error] = refused(mtctl, path)
    assert error.startswith(f'mtctl: error: {path}:10: extensions."40710".phones[1]: MT011 '
                            "secure phones need keys"), error


def test_line_100_is_not_an_emoji(mtctl: Mtctl, tmp_path: Path):
    path = tmp_path / "long.toml"
    path.write_text("nodes = [\n" + '    "madrid",\n' * 99 + "]\n", encoding="utf-8")
    errors = refused(mtctl, path)
    assert errors[0].startswith(f"mtctl: error: {path}:3: nodes[1]: lists node"), errors[0]
    assert any(e.startswith(f"mtctl: error: {path}:100: nodes[98]: ") for e in errors), errors
    mtctl.ok("node", "add", "m")
    mtctl.ok("ext", "add", "40710", "--node", "m", "--name", "Desk :smile: :100:")
    assert "Desk :smile: :100:" in mtctl.ok("ext", "list").stdout
