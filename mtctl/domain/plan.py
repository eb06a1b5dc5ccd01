"""What `mtctl apply` compares and decides, as plain values: the store read as names, and the
changes a config file asks for. Planning (domain/planning.py) makes these; writing
(store/apply_writer.py) carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtctl.domain.problems import Problem

# Each kind's values, in the order Change.values and State hold them.
PHONE_FIELDS = ("order", "enabled", "model", "template", "category", "location", "secure",
                "publishable", "mac")
# Where a stored phone (State.phones) holds its PHONE_FIELDS, then has_key and has_expiry.
PHONE_VALUES = slice(2, 2 + len(PHONE_FIELDS))
HAS_KEY, HAS_EXPIRY = 2 + len(PHONE_FIELDS), 3 + len(PHONE_FIELDS)
EXTENSION_FIELDS = ("node", "display_name", "ring_timeout")
USER_FIELDS = ("display_name", "login", "webcall_mode", "webcall_license",
               "webcall_extensions", "webcall_group", "webcall_position")
MODEL_FIELDS = ("vendor", "kind", "qr_provisionable", "profile")
TEMPLATE_FIELDS = ("for_webcall", "secure", "key_lifetime_days", "category")
FIELDS: dict[str, tuple[str, ...]] = {
    "config": ("value",), "node": ("sip_address",), "category": (), "model": MODEL_FIELDS,
    "template": TEMPLATE_FIELDS, "group": ("extensions",), "extension": EXTENSION_FIELDS,
    "phone": PHONE_FIELDS, "user": USER_FIELDS,
}

@dataclass
class State:
    """Everything apply compares with, keyed by name; phones by extension id and position."""

    settings: dict[str, str]
    ids: dict[str, dict[str, int]]  # kind → name → id, for node/category/model/template/group
    models: dict[str, tuple[Any, ...]]  # name → MODEL_FIELDS
    templates: dict[str, tuple[Any, ...]]  # name → TEMPLATE_FIELDS
    groups: dict[str, tuple[str, ...]]  # name → extension numbers in rank order
    # number → (id, node, display_name, ring_timeout)
    extensions: dict[str, tuple[Any, ...]]
    # extension id → position → (id, node, *PHONE_FIELDS, has_key, has_expiry)
    phones: dict[int, dict[int, tuple[Any, ...]]]
    # username → (id, *USER_FIELDS)
    users: dict[str, tuple[Any, ...]]
    # node name → its SIP address (None: none)
    node_addresses: dict[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class Change:
    """One object to add, change or remove."""

    action: str  # add | change | remove
    kind: str  # a key of FIELDS
    name: str  # phones: "EXT:POS"
    values: tuple[Any, ...] | None = None  # add: new values, remove: old ones (FIELDS order)
    diff: dict[str, list[Any]] | None = None  # change: {field: [before, after]}

    @property
    def object(self) -> str:
        return f"{self.kind} {self.name}"

    def fields(self) -> dict[str, Any]:
        """add/remove: {field: value}; change: {field: [before, after]}."""
        if self.action == "change":
            return dict(self.diff or {})
        return dict(zip(FIELDS[self.kind], self.values or (), strict=False))

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "object": self.object,
                "fields": {k: _plain(v) for k, v in self.fields().items()}}

    def audit_changes(self) -> dict[str, list[Any]]:
        if self.action == "change":
            return {k: [_plain(b), _plain(a)] for k, (b, a) in (self.diff or {}).items()}
        pairs = zip(FIELDS[self.kind], self.values or (), strict=False)
        if self.action == "add":
            return {k: [None, _plain(v)] for k, v in pairs}
        return {k: [_plain(v), None] for k, v in pairs}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts = {"add": 0, "change": 0, "remove": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts
