"""One renderer for every command: what it prints on stdout, in the format asked for, and the
notes, warnings and errors it prints on stderr.

A command never formats its data itself. It declares the *shape* of what it prints once, and
hands its rows (or its one object) to this module with the user's choice of format::

    PHONES = output.Shape("phone", "Phone", columns=("extension", "position", "model"),
                          empty="no phones")

    @app.command("list")
    def list_(ctx: typer.Context, fmt: output.FormatOpt = None,
              fields: output.FieldsOpt = None, as_json: output.JsonOpt = False) -> None:
        ...
        output.rows(items, PHONES, output.style(fmt, fields, as_json))

`Shape(schema, row, columns=..., titles=..., cells=..., empty=...)`
    `schema` names the JSON Schema every object follows (schemas/SCHEMA.schema.json); `row`
    names the TypedDict of one object in mtctl/shapes.py (by name: that module is imported only
    when its fields are needed, off the start-up path), whose keys, in order, are every field a
    script can ask for with --fields. `columns` are the fields a table (and plain, csv, tsv)
    shows when --fields is not given (default: every field); `titles` the table headings that
    differ from the field name; `cells` how a table shows a field that is not a plain value;
    `empty` the note a table prints (on stderr) when there are no rows.
`style(fmt, fields, as_json) -> Style`
    The user's --format, --fields and --json, checked: unknown formats or fields are one line,
    exit 2. Without --format: `table` on a terminal, `plain` otherwise.
`rows(items, shape, style, empty=None)`
    A listing: json prints one array (`[]` when empty), ndjson one object per line, table a Rich
    table, plain/tsv/csv a header line and one line per row. Items may be any iterable: every
    format but table and json streams.
`record(item, shape, style)`
    One object (`show`): json one object, ndjson one line, table a two-column table of every
    field, plain/tsv/csv a header line and one row of every field.
`report(document, rows, shape, style, human=..., lines=...)`
    A document that is more than its rows (`ring-sim`'s plan, `check`'s errors and warnings):
    json prints the document; table calls `human()` when given (or shows the rows);
    ndjson prints the document on one line (`lines="document"`) or each row on its own
    (`lines="rows"`); plain/tsv/csv print the rows of `shape`.

Formats, the same for every command:

- table: Rich table for people; booleans yes/no; nothing to show is a note on stderr.
- plain: what the table says, for grep, cut and awk: fields separated by one tab, a header line
  of field names, no borders, no colour, no padding. tsv is the same text.
- csv: RFC 4180 (comma, double quotes around a value that needs them, CRLF line ends).
- json, ndjson: the objects of the schemas; ndjson is one compact object per line.
- In plain, tsv and csv, booleans are `true`/`false`, a missing value is empty, a list is its
  items joined by commas, and an object is compact JSON. A control character inside a value
  (a tab or newline can only come from a store written by other means: mtctl refuses them) is
  shown escaped, as `\\t`, `\\n`, `\\x1b`..., so every line is one row and every tab (or comma
  outside quotes) separates two fields; a backslash is doubled, so the escapes read back
  unambiguously.

Every format but table and json writes a thousand lines at a time (`write_lines`): where
stdout is unbuffered each write is a system call.

Long because: it is the one place every command's output goes through, in every format (the
issue asks for no per-command formatting); split, each part would need the shapes and styles
of the others.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

if TYPE_CHECKING:
    from rich.console import Console

_out: Console | None = None
_err: Console | None = None


class Format(StrEnum):
    table = "table"
    plain = "plain"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"
    tsv = "tsv"


FormatOpt = Annotated[Format | None, typer.Option(
    "--format", case_sensitive=False,
    help="Output format (default: table on a terminal, plain in a pipe).")]
FieldsOpt = Annotated[str | None, typer.Option(
    "--fields", metavar="A,B", help="Only these fields, in this order.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (--format json).")]

TABULAR = (Format.plain, Format.tsv, Format.csv)


def out() -> Console:
    """Data goes to stdout."""
    global _out
    if _out is None:
        from rich.console import Console

        # On a terminal Rich fits its width; in a pipe, lines stay whole for grep and awk.
        piped = not sys.stdout.isatty()
        _out = Console(file=sys.stdout, highlight=False, soft_wrap=False, emoji=False,
                       width=10_000 if piped else None)
    return _out


def err() -> Console:
    """Progress, notes, warnings and errors go to stderr."""
    global _err
    if _err is None:
        from rich.console import Console

        # emoji=False on both consoles: "pbx.toml:100:" printed as "pbx.toml💯".
        _err = Console(file=sys.stderr, highlight=False, soft_wrap=True, emoji=False)
    return _err


def reset() -> None:
    """Forget the consoles (tests swap sys.stdout/sys.stderr between runs)."""
    global _out, _err
    _out = _err = None


@dataclass(frozen=True)
class Shape:
    """What a command prints: the schema its objects follow and how a table shows them."""

    schema: str
    row: str  # a TypedDict of mtctl/shapes.py, by name
    columns: tuple[str, ...] | None = None
    titles: Mapping[str, str] = field(default_factory=dict)
    cells: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)
    empty: str = "nothing to show"

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field of one object, in the order of its type."""
        from mtctl import shapes

        return tuple(getattr(shapes, self.row).__annotations__)

    @property
    def shown(self) -> tuple[str, ...]:
        """The fields a table, plain, tsv and csv show without --fields."""
        return self.fields if self.columns is None else self.columns

    def title(self, name: str) -> str:
        return self.titles.get(name, name.replace("_", " "))


@dataclass(frozen=True)
class Style:
    """How the user asked for the output: a format and, maybe, fields."""

    format: Format
    fields: tuple[str, ...] | None = None

    def pick(self, shape: Shape, default: Sequence[str]) -> tuple[str, ...]:
        """The fields to print: those asked for (each one known to the shape) or DEFAULT."""
        if self.fields is None:
            return tuple(default)
        known = shape.fields
        unknown = [name for name in self.fields if name not in known]
        if unknown:
            from mtctl.errors import UsageError

            raise UsageError(f"--fields: no field {_shown(unknown[0])}",
                             f"use some of: {','.join(known)}")
        return self.fields


def style(fmt: Format | None, fields: str | None, as_json: bool = False) -> Style:
    """The user's --format, --fields and --json as one Style (exit 2 when they disagree)."""
    from mtctl.errors import UsageError

    if as_json:
        if fmt not in (None, Format.json):
            raise UsageError(f"--json and --format {fmt} disagree",
                             "give one of them (--json is --format json)")
        fmt = Format.json
    if fmt is None:
        fmt = Format.table if sys.stdout.isatty() else Format.plain
    names = None
    if fields is not None:
        names = tuple(name.strip() for name in fields.split(","))
        if not all(names) or len(set(names)) != len(names):
            raise UsageError(f"--fields {_shown(fields)} is not a list of field names",
                             "write names separated by commas, each once, e.g. "
                             "--fields extension,position")
    return Style(fmt, names)


def _shown(text: str) -> str:
    from mtctl.domain.values import escape

    # Quoted by hand: repr() would double the backslashes escape() just wrote ('n\\x1b').
    return f"'{escape(text if len(text) <= 60 else text[:60] + '…')}'"


def rows(items: Iterable[Mapping[str, Any]], shape: Shape, how: Style, *,
         empty: str | None = None) -> None:
    """Print a listing in the chosen format (EMPTY: the table's note when there are no rows,
    instead of the shape's)."""
    if how.format in _WHOLE and how.fields is None:  # the objects as they are
        if how.format is Format.json:
            print_json(list(items))
        else:
            _ndjson(items)
        return
    names = how.pick(shape, shape.shown)
    if how.format is Format.json:
        print_json([_only(item, names) for item in items])
    elif how.format is Format.ndjson:
        _ndjson(_only(item, names) for item in items)
    elif how.format is Format.table:
        listed = list(items)
        if not listed:
            note(shape.empty if empty is None else empty)
            return
        _table(listed, shape, names)
    else:
        _delimited(items, names, how.format)


def record(item: Mapping[str, Any], shape: Shape, how: Style) -> None:
    """Print one object (a `show`) in the chosen format."""
    if how.format in _WHOLE and how.fields is None:
        if how.format is Format.json:
            print_json(item)
        else:
            _ndjson([item])
        return
    names = how.pick(shape, shape.fields)
    if how.format is Format.json:
        print_json(_only(item, names))
    elif how.format is Format.ndjson:
        _ndjson([_only(item, names)])
    elif how.format is Format.table:
        from rich.table import Table

        table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name in names:
            table.add_row(_cell(shape.title(name)), _human(shape, name, item.get(name)))
        out().print(table, markup=False)
    else:
        _delimited([item], names, how.format)


def report(document: Any, items: Iterable[Mapping[str, Any]], shape: Shape, how: Style, *,
           human: Callable[[], None] | None = None,
           lines: Literal["document", "rows"] = "document") -> None:
    """Print a document whose tabular form is its rows (ring-sim's plan, check's findings)."""
    if how.fields is not None and (how.format is Format.json or
                                   (how.format is Format.ndjson and lines == "document")):
        from mtctl.errors import UsageError

        raise UsageError(f"--fields picks columns, and --format {how.format} prints the whole "
                         "document", "use --fields with --format plain, tsv, csv or table")
    if how.format is Format.json:
        print_json(document)
    elif how.format is Format.ndjson and lines == "document":
        _ndjson([document])
    elif how.format is Format.table and human is not None and how.fields is None:
        human()
    else:
        rows(items, shape, how)


_WHOLE = (Format.json, Format.ndjson)


def _only(item: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {name: item.get(name) for name in names}


def print_json(data: Any) -> None:
    """DATA as indented JSON, with no character a terminal would act on."""
    sys.stdout.write(_json(data, indent=2) + "\n")


def print_ndjson(items: Iterable[Any]) -> None:
    """One compact JSON object per line, each written as it comes (streams)."""
    _ndjson(items)


def _ndjson(items: Iterable[Any]) -> None:
    write_lines(_json(item, indent=None) + "\n" for item in items)


LINES_PER_WRITE = 1_000


def write_lines(lines: Iterable[str], escape: Callable[[str], str] | None = None) -> None:
    """LINES (each ending in a newline) on stdout, a thousand to a write: one system call for
    a thousand even where stdout is unbuffered (`python -u`, PYTHONUNBUFFERED). ESCAPE, when
    given, applies to each block. The lines before a failure are written, as one by one."""
    write = sys.stdout.write
    block: list[str] = []
    try:
        for line in lines:
            block.append(line)
            if len(block) == LINES_PER_WRITE:
                text = "".join(block)
                block = []
                write(escape(text) if escape else text)
    finally:
        if block:
            text = "".join(block)
            write(escape(text) if escape else text)


def _json(data: Any, indent: int | None) -> str:
    return raw_escaped(json.dumps(data, ensure_ascii=False, indent=indent, default=str,
                                  separators=(",", ": ") if indent else (",", ":")))


def raw_escaped(text: str) -> str:
    """JSON text with the DEL, C1 and Unicode controls json.dumps leaves raw escaped."""
    if _RAW_IN_JSON.search(text):
        text = _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


# What json.dumps(ensure_ascii=False) leaves raw of domain/values.py's control characters.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _delimited(items: Iterable[Mapping[str, Any]], names: Sequence[str], fmt: Format) -> None:
    """A header line and one line per item: tab-separated (plain, tsv) or RFC 4180 csv.

    The header waits for the first row (or the end): a command that fails before it has
    anything to show prints nothing on stdout."""
    if fmt is Format.csv:
        import csv

        spelled: list[str] = []  # the csv writer's line, taken back at once
        writer = csv.writer(_Append(spelled), lineterminator="\r\n")

        def line(values: Sequence[str]) -> str:
            writer.writerow(values)
            return spelled.pop()
    else:
        def line(values: Sequence[str]) -> str:
            return "\t".join(values) + "\n"

    def lines() -> Iterator[str]:
        headed = False
        for item in items:
            if not headed:
                yield line(names)
                headed = True
            yield line([_text(item.get(name)) for name in names])
        if not headed:
            yield line(names)

    write_lines(lines())


class _Append:
    """A file that a csv writer writes its lines to: each one appended to a list."""

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def _text(value: Any) -> str:
    """A value in plain, tsv and csv: the JSON spelling of scalars, control characters escaped
    and backslashes doubled (so a tab and a backslash followed by `t` read differently)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return _unambiguous(",".join(map(str, value)))
    if isinstance(value, dict):
        return _unambiguous(_json(value, indent=None))
    return _unambiguous(str(value))


def _unambiguous(text: str) -> str:
    from mtctl.domain.values import escape

    return escape(text.replace("\\", "\\\\") if "\\" in text else text)


def _table(items: Sequence[Mapping[str, Any]], shape: Shape, names: Sequence[str]) -> None:
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for name in names:
        table.add_column(shape.title(name), overflow="fold")
    for item in items:
        table.add_row(*(_human(shape, name, item.get(name)) for name in names), style=None)
    out().print(table, markup=False)


def _human(shape: Shape, name: str, value: Any) -> str:
    shown = shape.cells.get(name)
    if shown is not None and value is not None:
        return _cell(shown(value))
    return _cell(value)


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
    if isinstance(value, dict):
        return escape(_json(value, indent=None))
    return escape(str(value))


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
