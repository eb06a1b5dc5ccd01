"""The hand-written TOML locator against tomllib: on generated files (headers, arrays of
tables, dotted, quoted and literal keys, multi-line arrays and strings, inline tables,
comments that look like keys), every key tomllib finds is found by the locator on the line
where it is written, and a key that is not there gets the line of its enclosing path."""

from __future__ import annotations

import json
import tomllib
from itertools import count
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mtctl.formats.toml_locator import Locator

Path = tuple[str | int, ...]
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6)


class Writer:
    """Builds a TOML text line by line and remembers the line of every path it writes."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw, self.lines, self.expected = draw, [], {}
        self.names = count()

    @property
    def line(self) -> int:
        return len(self.lines) + 1

    def mark(self, path: Path, line: int) -> None:
        for size in range(1, len(path) + 1):
            self.expected.setdefault(path[:size], line)

    def key(self) -> tuple[str, str]:
        """A new key (unique in the whole file) and how it is written."""
        name = f"k{next(self.names)}"
        style = self.draw(st.sampled_from(["bare", "bare", "basic", "literal"]))
        if style == "bare":
            return name, name
        extra = self.draw(TEXT)
        if style == "literal":
            extra = extra.replace("'", "")
            return f"{name}{extra}", f"'{name}{extra}'"
        return f"{name}.{extra}", json.dumps(f"{name}.{extra}", ensure_ascii=False)

    def dotted(self) -> tuple[Path, str]:
        keys = [self.key() for _ in range(self.draw(st.integers(1, 3)))]
        return tuple(k for k, _ in keys), self.draw(st.sampled_from([".", " . "])).join(
            w for _, w in keys)

    def comment(self) -> None:
        if self.draw(st.integers(0, 4)) == 0:
            self.lines.append(self.draw(st.sampled_from(
                ["# [not.a.header]", "  # x = 1", "", "#", "# \"quoted\" = ["])))

    def scalar(self) -> str:
        return self.draw(st.sampled_from([
            "1", "-2", "1.5", "true", "1979-05-27T07:32:00Z", '"a # b [c] = d"', "'x = [y'",
            '"esc \\" quote"', '"brackets ] } ,"']))

    def value(self, path: Path, depth: int) -> None:
        """Append `= value` to the last line (more lines for a multi-line value)."""
        kind = self.draw(st.sampled_from(["scalar", "scalar", "multi-string", "inline",
                                          "array"] if depth < 3 else ["scalar"]))
        if kind == "scalar":
            self.lines[-1] += " = " + self.scalar()
        elif kind == "multi-string":
            self.lines[-1] += ' = """first'
            self.lines += ['[looks.like.a] = "header"', 'end"""']
        elif kind == "inline":
            self.lines[-1] += " = " + self.inline(path, len(self.lines))
        else:
            self.lines[-1] += " = ["
            for index in range(self.draw(st.integers(0, 3))):
                self.comment()
                self.expected.setdefault((*path, index), self.line)
                if self.draw(st.booleans()):
                    self.lines.append("    " + self.inline((*path, index), self.line) + ",")
                else:
                    self.lines.append("    " + self.scalar() + ",")
            self.lines.append("]")

    def inline(self, path: Path, line: int) -> str:
        """An inline table written on this line."""
        items = []
        for _ in range(self.draw(st.integers(0, 2))):
            keys, written = self.dotted()
            self.mark((*path, *keys), line)
            items.append(f"{written} = {self.scalar()}")
        return "{ " + ", ".join(items) + " }"

    def pairs(self, table: Path) -> None:
        for _ in range(self.draw(st.integers(0, 3))):
            self.comment()
            keys, written = self.dotted()
            self.lines.append(written)
            self.mark((*table, *keys), self.line - 1)
            self.value((*table, *keys), 0)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[Path, int]]:
    writer = Writer(draw)
    writer.pairs(())
    for _ in range(draw(st.integers(0, 4))):
        writer.comment()
        keys, written = writer.dotted()
        if draw(st.booleans()):
            writer.lines.append(f"[{written}]")
            writer.mark(keys, writer.line - 1)
            writer.pairs(keys)
        else:
            for index in range(draw(st.integers(1, 3))):
                writer.lines.append(f"[[ {written} ]]")
                writer.mark((*keys, index), writer.line - 1)
                writer.pairs((*keys, index))
    return "\n".join(writer.lines) + "\n", writer.expected


def paths(node: Any, path: Path = ()) -> set[Path]:
    found: set[Path] = set()
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else []
    for key, value in items:
        found |= {(*path, key)} | paths(value, (*path, key))
    return found


@settings(max_examples=300, deadline=None)
@given(documents())
def test_the_locator_agrees_with_tomllib(document):
    text, expected = document
    doc = tomllib.loads(text)
    # Every key tomllib finds was written by the generator, so its line is known. Scalars in
    # arrays carry an index too; they are not keys but elements, and must be found as well.
    assert paths(doc) == set(expected), text
    locator = Locator(text)
    for path, line in expected.items():
        assert locator.line_of(path) == line, (path, text)
        assert locator.line_of((*path, "missing")) == line, (path, text)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["key", "header", "aot", "inline"]))
def test_long_dotted_paths_are_located(parts, style):
    keys = ".".join(["a"] * parts)
    text = {"key": f"x = 1\n{keys} = 2\n", "header": f"x = 1\n[{keys}]\ny = 2\n",
            "aot": f"x = 1\n[[{keys}]]\ny = 2\n", "inline": f"x = 1\nt = {{ {keys} = 2 }}\n"
            }[style]
    path: Path = ("a",) * parts if style != "inline" else ("t", *("a",) * parts)
    if style == "aot":
        path = (*path, 0)
    locator = Locator(text)
    assert locator.line_of(path) == 2
    assert locator.line_of((*path, "missing")) == 2
