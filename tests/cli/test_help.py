"""Every command's --help shows an example (as sqlite-utils' tests/test_docs.py insists)."""

from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from mtctl.cli.app import app
from tests.cli.test_cli_fuzz import runs_itself


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command that runs something, walking groups recursively."""
    if hasattr(command, "commands"):
        itself = [path] if path and runs_itself(command) else []  # `export`, `provision`
        return itself + [p for name, sub in sorted(command.commands.items())
                         for p in command_paths(sub, (*path, name))]
    return [path]


ROOT = get_command(app)
COMMANDS = command_paths(ROOT)


def test_the_walk_finds_every_command_group():
    groups = {path[0] for path in COMMANDS}
    assert {"db", "config", "node", "category", "model", "template", "group", "ext", "user",
            "phone", "check", "audit", "ring-sim"} <= groups
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "mtctl")
def test_help_has_an_example(path):
    r = CliRunner().invoke(app, [*path, "--help"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Example:" in r.stdout, f"mtctl {' '.join(path)} --help has no 'Example:'"
    assert "mtctl " in r.stdout.split("Example:", 1)[1], r.stdout


def test_check_help_names_every_rule():
    """`check --help` said MT001–MT015 after MT016 (one Web Call phone per extension) came."""
    r = CliRunner().invoke(app, ["check", "--help"], catch_exceptions=False)
    assert "MT001–MT016" in r.stdout, r.stdout


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_names_its_value(path):
    """A parser function without a metavar showed its own name: `--port <parse>`."""
    r = CliRunner().invoke(app, [*path, "--help"], catch_exceptions=False)
    assert "<parse>" not in r.stdout, r.stdout


def test_serve_help_names_the_desk_phone_files():
    r = CliRunner().invoke(app, ["serve", "--help"], catch_exceptions=False)
    assert "/d/" in r.stdout, r.stdout
