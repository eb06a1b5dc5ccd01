"""The declarative config file of `mtctl apply` and `mtctl export`: a TOML format.

The pydantic types below are the loader and the source of schemas/mtctl-config.schema.json
(regenerate it with `python -m mtctl.formats.config_file > schemas/mtctl-config.schema.json`).
Only apply and export import this module: pydantic and the TOML libraries cost start-up time
that listings cannot afford.

Parsing: TOML 1.0 through toml-rs (Rust), about four times faster than the standard library's
tomllib on a 100,000-extension file. toml-rs has no recursion limit and no bound on dotted
keys, so the limits of `toml_limits` are checked first: a file over them is refused with
its line, before any parser sees it.
"""

from __future__ import annotations

import difflib
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal, NotRequired, get_args, get_origin, get_type_hints

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from mtctl.domain.config_keys import MAX_LIFETIME_DAYS
from mtctl.domain.problems import KeyPath, Problem, format_path
from mtctl.domain.values import CONTROL_CLASS
from mtctl.formats.toml_limits import (
    DEFAULT_MAX_BYTES,
    MAX_KEY_CHARS,
    check_text,
    has_long_lines,
    long_key,
)

SCHEMA_ID = "https://mtctl.example/schemas/mtctl-config.schema.json"
MAX_INT = 2**31 - 1  # the store's INTEGER columns
EXTENSION_PATTERN = r"^[0-9]{1,32}$"
NO_CONTROL_CHARACTERS = rf"^[^{CONTROL_CLASS}]*$"  # as mtctl/domain/values.py refuses

STRICT = ConfigDict(extra="forbid", strict=True)


def _name(max_length: int, what: str) -> Any:
    return Annotated[StrictStr, StringConstraints(min_length=1, max_length=max_length,
                                                  pattern=NO_CONTROL_CHARACTERS),
                     Field(description=what)]


NodeName = _name(64, "A node (PBX server) name.")
CategoryName = _name(64, "A calling category name.")
ModelName = _name(128, "A phone model name, as `mtctl model list` shows it.")
TemplateName = _name(64, "A template name.")
GroupName = _name(64, "A Web Call group name.")
Username = _name(64, "A username.")
DisplayName = _name(128, "A display name, shown to callers.")
Location = _name(128, "Where the phone is.")
Number = Annotated[StrictStr, StringConstraints(pattern=EXTENSION_PATTERN),
                   Field(description="An extension number: digits only (MT014), kept as a "
                                     "string because it may start with 0.")]
Position = Annotated[StrictInt, Field(ge=0, le=7, description="0–7, unique within the "
                                      "extension (MT002); Cisco phones at 0 (MT003).")]


def _default(value: Any, description: str) -> Any:
    return Field(description=description, json_schema_extra={"default": value})


@with_config(STRICT)
class Phone(TypedDict):
    """One phone, named by its extension and position. Omitted keys take the defaults."""

    position: Position
    model: ModelName
    order: NotRequired[Annotated[StrictInt, Field(ge=0, le=MAX_INT), _default(
        1, "Ring order: phones ring in stages by ascending order; 0 never rings (MT004).")]]
    enabled: NotRequired[Annotated[StrictBool, _default(True, "A disabled phone never rings.")]]
    template: NotRequired[Annotated[TemplateName, Field(description=(
        "Default: `webfon` for a Web Call model, else `default`."))]]
    category: NotRequired[Annotated[StrictStr, StringConstraints(
        max_length=64, pattern=NO_CONTROL_CHARACTERS), Field(description=(
            "Default: the template's category; \"\" for none."))]]
    location: NotRequired[Location]
    secure: NotRequired[Annotated[StrictBool, Field(description=(
        "A system-generated key with an expiry (MT011). Default: the template's `secure` "
        "(never for Web Call)."))]]
    publishable: NotRequired[Annotated[StrictBool, _default(
        False, "May register from the internet through the Flexisip edge; must be secure "
        "(MT005).")]]


@with_config(STRICT)
class Extension(TypedDict):
    """A dialable number with up to eight phones (MT001), keyed by its number."""

    node: NodeName
    name: NotRequired[Annotated[DisplayName, Field(description="Display name.")]]
    ring_timeout: NotRequired[Annotated[StrictInt, Field(ge=1, le=600), _default(
        20, "Seconds each stage rings.")]]
    phones: NotRequired[Annotated[list[Phone], Field(description=(
        "The extension's phones. Phones of the store not listed here stay, unless --prune."))]]


@with_config(STRICT)
class PhoneModel(TypedDict):
    """A catalog entry. The seeded models need not be listed."""

    kind: Literal["hardphone", "softphone", "app", "webcall"]
    vendor: NotRequired[Annotated[StrictStr, StringConstraints(
        max_length=64, pattern=NO_CONTROL_CHARACTERS), _default(
            "", "Vendor; a Cisco phone must be at position 0 (MT003).")]]
    qr: NotRequired[Annotated[StrictBool, _default(False, "QR-provisionable (MT015).")]]


@with_config(STRICT)
class Template(TypedDict, total=False):
    """A preset applied to phones. The seeded templates need not be listed."""

    for_webcall: Annotated[StrictBool, _default(False, "For Web Call phones (MT013).")]
    secure: Annotated[StrictBool, _default(False, "Phones made with it are secure.")]
    key_lifetime_days: Annotated[StrictInt, Field(ge=1, le=MAX_LIFETIME_DAYS, description=(
        "Key lifetime of its secure phones. Default: the keys.lifetime_days setting."))]
    category: Annotated[CategoryName, Field(description="Default category of its phones.")]


@with_config(STRICT)
class Group(TypedDict, total=False):
    """A Web Call group: a pool of Web Call extensions that users borrow."""

    extensions: Annotated[list[Number], _default([], "The pool, in order.")]


@with_config(STRICT)
class User(TypedDict):
    """A person, keyed by username; owner of the login extension (MT012)."""

    name: Annotated[DisplayName, Field(description="Display name.")]
    login: Annotated[Number, Field(description="Login extension; the user owns it (MT012).")]
    webcall_mode: NotRequired[Annotated[Literal["exclusive", "multiterminal"], Field(
        description="Omitted: no Web Call. exclusive (MT010) or multiterminal (MT009).")]]
    webcall_license: NotRequired[Annotated[Literal["dedicated", "pool"], Field(description=(
        "Default: dedicated. A pool user cannot be multiterminal (MT007)."))]]
    webcall_extensions: NotRequired[Annotated[list[Number], Field(description=(
        "Web Call extensions given one by one."))]]
    webcall_group: NotRequired[Annotated[GroupName, Field(description=(
        "Web Call group (pool) to borrow from."))]]
    webcall_position: NotRequired[Annotated[Position, Field(description=(
        "Multiterminal: position of the Web Call phone on the login extension."))]]


Host = Annotated[StrictStr, StringConstraints(max_length=253)]
SipUri = Annotated[StrictStr, StringConstraints(max_length=512)]


def _range(name: str) -> Any:
    """The range of a whole-number setting, from the one table `mtctl config` uses too."""
    from mtctl.domain.config_keys import SETTINGS

    return Field(ge=SETTINGS[name].low, le=SETTINGS[name].high)


@with_config(STRICT)
class SipSettings(TypedDict, total=False):
    domain: Annotated[Host, Field(description="SIP domain of the PBX; needed for keys.")]
    realm: Annotated[Host, Field(description="Digest realm (default: the domain).")]
    proxy: Annotated[SipUri, Field(description="Outbound proxy on the private network.")]


@with_config(STRICT)
class FlexisipSettings(TypedDict, total=False):
    proxy: Annotated[SipUri, Field(description="Flexisip edge for publishable phones.")]


@with_config(STRICT)
class ProvisioningSettings(TypedDict, total=False):
    base_url: Annotated[SipUri, Field(description="Base of provisioning URLs in QR codes.")]
    token_ttl_hours: Annotated[StrictInt, _range("provisioning.token_ttl_hours"), Field(
        description="Hours a token stays usable.")]


@with_config(STRICT)
class PortalSettings(TypedDict, total=False):
    base_url: Annotated[SipUri, Field(description="Base of the user portal's login links.")]
    link_ttl_minutes: Annotated[StrictInt, _range("portal.link_ttl_minutes"), Field(
        description="Minutes a login link stays usable.")]
    session_hours: Annotated[StrictInt, _range("portal.session_hours"), Field(
        description="Hours a portal session lasts.")]


@with_config(STRICT)
class KeysSettings(TypedDict, total=False):
    lifetime_days: Annotated[StrictInt, _range("keys.lifetime_days"), Field(
        description="Default key lifetime.")]
    rotate_within_days: Annotated[StrictInt, _range("keys.rotate_within_days"), Field(
        description="keys rotate's window; shorter than every key lifetime.")]
    grace_days: Annotated[StrictInt, _range("keys.grace_days"), Field(description=(
        "Days a rotated-out key stays valid (0: none)."))]


@with_config(STRICT)
class Settings(TypedDict, total=False):
    """Settings of `mtctl config`; written as `sip.domain = "..."` under [settings]."""

    sip: SipSettings
    flexisip: FlexisipSettings
    provisioning: ProvisioningSettings
    portal: PortalSettings
    keys: KeysSettings


@with_config(ConfigDict(extra="forbid", strict=True, title="mtctl config file"))
class ConfigFile(TypedDict, total=False):
    """What `mtctl apply` reads and `mtctl export` writes: everything but keys and tokens."""

    settings: Settings
    nodes: Annotated[list[NodeName], Field(description="PBX servers.")]
    categories: Annotated[list[CategoryName], Field(description="Calling categories.")]
    models: Annotated[dict[ModelName, PhoneModel], Field(description="Phone models by name.")]
    templates: Annotated[dict[TemplateName, Template], Field(description="Templates by name.")]
    groups: Annotated[dict[GroupName, Group], Field(description="Web Call groups by name.")]
    extensions: Annotated[dict[Number, Extension], Field(description="Extensions by number.")]
    users: Annotated[dict[Username, User], Field(description="Users by username.")]


SECTIONS = ("settings", "nodes", "categories", "models", "templates", "groups", "extensions",
            "users")
NAMED_SECTIONS = ("models", "templates", "groups", "extensions", "users")


@cache
def _adapter() -> TypeAdapter[ConfigFile]:
    return TypeAdapter(ConfigFile)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file, as checked in under schemas/."""
    schema = _adapter().json_schema()
    _closed(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema}


def _closed(node: Any) -> None:
    """pydantic writes constrained table names as patternProperties, which let any other
    name through; the loader refuses them, and so should the schema."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _closed(value)
    elif isinstance(node, list):
        for value in node:
            _closed(value)


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def setting_types() -> dict[str, type]:
    """Every setting the file can hold, flat (`sip.domain`), with its TOML type."""
    found: dict[str, type] = {}
    for group, hint in get_type_hints(Settings).items():
        for key, value in get_type_hints(hint, include_extras=True).items():
            base = get_args(value)[0] if get_origin(value) is Annotated else value
            found[f"{group}.{key}"] = int if base is int else str
    return found


# --- problems and where they are ---------------------------------------------------------

Path = KeyPath


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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Millions of small objects, none of them cyclic: the cycle collector only costs time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_config(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedConfig:
    """Parse and validate a config file; never raises for anything a file can contain, and
    refuses a file over the limits of `toml_limits` before parsing it."""
    with gc_paused():
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
        raw, problem = _load_toml(text)
        if problem is None and has_long_lines(text):
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
    adapter = _adapter()
    try:
        doc = adapter.validate_python(raw)
        parsed = ParsedConfig(text, doc)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        parsed = ParsedConfig(text, {}, [_schema_problem(e) for e in errors])
        parsed.broken = {_broken_entry(tuple(e["loc"]), raw) for e in errors}
        try:
            parsed.doc = adapter.validate_python(_without(raw, parsed.broken))
        except ValidationError:  # not expected: every failing entry was left out
            parsed.broken.add(("*", None))
        parsed.problems += _too_many_phones(raw, parsed.broken)
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


def _broken_entry(loc: Path, raw: dict[str, Any]) -> tuple[str, str | None]:
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


SECRET_KEYS = {"ha1", "ha1_sha256", "password", "sip_password", "key", "keys", "secret",
               "token", "token_hash", "key_expires_at", "sip_auth_user"}
RULE_OF_FIELD = {"position": ("MT002", "choose a position from 0 to 7"),
                 "order": ("MT004", "use an order of 0 (never rings) or more")}


def _schema_problem(error: dict[str, Any]) -> Problem:
    """A pydantic error as a problem at its TOML path."""
    loc: Path = tuple(error["loc"])
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


def _unknown_key(loc: Path) -> tuple[str, str]:
    key = str(loc[-1])
    if key in SECRET_KEYS:
        return ("keys and tokens never appear in config files",
                "drop it: mtctl generates secure phones' keys itself (MT011)")
    allowed = _allowed_keys(loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return "unknown key", f"did you mean {close[0]}?"
    return "unknown key", "known keys here: " + ", ".join(allowed)


def _allowed_keys(loc: Path) -> list[str]:
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


def _twice(items: list[str], path: Path, what: str) -> list[Problem]:
    seen: set[str] = set()
    found = []
    for index, item in enumerate(items):
        if item in seen:
            found.append(Problem((*path, index), f"lists {what} {item!r} twice",
                                 "list each once"))
        seen.add(item)
    return found


def to_toml(doc: dict[str, Any]) -> str:
    """The file text of a document; export's canonical form."""
    import tomli_w

    return tomli_w.dumps(doc)


def add_lines(problems: list[Problem], text: str) -> list[Problem]:
    """Give each problem the line of its path (or of its nearest enclosing path)."""
    from mtctl.formats.toml_locator import Locator

    locator = Locator(text) if text else None
    for problem in problems:
        if problem.line is None and locator is not None and problem.path is not None:
            problem.line = locator.line_of(problem.path)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))  # in file order
    return problems


def main() -> None:
    """Print the JSON Schema (redirect it to schemas/mtctl-config.schema.json)."""
    import sys

    sys.stdout.write(schema_text())


if __name__ == "__main__":
    main()
