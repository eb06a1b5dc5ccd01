"""A problem of a declarative file: where it is (a key path, later its line), which rule,
what is wrong and how to fix it. Planning and the file's loader both report them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

KeyPath = tuple[str | int, ...]
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: KeyPath | None) -> str:
    """A TOML path as people write it: extensions."40710".phones[2].order."""
    if path is None:
        return "(store)"
    if not path:
        return "(file)"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            if len(part) > 64:  # a key past any name's length: enough of it to find it
                part = part[:40] + "…"
            piece = part if _BARE.match(part) else "".join(map(_printable, json.dumps(
                part, ensure_ascii=False)))
            text += f".{piece}" if text else piece
    return text


def _printable(char: str) -> str:
    """As TOML escapes it, when unprintable: a key's U+2028 would break an error line in two."""
    if char.isprintable():
        return char
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


@dataclass
class Problem:
    """One thing wrong with a file: where (TOML path and line), which rule, what, how to fix."""

    path: KeyPath | None  # None: an object of the store that the file does not name
    message: str
    hint: str = ""
    rule: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        return format_path(self.path)

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "line": self.line, "rule": self.rule,
                "message": self.message, "hint": self.hint}

    def text(self, source: str) -> str:
        """`FILE:LINE: PATH: RULE message — hint`, one line."""
        where = f"{source}:{self.line}" if self.line else source
        path = f" {self.location}:" if self.path != () else ""
        rule = f" {self.rule}" if self.rule else ""
        hint = f" — {self.hint}" if self.hint else ""
        return f"{where}:{path}{rule} {self.message}{hint}"
