"""The declarative PBX file's schema: the pydantic types `mtctl apply` validates a file with,
and the source of schemas/mtctl-config.schema.json (regenerate it with
`python -m mtctl.formats.pbx_file > schemas/mtctl-config.schema.json`).

Only apply and export import this module: pydantic costs start-up time that listings cannot
afford.
"""

from __future__ import annotations

import json
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
    with_config,
)
from typing_extensions import TypedDict

from mtctl.domain.config_keys import MAX_LIFETIME_DAYS
from mtctl.domain.values import CONTROL_CLASS

SCHEMA_ID = "https://mtctl.example/schemas/mtctl-config.schema.json"
MAX_INT = 2**31 - 1  # the store's INTEGER columns
EXTENSION_PATTERN = r"^[0-9]{1,32}$"
NO_CONTROL_CHARACTERS = rf"^[^{CONTROL_CLASS}]*$"  # as mtctl/domain/values.py refuses

STRICT = ConfigDict(extra="forbid", strict=True)


def _name(max_length: int) -> StringConstraints:
    """A name: one character or more, at most max_length, no control characters."""
    return StringConstraints(min_length=1, max_length=max_length, pattern=NO_CONTROL_CHARACTERS)


NodeName = Annotated[StrictStr, _name(64), Field(description="A node (PBX server) name.")]
CategoryName = Annotated[StrictStr, _name(64), Field(description="A calling category name.")]
ModelName = Annotated[StrictStr, _name(128), Field(
    description="A phone model name, as `mtctl model list` shows it.")]
TemplateName = Annotated[StrictStr, _name(64), Field(description="A template name.")]
GroupName = Annotated[StrictStr, _name(64), Field(description="A Web Call group name.")]
Username = Annotated[StrictStr, _name(64), Field(description="A username.")]
DisplayName = Annotated[StrictStr, _name(128), Field(
    description="A display name, shown to callers.")]
Location = Annotated[StrictStr, _name(128), Field(description="Where the phone is.")]
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
    mac: NotRequired[Annotated[StrictStr, StringConstraints(max_length=17), Field(description=(
        "A desk phone's MAC, in any usual spelling (00:1a:2b:3c:4d:5e, 00-1A-..., "
        "001a.2b3c.4d5e, 001a2b3c4d5e); unique."))]]


@with_config(STRICT)
class Node(TypedDict):
    """A node (PBX server) and where its Kamailio listens (SPEC §8)."""

    sip_address: NotRequired[Annotated[StrictStr, StringConstraints(max_length=261), Field(
            description="HOST:PORT (UDP) where the node's Kamailio listens, e.g. "
                        "\"192.0.2.10:5060\"; phones are provisioned with it. Omitted: none.")]]


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
    profile: NotRequired[Annotated[Literal["linphone", "cisco-mpp", "yealink"], Field(
        description="How its phones are provisioned: linphone (QR code), cisco-mpp or yealink "
                    "(desk phones by MAC from mtctl serve's /d/).")]]


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
    device_user: Annotated[StrictStr, StringConstraints(
        max_length=64, pattern=r"^[!-9;-~]+$"), Field(description=(
            "HTTP Basic user of desk phones fetching /d/ (the password is a secret: mtctl "
            "config set-secret provisioning.device_password)."))]
    resync_hours: Annotated[StrictInt, _range("provisioning.resync_hours"), Field(
        description="Hours between a desk phone's fetches of its file (each brings a new "
                    "key).")]


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
class CallsSettings(TypedDict, total=False):
    retention_days: Annotated[StrictInt, _range("calls.retention_days"), Field(description=(
        "Days call records and registration events are kept (mtctl calls prune)."))]


@with_config(STRICT)
class Settings(TypedDict, total=False):
    """Settings of `mtctl config`; written as `sip.domain = "..."` under [settings]."""

    sip: SipSettings
    flexisip: FlexisipSettings
    provisioning: ProvisioningSettings
    portal: PortalSettings
    keys: KeysSettings
    calls: CallsSettings


@with_config(ConfigDict(extra="forbid", strict=True, title="mtctl config file"))
class ConfigFile(TypedDict, total=False):
    """What `mtctl apply` reads and `mtctl export` writes: everything but keys and tokens."""

    settings: Settings
    nodes: Annotated[list[NodeName] | dict[NodeName, Node], Field(description=(
        "PBX servers: a list of names (their SIP addresses stay as they are), or a table of "
        "nodes with their SIP addresses."))]
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
def adapter() -> TypeAdapter[ConfigFile]:
    return TypeAdapter(ConfigFile)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file, as checked in under schemas/."""
    schema = adapter().json_schema()
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
