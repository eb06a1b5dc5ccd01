"""pydantic's validation errors of a PBX file as problems at their TOML paths, with a hint:
the nearest known key for a typo, the rule for a position or order out of range, never a
secret's value."""

from __future__ import annotations

import difflib
import json
from functools import cache
from typing import Annotated, Any, NotRequired, get_args, get_origin, get_type_hints

from pydantic_core import ErrorDetails

from mtctl.domain.problems import KeyPath, Problem
from mtctl.formats.pbx_file.schema import EXTENSION_PATTERN, ConfigFile

SECRET_KEYS = {"ha1", "ha1_sha256", "password", "sip_password", "key", "keys", "secret",
               "token", "token_hash", "key_expires_at", "sip_auth_user"}
RULE_OF_FIELD = {"position": ("MT002", "choose a position from 0 to 7"),
                 "order": ("MT004", "use an order of 0 (never rings) or more")}


def one_branch(error: ErrorDetails, raw: dict[str, Any]) -> ErrorDetails | None:
    """`nodes` is a list of names or a table of nodes: keep only the errors of the form the
    file uses (a table's when it wrote a table, else the list's), at the file's own path."""
    loc = error["loc"]
    if len(loc) < 2 or loc[0] != "nodes" or not str(loc[1]).startswith(("list[", "dict[")):
        return error
    wanted = "dict[" if isinstance(raw.get("nodes"), dict) else "list["
    if not str(loc[1]).startswith(wanted):
        return None
    return {**error, "loc": (loc[0], *loc[2:])}


def schema_problem(error: ErrorDetails) -> Problem:
    """A pydantic error as a problem at its TOML path."""
    loc: KeyPath = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
    last = loc[-1] if loc else ""
    rule, hint = None, ""
    if kind == "missing":
        message, hint = "required key is missing", f"add {last} = ..."
    elif kind == "extra_forbidden":
        message, hint = _unknown_key(loc)
    elif kind == "string_pattern_mismatch" and error.get("ctx", {}).get(
            "pattern") == EXTENSION_PATTERN:
        rule, message = "MT014", f"{_describe(value)} is not a valid extension number"
        hint = "use digits only, e.g. \"40710\" (quoted: numbers may start with 0)"
    elif kind == "string_pattern_mismatch":
        message, hint = "contains a control character", "remove tabs, newlines and the like"
    else:
        message = f"{_lower(error['msg'])}, not {_describe(value)}"
        hint = TYPE_HINTS.get(kind, "see schemas/mtctl-config.schema.json")
        if len(loc) >= 4 and loc[-3] == "phones" and last in RULE_OF_FIELD and kind in (
                "greater_than_equal", "less_than_equal"):
            rule, hint = RULE_OF_FIELD[str(last)]
    return Problem(loc, message, hint, rule)


TYPE_HINTS = {
    "int_type": "write a whole number, without quotes",
    "string_type": "write it in double quotes",
    "bool_type": "write true or false",
    "list_type": "write an array: [...]",
    "dict_type": "write a table",
    "typed_dict_type": "write a table",
    "literal_error": "use one of the values named",
    "greater_than_equal": "use a value in range",
    "less_than_equal": "use a value in range",
    "string_too_short": "write a name",
    "string_too_long": "shorten it",
}


def _unknown_key(loc: KeyPath) -> tuple[str, str]:
    key = str(loc[-1])
    if key in SECRET_KEYS:
        return ("keys and tokens never appear in config files",
                "drop it: mtctl generates secure phones' keys itself (MT011)")
    allowed = _allowed_keys(loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return "unknown key", f"did you mean {close[0]}?"
    return "unknown key", "known keys here: " + ", ".join(allowed)


def _allowed_keys(loc: KeyPath) -> list[str]:
    """The keys the type at this path accepts."""
    current: Any = ConfigFile
    for part in loc:
        current = _strip(current)
        if isinstance(part, int) and get_origin(current) is list:
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif isinstance(current, type) and hasattr(current, "__annotations__"):
            current = _hints(current).get(str(part))
        else:
            return []
    current = _strip(current)
    if isinstance(current, type) and hasattr(current, "__annotations__"):
        return list(_hints(current))
    return []


@cache
def _hints(hint: Any) -> dict[str, Any]:
    """A TypedDict's keys and types (typing evaluates them anew on every call: 2 ms)."""
    return get_type_hints(hint, include_extras=True)


def _strip(hint: Any) -> Any:
    while get_origin(hint) in (Annotated, NotRequired):
        hint = get_args(hint)[0]
    return hint


def _lower(text: str) -> str:
    text = text.replace("Input should be", "should be")
    return text[:1].lower() + text[1:]


def _describe(value: Any) -> str:
    """A TOML value as the file shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return "the string " + json.dumps(shown, ensure_ascii=False)
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"
