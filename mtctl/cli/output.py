"""One renderer for every command: Rich tables for people, JSON for scripts, errors on stderr."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

_out: Console | None = None
_err: Console | None = None


def out() -> Console:
    """Data goes to stdout."""
    global _out
    if _out is None:
        # On a terminal Rich fits its width; in a pipe, lines stay whole for grep and awk.
        piped = not sys.stdout.isatty()
        _out = Console(file=sys.stdout, highlight=False, soft_wrap=False, emoji=False,
                       width=10_000 if piped else None)
    return _out


def err() -> Console:
    """Progress, notes, warnings and errors go to stderr."""
    global _err
    if _err is None:
        # emoji=False on both consoles: "pbx.toml:100:" printed as "pbx.toml💯".
        _err = Console(file=sys.stderr, highlight=False, soft_wrap=True, emoji=False)
    return _err


def reset() -> None:
    """Forget the consoles (tests swap sys.stdout/sys.stderr between runs)."""
    global _out, _err
    _out = _err = None


def print_json(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if _RAW_IN_JSON.search(text):  # DEL, C1 and Unicode controls json leaves raw
        text = _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")


# What json.dumps(ensure_ascii=False) leaves raw of domain/values.py's control characters.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _cell(value: Any) -> str:
    """A value as a table shows it; control characters (from a store written by other means)
    are shown escaped, never sent to the terminal."""
    from mtctl.domain.values import escape

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return escape(", ".join(map(str, value)))
    return escape(str(value))


def rows(items: Sequence[dict[str, Any]], columns: Sequence[str], *, as_json: bool,
         empty: str = "nothing to show", titles: dict[str, str] | None = None) -> None:
    """Render a listing: a JSON array, or a table of the given columns."""
    if as_json:
        print_json(list(items))
        return
    if not items:
        note(empty)
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column((titles or {}).get(column, column.replace("_", " ")), overflow="fold")
    for item in items:
        table.add_row(*(_cell(item.get(column)) for column in columns), style=None)
    out().print(table, markup=False)


def record(item: dict[str, Any], *, as_json: bool) -> None:
    """Render one object: a JSON object, or a two-column table."""
    if as_json:
        print_json(item)
        return
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in item.items():
        table.add_row(_cell(key.replace("_", " ")), _cell(value))
    out().print(table, markup=False)


def note(message: str) -> None:
    """A line for people, on stderr."""
    from mtctl.domain.values import escape

    err().print(escape(message), markup=False)


def error(message: str) -> None:
    from mtctl.domain.values import escape

    err().print(f"mtctl: error: {escape(message)}", markup=False, style="red")


def warning(message: str) -> None:
    from mtctl.domain.values import escape

    err().print(f"mtctl: warning: {escape(message)}", markup=False, style="yellow")
