"""Where a TOML path is in a file's text: tomllib and toml-rs give values, not positions.

Used only to put line numbers on problems, so it is forgiving: it never raises, and where a
path cannot be found it gives the line of the nearest enclosing path that can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Path = tuple[str | int, ...]

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_HEADER = re.compile(rf"^[ \t]*(\[\[?)[ \t]*({_KEY}(?:[ \t]*\.[ \t]*{_KEY})*)[ \t]*\]", re.M)
_KEY_PART = re.compile(_KEY)


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
    return tuple(_unquote(m.group(0)) for m in _KEY_PART.finditer(dotted))


@dataclass
class _Table:
    line: int
    start: int  # offset just after the header line
    end: int  # offset of the next header, or the end of the text


class Locator:
    """Maps TOML paths to line numbers by scanning the text (tomllib gives no positions).

    Table headers are found with one regular expression over the whole text; only the
    section holding a path is scanned key by key. Where a path cannot be found, the line of
    the nearest enclosing path that can is given.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._tables: dict[Path, _Table] | None = None
        self._headers: list[tuple[int, Path, tuple[str, ...]]] = []
        self._first_under: dict[Path, int] = {}
        self._sections: dict[Path, dict[Path, int]] = {}

    def _index(self) -> dict[Path, _Table]:
        if self._tables is not None:
            return self._tables
        tables: dict[Path, _Table] = {}
        aot: dict[tuple[str, ...], int] = {}
        line, last = 1, 0
        previous: _Table | None = None
        first_header = len(self.text)
        for match in _HEADER.finditer(self.text):
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
                for known in [k for k in aot if k[:len(keys)] == keys and len(k) > len(keys)]:
                    del aot[known]
                aot[keys] = aot.get(keys, -1) + 1
                path = (*path, aot[keys])
            end_of_line = self.text.find("\n", match.end())
            start = len(self.text) if end_of_line < 0 else end_of_line + 1
            previous = _Table(line, start, len(self.text))
            tables.setdefault(path, previous)
            self._headers.append((line, path, keys))
            for size in range(1, len(path)):
                self._first_under.setdefault(path[:size], line)
        tables[()] = _Table(1, 0, first_header)
        self._tables = tables
        return tables

    @staticmethod
    def _resolve(keys: tuple[str, ...], aot: dict[tuple[str, ...], int]) -> Path:
        path: list[str | int] = []
        for size in range(1, len(keys) + 1):
            path.append(keys[size - 1])
            if size < len(keys) and keys[:size] in aot:
                path.append(aot[keys[:size]])
        return tuple(path)

    def line_of(self, path: Path | None) -> int | None:
        """The line where this path is, or where its nearest enclosing path is."""
        if path is None:
            return None
        tables = self._index()
        for size in range(len(path), -1, -1):
            table = tables.get(path[:size])
            if table is None:
                continue
            if size == len(path) and size:
                return table.line
            keys = self._section(path[:size], table)
            rest = path[size:]
            for cut in range(len(rest), 0, -1):
                if rest[:cut] in keys:
                    return keys[rest[:cut]]
            for cut in range(len(path), size, -1):
                if path[:cut] in self._first_under:
                    return self._first_under[path[:cut]]
            return table.line if size else None
        return None

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
        first = self._section(owner[1], self._index()[owner[1]]).get(keys) if owner else None
        return path, first if first != line else None

    def _section(self, path: Path, table: _Table) -> dict[Path, int]:
        if path not in self._sections:
            scanner = _SectionScanner(self.text, table.start, table.end,
                                      table.line + (1 if path else 0))
            try:
                scanner.run()
            except (RecursionError, IndexError, ValueError):
                pass  # a section that does not parse: keep what was found before the error
            self._sections[path] = scanner.found
        return self._sections[path]


class _SectionScanner:
    """Records the line of every key and array element of one table's body."""

    def __init__(self, text: str, start: int, end: int, line: int) -> None:
        self.text, self.pos, self.end, self.line = text, start, end, line
        self.found: dict[Path, int] = {}

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
        for size in range(1, len(path) + 1):
            self.found.setdefault(path[:size], self.line)

    def _peek(self) -> str:
        self._spaces()
        return self.text[self.pos] if self.pos < self.end else ""

    def _spaces(self) -> None:
        while self.pos < self.end and self.text[self.pos] in " \t":
            self.pos += 1

    def _blank(self) -> None:
        """Spaces, newlines and comments."""
        while self.pos < self.end:
            char = self.text[self.pos]
            if char in " \t\r":
                self.pos += 1
            elif char == "\n":
                self.pos += 1
                self.line += 1
            elif char == "#":
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
            while self.pos < self.end and self.text[self.pos] not in ",]}\n#":
                self.pos += 1

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
        self.pos += 1
        while self.pos < self.end and self.text[self.pos] not in (quote, "\n"):
            self.pos += 2 if quote == '"' and self.text[self.pos] == "\\" else 1
        self.pos += 1


def _escaped(text: str, index: int) -> bool:
    slashes = 0
    while index - slashes - 1 >= 0 and text[index - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1
