"""Loading the declarative PBX file: bytes → a validated document and every problem, each at
its TOML path (and, through `add_lines`, its line).

Parsing: TOML 1.0 through toml-rs (Rust), about four times faster than the standard library's
tomllib on a 100,000-extension file. toml-rs has no recursion limit and no bound on dotted
keys, so the limits of `toml_limits` are checked first: a file over them is refused with
its line, before any parser sees it. Then the schema (schema.py): an entry that fails it is
left out of the document and named in `broken`, so planning neither trusts nor re-reports it.

A large file is parsed and validated a piece at a time (`_pieces`): toml-rs needs several
times a text's size to parse it, and the raw document and the validated one would be held
together. A file the pieces could read otherwise than the whole, or that has any problem,
is parsed whole, so its problems are those of the whole file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from mtctl.domain.problems import KeyPath, Problem, format_path
from mtctl.formats.pbx_file.problems import one_branch, schema_problem
from mtctl.formats.pbx_file.schema import NAMED_SECTIONS, adapter
from mtctl.formats.toml_limits import (
    DEFAULT_MAX_BYTES,
    MAX_KEY_CHARS,
    check_text,
    has_long_lines,
    long_key,
)

MAX_ALIKE = 10_000  # kinds of phones shared (most files have a few dozen)
PIECE_CHARS = 2**18  # a large file is parsed a piece of about this many characters at a time
# A table header `[extensions]` (in any spelling): defined in two pieces it would pass each.
_EXTENSIONS_TABLE = re.compile(r"extensions['\"]?[ \t]*\]")


@dataclass
class ParsedConfig:
    """A parsed file: the valid part of it, every problem found, and the broken entries."""

    text: str
    doc: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    # (section, name) of entries that failed the schema; (section, None): the whole section.
    broken: set[tuple[str, str | None]] = field(default_factory=set)

    def is_broken(self, section: str, name: str | None = None) -> bool:
        return bool({("*", None), (section, None), (section, name)} & self.broken)

    def release(self) -> None:
        """Let go of the document and the text, once a plan without problems holds all that
        is left to do (at 100,000 extensions they are a good part of the memory)."""
        self.doc, self.text = {}, ""


def parse_config(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 meanwhile: Callable[[], None] | None = None) -> ParsedConfig:
    """Parse and validate a config file; never raises for anything a file can contain, and
    refuses a file over the limits of `toml_limits` before parsing it.

    meanwhile: work of the caller's (reading the store) that may run once while a large
    file's pieces are parsed on another core; it may also not run at all."""
    if len(data) > max_bytes:
        return _refused("", Problem((), f"the file is larger than {_size(max_bytes)}",
                                    "split it, or raise the limit with --max-size",
                                    line=1))
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - data.rfind(b"\n", 0, exc.start)
            return _refused("", Problem((), f"invalid TOML: not UTF-8 text (byte "
                                        f"{data[exc.start]:#04x} at column {column})",
                                        "save the file as UTF-8", line=line))
    else:
        text = data
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors write
    exceeded = check_text(text)
    if exceeded is not None:
        return _refused(text, Problem((), exceeded.message, exceeded.hint,
                                      line=exceeded.line))
    long_lines = has_long_lines(text)
    if not long_lines:
        doc = _load_pieces(text, meanwhile)
        if doc is not None:
            return ParsedConfig(text, doc, _file_problems(doc))
    raw, problem = _load_toml(text)
    if problem is None and long_lines:
        found = long_key(raw)
        if found is not None:
            problem = Problem(found[0], f"a key of {len(found[1])} characters (the "
                              f"limit is {MAX_KEY_CHARS})", "shorten it")
    if problem is not None:
        return _refused(text, problem)
    return _validate(text, raw)


def _refused(text: str, problem: Problem) -> ParsedConfig:
    return ParsedConfig(text, {}, [problem], {("*", None)})


def _size(count: int) -> str:
    return f"{count / 2**20:g} MiB" if count >= 2**20 else f"{count} bytes"


def _load_toml(text: str) -> tuple[dict[str, Any], Problem | None]:
    """Parse with toml-rs; only for a text within the limits (it has no recursion limit)."""
    import toml_rs

    try:
        return toml_rs.loads(text, toml_version="1.0.0"), None
    except toml_rs.TOMLDecodeError as exc:
        reason = str(exc.msg).strip().splitlines()[-1]
        last = max(text.count("\n") + (not text.endswith("\n")), 1)  # not the end-of-file line
        return {}, _toml_problem(text, reason, min(exc.lineno, last) if exc.lineno else None,
                                 exc.colno)


def _pieces(text: str) -> list[int] | None:
    """Where to cut a large file so that each piece parses alone to its part of the document:
    before `[extensions.…]` headers about PIECE_CHARS apart. None for a small file, and for a
    file where such a line could be inside a string (a multi-line one) or pieces could each
    pass what the whole breaks (an `[extensions]` table header, defined at most once)."""
    if len(text) < 2 * PIECE_CHARS or '"""' in text or "'''" in text \
            or _EXTENSIONS_TABLE.search(text):
        return None
    bounds = [0]
    while (at := text.find("\n[extensions.", bounds[-1] + PIECE_CHARS)) >= 0:
        bounds.append(at + 1)
    return [*bounds, len(text)]


def _load_pieces(text: str, meanwhile: Callable[[], None] | None = None,
                 ) -> dict[str, Any] | None:
    """The validated document of a file parsed a piece at a time; None when the file cannot
    be cut (see `_pieces`) or when it has a problem, which the whole file then reports.

    The pieces are parsed on two cores (`formats.forked.in_two`): each is parsed and validated
    alone. The pieces' documents add up to the whole one when their extensions are distinct
    and each other section is in one piece; otherwise the whole file decides (it may be
    valid, with a section's tables spread over the file, or define an extension twice)."""
    bounds = _pieces(text)
    if bounds is None:
        return None
    import toml_rs

    from mtctl.formats.forked import in_two

    check = adapter()
    alike: dict[Any, Any] = {}
    failed = False  # in this process: once a piece fails, the whole file decides

    def piece(index: int) -> dict[str, Any] | None:
        nonlocal failed
        if failed:
            return None
        try:
            parsed = cast(dict[str, Any], check.validate_python(
                toml_rs.loads(text[bounds[index]:bounds[index + 1]], toml_version="1.0.0")))
        except (toml_rs.TOMLDecodeError, ValidationError):
            failed = True
            return None
        _share_alike(parsed, alike)
        return parsed

    doc: dict[str, Any] = {}
    for parsed in in_two(len(bounds) - 1, piece, meanwhile=meanwhile):
        if parsed is None:
            return None
        for section, value in parsed.items():
            if section not in doc:
                doc[section] = value
            elif section == "extensions" and doc[section].keys().isdisjoint(value):
                doc[section].update(value)
            else:
                return None
    return doc


def _share_alike(doc: dict[str, Any], alike: dict[Any, Any]) -> None:
    """Phones written alike share one dict, and extensions their node's name: most phones of a
    large file are alike, and nothing changes a parsed document."""
    for entry in doc.get("extensions", {}).values():
        entry["node"] = alike.setdefault(entry["node"], entry["node"])
        phones = entry.get("phones")
        if phones and len(alike) < MAX_ALIKE:
            entry["phones"] = [alike.setdefault(tuple(p.items()), p) for p in phones]
        elif phones:
            entry["phones"] = [alike.get(tuple(p.items()), p) for p in phones]


def _toml_problem(text: str, reason: str, line: int | None, column: int | None = None,
                  ) -> Problem:
    if "duplicate key" in reason or "twice" in reason or "overwrite" in reason:
        duplicate = _duplicate_problem(text, line, column)
        if duplicate is not None:
            return duplicate
    return Problem((), f"invalid TOML: {reason}", "fix the syntax at this line", line=line)


def _duplicate_problem(text: str, line: int | None, column: int | None) -> Problem | None:
    """Say which table or key is defined twice, and where it was first."""
    if line is None:
        return None
    from mtctl.formats.toml_locator import Locator, inline_key_at

    locator = Locator(text)
    path, first = locator.duplicate_at(line)
    if path is None:
        return None
    inner = inline_key_at(text, line, column)
    if inner is not None:  # twice inside one inline table of this line
        return Problem(path, f"{format_path(inner)} is defined twice in one inline table",
                       "keep one of them", line=line)
    if len(path) == 2 and path[0] == "extensions":
        what = f"extension {path[1]} (MT014: extension numbers are unique)"
        hint = f"keep one [extensions.{json.dumps(path[1])}] table"
    else:
        what = format_path(path)
        hint = "keep one of them"
    where = f" (first at line {first})" if first else ""
    return Problem(path, f"{what} is defined twice{where}", hint, line=line)


def _validate(text: str, raw: dict[str, Any]) -> ParsedConfig:
    check = adapter()
    try:
        doc = cast(dict[str, Any], check.validate_python(raw))
        parsed = ParsedConfig(text, doc)
    except ValidationError as exc:
        errors = [e for e in (one_branch(e, raw) for e in exc.errors(include_url=False))
                  if e is not None]
        parsed = ParsedConfig(text, {}, [schema_problem(e) for e in errors])
        parsed.broken = {_broken_entry(tuple(e["loc"]), raw) for e in errors}
        try:
            parsed.doc = cast(dict[str, Any], check.validate_python(
                _without(raw, parsed.broken)))
        except ValidationError:  # not expected: every failing entry was left out
            parsed.broken.add(("*", None))
        parsed.problems += _too_many_phones(raw, parsed.broken)
    _share_alike(parsed.doc, {})
    parsed.problems += _file_problems(parsed.doc)
    return parsed


def _too_many_phones(raw: dict[str, Any], broken: set[tuple[str, str | None]],
                     ) -> list[Problem]:
    """MT001 for extensions left out for their schema problems: the rules cannot see them."""
    from mtctl.domain.model import ExtensionSpec, PhoneSpec
    from mtctl.domain.rules import extension_violations

    found = []
    extensions = raw.get("extensions")
    for section, number in sorted(broken, key=str):
        if section != "extensions" or number is None or not isinstance(extensions, dict):
            continue
        entry = extensions.get(number)
        phones = entry.get("phones") if isinstance(entry, dict) else None
        if not isinstance(phones, list):
            continue
        spec = ExtensionSpec(number=number, node="", phones=tuple(
            PhoneSpec(extension=number, position=0, order=1, model="", kind="")
            for _ in phones))
        found += [Problem(("extensions", number, "phones"), f"{v.object} {v.message}",
                          "an extension has at most 8 phones: remove some", v.rule)
                  for v in extension_violations(spec) if v.rule == "MT001"]
    return found


def _broken_entry(loc: KeyPath, raw: dict[str, Any]) -> tuple[str, str | None]:
    section = str(loc[0]) if loc else "*"
    if section in NAMED_SECTIONS and len(loc) >= 2 and isinstance(raw.get(section), dict):
        return section, str(loc[1])
    return section, None


def _without(raw: dict[str, Any], broken: set[tuple[str, str | None]]) -> dict[str, Any]:
    clean = dict(raw)
    copied: set[str] = set()
    for section, name in broken:
        if name is None:
            clean.pop(section, None)
        elif isinstance(clean.get(section), dict):
            if section not in copied:  # one copy per section, not one per broken entry
                clean[section] = dict(clean[section])
                copied.add(section)
            clean[section].pop(name, None)
    return clean


def _file_problems(doc: dict[str, Any]) -> list[Problem]:
    """What the file alone gets wrong beyond its schema: names listed twice, Web Call options
    without a Web Call mode."""
    found: list[Problem] = []
    for section, what in (("nodes", "node"), ("categories", "category")):
        found += _twice(doc.get(section, []), (section,), what)
    for name, group in doc.get("groups", {}).items():
        found += _twice(group.get("extensions", []), ("groups", name, "extensions"),
                        "extension")
    for name, user in doc.get("users", {}).items():
        found += _twice(user.get("webcall_extensions", []),
                        ("users", name, "webcall_extensions"), "extension")
        if "webcall_mode" not in user:
            for key in ("webcall_license", "webcall_extensions", "webcall_group",
                        "webcall_position"):
                if key in user:
                    found.append(Problem(("users", name, key), "is a Web Call option but the "
                                         "user has no webcall_mode", "add webcall_mode = "
                                         "\"exclusive\" or \"multiterminal\", or drop it"))
    return found


def _twice(items: list[str], path: KeyPath, what: str) -> list[Problem]:
    seen: set[str] = set()
    found = []
    for index, item in enumerate(items):
        if item in seen:
            found.append(Problem((*path, index), f"lists {what} {item!r} twice",
                                 "list each once"))
        seen.add(item)
    return found


def add_lines(problems: list[Problem], text: str) -> list[Problem]:
    """Give each problem the line of its path (or of its nearest enclosing path)."""
    from mtctl.formats.toml_locator import Locator

    locator = Locator(text) if text else None
    for problem in problems:
        if problem.line is None and locator is not None and problem.path is not None:
            problem.line = locator.line_of(problem.path)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))  # in file order
    return problems
