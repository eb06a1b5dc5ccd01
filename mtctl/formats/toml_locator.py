"""Where a TOML path is in a file's text: tomllib and toml-rs give values, not positions.

Used only to put line numbers on problems, so it is forgiving: it never raises, and where a
path cannot be found it gives the line of the nearest enclosing path that can.

Long because: it is one hand-written TOML scanner (headers, dotted keys, strings of four
kinds, arrays and inline tables) whose parts share one cursor over the text; the fuzz test
(tests/formats/test_toml_locator_fuzz.py) holds it against tomllib as one unit.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

Path = tuple[str | int, ...]

_KEY = r"""(?:[A-Za-z0-9_-]+|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\n]*')"""  # no per-character
# alternation inside a repeat: the regex engine would keep state for every character
_HEADER = re.compile(rf"^[ \t]*(\[\[?)[ \t]*({_KEY}(?:[ \t]*\.[ \t]*{_KEY})*)[ \t]*\]", re.M)
_KEY_PART = re.compile(_KEY)
_SPACES = re.compile(r"[ \t]*")
_BLANK = re.compile(r"[ \t\r\n]*")
_BARE_VALUE = re.compile(r"[^,\]}\n#]*")
_BASIC_REST = re.compile(r'[^"\\\n]*(?:\\.[^"\\\n]*)*')  # up to the closing quote
_LITERAL_REST = re.compile(r"[^'\n]*")
_DOTTED = re.compile(rf"{_KEY}(?:[ \t]*\.[ \t]*{_KEY})*")


def _unquote(part: str) -> str:
    if part[0] == "'":
        return part[1:-1]
    if part[0] == '"':
        if "\\" not in part:
            return part[1:-1]
        import tomllib

        try:
            return str(tomllib.loads(f"k = {part}")["k"])
        except (tomllib.TOMLDecodeError, KeyError):
            return part[1:-1]
    return part


def _keys(dotted: str) -> tuple[str, ...]:
    if "'" not in dotted and '"' not in dotted:  # bare parts only: the common case
        return tuple(part.strip(" \t") for part in dotted.split("."))
    return tuple(_unquote(m.group(0)) for m in _KEY_PART.finditer(dotted))


@dataclass
class _Table:
    line: int
    start: int  # offset just after the header line
    end: int  # offset of the next header, or the end of the text


class _Node:
    """A trie over path parts: each lookup and insert costs the length of its path, so that
    long dotted keys and headers stay linear instead of one tuple per prefix."""

    __slots__ = ("children", "line", "table", "count")

    def __init__(self) -> None:
        self.children: dict[str | int, _Node] = {}
        self.line: int | None = None  # first line at or under this path
        self.table: _Table | None = None
        self.count = -1  # arrays of tables: index of the last [[...]] seen

    def child(self, part: str | int) -> _Node:
        node = self.children.get(part)
        if node is None:
            node = self.children[part] = _Node()
        return node

    def record(self, path: Path, line: int) -> None:
        """Give this path and every prefix of it a line, unless it has one already."""
        node = self
        for part in path:
            node = node.child(part)
            if node.line is None:
                node.line = line

    def deepest(self, path: Path, start: int = 0, *, lines: bool = True) -> tuple[int, _Node]:
        """How many parts of path (from start) lead through nodes that have a line (or a
        table), and the last such node."""
        node, found, best = self, 0, self
        for depth, part in enumerate(path[start:], 1):
            next_node = node.children.get(part)
            if next_node is None:
                break
            node = next_node
            if (node.line is not None) if lines else (node.table is not None):
                found, best = depth, node
        return found, best


class Locator:
    """Maps TOML paths to line numbers by scanning the text (tomllib gives no positions).

    Table headers are found with one regular expression over the whole text; only the
    section holding a path is scanned key by key. Where a path cannot be found, the line of
    the nearest enclosing path that can is given. Every step is linear in the text and the
    path, however long a dotted key or header is.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._root: _Node | None = None  # tables and the first line under each path
        self._headers: list[tuple[int, Path, tuple[str, ...]]] = []
        self._sections: dict[int, _Node] = {}  # by the table's start offset

    def _index(self) -> _Node:
        if self._root is not None:
            return self._root
        root = _Node()
        aot = _Node()  # counts of [[...]] per header key
        line, last = 1, 0
        previous: _Table | None = None
        first_header = len(self.text)
        inside = _multiline_strings(self.text)
        for match in _HEADER.finditer(self.text):
            if inside and _within(inside, match.start()):
                continue  # a line of a multi-line string that looks like a header
            line += self.text.count("\n", last, match.start())
            last = match.start()
            keys = _keys(match.group(2))
            if not keys:
                continue
            if previous is not None:
                previous.end = match.start()
            else:
                first_header = match.start()
            path = self._resolve(keys, aot)
            if match.group(1) == "[[":
                node = aot
                for key in keys:
                    node = node.child(key)
                node.children = {}  # arrays of tables under it start again
                node.count += 1
                path = (*path, node.count)
            end_of_line = self.text.find("\n", match.end())
            start = len(self.text) if end_of_line < 0 else end_of_line + 1
            previous = _Table(line, start, len(self.text))
            node = root
            for part in path[:-1]:
                node = node.child(part)
                if node.line is None:
                    node.line = line
            node = node.child(path[-1])
            if node.table is None:
                node.table = previous
            self._headers.append((line, path, keys))
        root.table = _Table(1, 0, first_header)
        self._root = root
        return root

    @staticmethod
    def _resolve(keys: tuple[str, ...], aot: _Node) -> Path:
        path: list[str | int] = []
        node: _Node | None = aot
        for size, key in enumerate(keys, 1):
            path.append(key)
            node = node.children.get(key) if node is not None else None
            if size < len(keys) and node is not None and node.count >= 0:
                path.append(node.count)
        return tuple(path)

    def _table(self, path: Path) -> _Table | None:
        node: _Node | None = self._index()
        for part in path:
            node = node.children.get(part) if node is not None else None
        return node.table if node is not None else None

    def line_of(self, path: Path | None) -> int | None:
        """The line where this path is, or where its nearest enclosing path is."""
        if path is None:
            return None
        root = self._index()
        size, node = root.deepest(path, lines=False)
        table = node.table
        assert table is not None  # the root always has one
        if size == len(path) and size:
            return table.line
        keys = self._section(size > 0, table)
        found, key = keys.deepest(path, size)
        if found:
            return key.line
        found, under = root.deepest(path)
        if found > size:
            return under.line
        return table.line if size else None

    def duplicate_at(self, line: int) -> tuple[Path | None, int | None]:
        """For a 'defined twice' error at this line: what is defined twice, and where first."""
        self._index()
        for header_line, path, keys in self._headers:
            if header_line == line:
                first = next((ln for ln, _, k in self._headers if k == keys), None)
                return path, first if first != line else None
        # A key defined twice inside one table: name the key of that line.
        start = 0
        for _ in range(line - 1):
            start = self.text.find("\n", start) + 1
        end = self.text.find("\n", start)
        text = self.text[start:end if end >= 0 else None]
        match = re.match(rf"[ \t]*({_KEY}(?:[ \t]*\.[ \t]*{_KEY})*)[ \t]*=", text)
        if not match:
            return None, None
        keys = _keys(match.group(1))
        owner = max((h for h in self._headers if h[0] < line), default=None,
                    key=lambda h: h[0])
        path = (*(owner[1] if owner else ()), *keys)
        table = self._table(owner[1] if owner else ())
        first = None
        if table is not None:
            found, node = self._section(owner is not None, table).deepest(keys)
            first = node.line if found == len(keys) else None
        return path, first if first != line else None

    def _section(self, under_header: bool, table: _Table) -> _Node:
        if table.start not in self._sections:
            scanner = _SectionScanner(self.text, table.start, table.end,
                                      table.line + (1 if under_header else 0))
            try:
                scanner.run()
            except (RecursionError, IndexError, ValueError):
                pass  # a section that does not parse: keep what was found before the error
            self._sections[table.start] = scanner.found
        return self._sections[table.start]


class _SectionScanner:
    """Records the line of every key and array element of one table's body."""

    def __init__(self, text: str, start: int, end: int, line: int) -> None:
        self.text, self.pos, self.end, self.line = text, start, end, line
        self.found = _Node()

    def run(self) -> None:
        while True:
            self._blank()
            if self.pos >= self.end:
                return
            start = self.pos
            keys = self._key()
            if not keys or self._peek() != "=":
                self._skip_line()
                if self.pos == start:
                    return
                continue
            self.pos += 1
            self._record(keys)
            self._value(keys)

    def _record(self, path: Path) -> None:
        self.found.record(path, self.line)

    def _peek(self) -> str:
        self._spaces()
        return self.text[self.pos] if self.pos < self.end else ""

    def _spaces(self) -> None:
        self.pos = _SPACES.match(self.text, self.pos, self.end).end()  # type: ignore[union-attr]

    def _blank(self) -> None:
        """Spaces, newlines and comments."""
        while self.pos < self.end:
            end = _BLANK.match(self.text, self.pos, self.end).end()  # type: ignore[union-attr]
            self.line += self.text.count("\n", self.pos, end)
            self.pos = end
            if self.pos < self.end and self.text[self.pos] == "#":
                self._skip_line()
            else:
                return

    def _skip_line(self) -> None:
        newline = self.text.find("\n", self.pos, self.end)
        if newline < 0:
            self.pos = self.end
        else:
            self.pos = newline + 1
            self.line += 1

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._spaces()
            match = _KEY_PART.match(self.text, self.pos, self.end)
            if not match:
                return tuple(parts)
            parts.append(_unquote(match.group(0)))
            self.pos = match.end()
            if self._peek() != ".":
                return tuple(parts)
            self.pos += 1

    def _value(self, path: Path) -> None:
        char = self._peek()
        if char == "[":
            self.pos += 1
            index = 0
            while True:
                self._blank()
                if self.pos >= self.end or self.text[self.pos] == "]":
                    self.pos += 1
                    return
                self._record((*path, index))
                self._value((*path, index))
                self._blank()
                if self.pos < self.end and self.text[self.pos] == ",":
                    self.pos += 1
                    index += 1
                elif self.pos < self.end and self.text[self.pos] != "]":
                    raise ValueError("unexpected character in an array")
        elif char == "{":
            self.pos += 1
            while True:
                self._spaces()
                if self.pos >= self.end or self.text[self.pos] in "}\n":
                    self.pos += 1
                    return
                keys = self._key()
                if not keys or self._peek() != "=":
                    raise ValueError("not a key in an inline table")
                self.pos += 1
                self._record((*path, *keys))
                self._value((*path, *keys))
                if self._peek() == ",":
                    self.pos += 1
        elif char in "\"'":
            self._string(char)
        else:
            self.pos = _BARE_VALUE.match(self.text, self.pos, self.end).end()  # type: ignore[union-attr]

    def _string(self, quote: str) -> None:
        triple = quote * 3
        if self.text.startswith(triple, self.pos):
            close = self.text.find(triple, self.pos + 3)
            while quote == '"' and close > 0 and _escaped(self.text, close):
                close = self.text.find(triple, close + 1)
            close = self.end if close < 0 else close + 3
            while close < self.end and self.text[close] == quote:  # up to 2 quotes more
                close += 1
            self.line += self.text.count("\n", self.pos, close)
            self.pos = close
            return
        pattern = _BASIC_REST if quote == '"' else _LITERAL_REST
        self.pos = pattern.match(self.text, self.pos + 1, self.end).end() + 1  # type: ignore[union-attr]


_STRING_OR_COMMENT = re.compile(r"""#|"{3}|'{3}|["']""")
_BASIC = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')


def _multiline_strings(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of every multi-line string, in order; one linear pass that
    skips comments and one-line strings (whose quotes could look like a multi-line one)."""
    spans: list[tuple[int, int]] = []
    if '"""' not in text and "'''" not in text:
        return spans
    pos = 0
    while (match := _STRING_OR_COMMENT.search(text, pos)) is not None:
        start, mark = match.start(), match.group()
        if mark == "#":
            newline = text.find("\n", start)
            pos = len(text) if newline < 0 else newline
        elif len(mark) == 3:
            close = text.find(mark, start + 3)
            while mark == '"""' and close > 0 and _escaped(text, close):
                close = text.find(mark, close + 1)
            end = len(text) if close < 0 else close + 3
            while end < len(text) and text[end] == mark[0]:  # up to 2 quotes more
                end += 1
            spans.append((start, end))
            pos = end
        elif mark == '"':
            found = _BASIC.match(text, start)
            pos = found.end() if found else start + 1
        else:
            close = text.find("'", start + 1)
            newline = text.find("\n", start + 1)
            pos = start + 1 if close < 0 or 0 <= newline < close else close + 1
    return spans


def _within(spans: list[tuple[int, int]], offset: int) -> bool:
    index = bisect.bisect_right(spans, offset, key=lambda span: span[0]) - 1
    return index >= 0 and spans[index][0] < offset < spans[index][1]


def inline_key_at(text: str, line: int, column: int | None) -> tuple[str, ...] | None:
    """The key at this column when it is inside an inline table (past the line's `=`)."""
    if column is None or column < 1:
        return None
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    end = text.find("\n", start)
    row = text[start:end if end >= 0 else None]
    equals = row.find("=")
    if equals < 0 or column - 1 <= equals:
        return None
    match = _DOTTED.match(row, column - 1)
    return _keys(match.group(0)) if match else None


def _escaped(text: str, index: int) -> bool:
    slashes = 0
    while index - slashes - 1 >= 0 and text[index - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1
