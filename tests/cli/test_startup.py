"""Start-up is a product target (README, Performance): what keeps it, checked without timing."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from typer.main import get_command

from mtctl.cli.app import app


def commands(group: Any, path: str = "mtctl") -> Iterator[tuple[str, Any]]:
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, f"{path} {name}")


def test_no_command_has_postponed_annotations() -> None:
    """Typer builds every command's parameters at each start; string annotations (from
    `from __future__ import annotations`) make it compile and evaluate each one again."""
    postponed = []
    for path, command in commands(get_command(app)):
        callback = getattr(command, "callback", None)
        if callback is None:
            continue
        hints = inspect.get_annotations(inspect.unwrap(callback))
        if any(isinstance(hint, str) for hint in hints.values()):
            postponed.append(path)
    assert not postponed, postponed
