"""Limits a config file must keep before any TOML parser sees it.

toml-rs has no recursion limit (deep brackets overflow the stack and kill the process) and
spends about 330 bytes per part of a dotted key (`a.a.a… = 1`: 1.3 GB at four million parts,
a 8 MB file); tomllib is quadratic on such keys. No config file comes near these limits: its
deepest path is `extensions."40710".phones[0].order`.

The checks are cheap upper bounds computed in C over the whole text (brackets counted even
inside strings, dots on a line counted even inside values); only a file that exceeds one is
scanned exactly, once, linearly, stopping at the first thing over a limit.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from itertools import accumulate, repeat
from typing import Any

MAX_NESTING = 64  # arrays and inline tables inside each other
MAX_KEY_PARTS = 64  # parts of one dotted key or table header
MAX_KEY_CHARS = 1024  # characters of one key (a name is at most 128)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_DELETE = bytes(b for b in range(256) if b not in b"[]{}")
_SIGN = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_LONG_LINE = re.compile(rf"^[^\n]{{{MAX_KEY_CHARS + 1}}}", re.M)
_LINE_BYTES = bytes.maketrans(bytes(range(256)),
                              bytes(b if b == 0x0A else 0x78 for b in range(256)))  # "x"
_STRINGS_AND_COMMENTS = re.compile(
    r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'  # multi-line basic
    r"|'''[^']*(?:'(?!'')[^']*)*'''"  # multi-line literal
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"'  # basic
    r"|'[^'\n]*'|#[^\n]*", re.S)
_SPECIAL = re.compile(r"""[\[\]{}"'#\n=,]""")
_BASIC = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')


@dataclass
class Exceeded:
    """A limit a file goes over, and the line where it does."""

    message: str
    hint: str
    line: int | None = None


def nesting_bound(text: str) -> int:
    """An upper bound of how deeply brackets nest (those inside strings count too)."""
    brackets = text.encode("utf-8", "surrogatepass").translate(None, _DELETE).translate(_SIGN)
    return max(accumulate(map(operator.sub, brackets, repeat(1))), default=0)


def check_text(text: str) -> Exceeded | None:
    """Nesting and dotted keys over the limits, found before parsing; None if within them."""
    if nesting_bound(text) <= MAX_NESTING and not _many_dots(text, b"\n"):
        return None
    code = _STRINGS_AND_COMMENTS.sub('""', text)  # still in C: what is left is TOML syntax
    if nesting_bound(code) <= MAX_NESTING and not _many_dots(code, b"\n=,[]{}"):
        return None
    return _Scan(text).run()  # over a limit: where exactly (in Python, so only now)


def _many_dots(text: str, ends: bytes) -> bool:
    """Whether MAX_KEY_PARTS dots come in a row with none of `ends` between them (in C:
    keep only dots and ends, then look for that many dots together)."""
    data = text.encode("utf-8", "surrogatepass")
    kept = data.translate(bytes.maketrans(ends, b"\n" * len(ends)),
                          bytes(b for b in range(256) if b not in ends + b"."))
    return b"." * MAX_KEY_PARTS in kept


def has_long_lines(text: str) -> bool:
    """Whether a key could be longer than MAX_KEY_CHARS (keys never span lines).

    First in bytes, in C: a character is at least one byte, so a text without MAX_KEY_CHARS
    bytes in a row between newlines has no such line. Only a text with that many is looked at
    by characters (a regular expression takes half a second on a 35 MiB file)."""
    marks = text.encode("utf-8", "surrogatepass").translate(_LINE_BYTES)  # all but \n: "x"
    if b"x" * (MAX_KEY_CHARS + 1) not in marks:
        return False
    return _LONG_LINE.search(text) is not None


def long_key(doc: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The path of the first key longer than MAX_KEY_CHARS in a parsed document, if any."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), doc)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if len(key) > MAX_KEY_CHARS:
                    return (*path, key), key
                if isinstance(value, dict | list):
                    stack.append(((*path, key), value))
        elif isinstance(node, list):
            stack.extend(((*path, index), value) for index, value in enumerate(node)
                         if isinstance(value, dict | list))
    return None


class _Scan:
    """Exact nesting and dotted-key depth, outside strings and comments, in one pass."""

    def __init__(self, text: str) -> None:
        self.text = text

    def line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def run(self) -> Exceeded | None:
        text, pos, depth, dots = self.text, 0, 0, 0
        while True:
            match = _SPECIAL.search(text, pos)
            stop = match.start() if match else len(text)
            dots += text.count(".", pos, stop)
            if dots >= MAX_KEY_PARTS:
                return Exceeded(f"a key or table header has more than {MAX_KEY_PARTS} "
                                "dotted parts", "no config file needs that many: shorten it",
                                self.line(stop))
            if match is None:
                return None
            char, pos = match.group(), stop + 1
            if char in "[{":
                depth += 1
                if depth > MAX_NESTING:
                    return Exceeded(f"nested more than {MAX_NESTING} deep",
                                    "check the brackets", self.line(stop))
            elif char in "]}":
                depth = max(depth - 1, 0)
            elif char == "#":
                newline = text.find("\n", pos)
                pos = len(text) if newline < 0 else newline
                continue
            elif char in "\"'":
                end = self._string(stop, char)
                if end is None:
                    return None  # an unclosed multi-line string runs to the end
                pos = end
                continue  # a quoted part of a dotted key: dots go on counting
            dots = 0

    def _string(self, start: int, quote: str) -> int | None:
        """Where the string starting here ends (just past it)."""
        text = self.text
        if text.startswith(quote * 3, start):
            close = text.find(quote * 3, start + 3)
            while quote == '"' and close > 0 and _escaped(text, close):
                close = text.find(quote * 3, close + 1)
            if close < 0:
                return None
            close += 3
            while close < len(text) and text[close] == quote:  # up to 2 quotes more
                close += 1
            return close
        if quote == '"':
            match = _BASIC.match(text, start)
            return match.end() if match else start + 1
        close = text.find("'", start + 1)
        newline = text.find("\n", start + 1)
        if close < 0 or 0 <= newline < close:
            return start + 1  # unclosed: the parser will say so
        return close + 1


def _escaped(text: str, index: int) -> bool:
    slashes = 0
    while index - slashes - 1 >= 0 and text[index - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1
