"""Bounds for every value a user gives: numbers read from text, and text without control
characters. Pure: the CLI, the store and the config file all ask these functions."""

from __future__ import annotations

import re

from mtctl.errors import UsageError

# What a terminal or a log line would act on: C0 controls (newline, tab, ESC...), DEL, C1
# controls, the Unicode line and paragraph separators (a line break to many readers) and the
# bidirectional overrides and isolates (they reorder what is shown). A regex character class,
# written so that Python, JSON Schema (ECMA) and PostgreSQL read it alike.
CONTROL_CLASS = r"\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069"
# Lone surrogates too: that is how Python holds argv bytes that were not UTF-8.
CONTROL = re.compile(f"[{CONTROL_CLASS}\ud800-\udfff]")
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL",
          "\x1b": "an escape (ESC)", "\x7f": "a delete (DEL)",
          "\u2028": "a line separator (U+2028)", "\u2029": "a paragraph separator (U+2029)"}
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def control_character(value: str) -> str | None:
    """How to name the first control character of value (or a byte that was not UTF-8, as
    Python keeps them from argv), or None when it has none."""
    found = CONTROL.search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return "bytes that are not UTF-8"
    return _NAMES.get(char, f"the control character U+{ord(char):04X}")


def check_text(what: str, value: str) -> None:
    """Refuse a text value holding control characters (exit 2), naming the field."""
    found = control_character(value)
    if found is not None:
        raise UsageError(f"{escape(what)} contains {found}",
                         "use printable UTF-8 text: no newlines, tabs or escape sequences")


def escape(value: str) -> str:
    """value with its control characters made visible (\\n, \\x1b), safe to print on a terminal."""
    if CONTROL.search(value) is None:
        return value
    return CONTROL.sub(_escaped, value)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if "\udc80" <= char <= "\udcff":  # a byte that was not UTF-8: show the byte
        return f"\\x{ord(char) - 0xDC00:02x}"
    if "\ud800" <= char <= "\udfff":
        return f"\\u{ord(char):04x}"
    if char in _ESCAPES:
        return _ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def parse_int(text: str, *, what: str, low: int, high: int, hint: str | None = None) -> int:
    """A whole number written in ASCII digits (an optional leading '-'), low ≤ n ≤ high.

    `int()` alone would take Arabic-Indic digits, and `str.isdigit()` superscripts (which
    `int()` then refuses with a traceback); both are refused here, and so are numbers past
    the range without ever building them.
    """
    raw = text.strip()
    digits = raw[1:] if raw.startswith("-") else raw
    fix = hint or f"use a whole number from {low} to {high}"
    if not digits or not digits.isascii() or not digits.isdigit():
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise UsageError(f"{what} '{escape(shown)}' is not a whole number", fix)
    if len(digits.lstrip("0")) > len(str(max(abs(low), abs(high)))):
        raise UsageError(f"{what} {raw[:40]}{'…' if len(raw) > 40 else ''} is out of range",
                         fix)
    value = int(raw)
    if not low <= value <= high:
        raise UsageError(f"{what} {value} is out of range", fix)
    return value
