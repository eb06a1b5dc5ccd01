"""The store as it was at an earlier time, rebuilt from the audit trail (SPEC §10).

The state is what decides who rings, keyed by the audit trail's object names ("phone 40710:2",
"user ana", "webcall ana", ...), each a dict of the fields below. Every write audits these
fields with their values before and after ({field: [before, after]}), so the state at time T is
the current state with every later audit row undone, newest first. Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec
from mtctl.domain.plan import (
    EXTENSION_FIELDS,
    MODEL_FIELDS,
    PHONE_FIELDS,
    TEMPLATE_FIELDS,
    USER_FIELDS,
)
from mtctl.domain.ringing import RingTarget

# The kinds of object the state holds, and their fields.
TRACKED: dict[str, tuple[str, ...]] = {
    "extension": EXTENSION_FIELDS,
    "phone": PHONE_FIELDS,
    "user": USER_FIELDS,
    "group": ("extensions",),
    "model": MODEL_FIELDS,
    "template": TEMPLATE_FIELDS,
    "webcall": ("extension", "since"),
}
# Actions that bring an object into being, and actions that end it; every other action changes
# some of its fields.
CREATES = frozenset({"add", "start"})
ENDS = frozenset({"remove", "stop", "expire"})

State = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit row, as the reconstruction reads it."""

    id: int
    at: str  # ISO 8601, UTC
    actor: str
    action: str
    object: str
    changes: Mapping[str, Any]


def kind_of(obj: str) -> str | None:
    """The tracked kind of an audit object name ("phone 40710:2" -> "phone"), else None."""
    kind, _, name = obj.partition(" ")
    return kind if kind in TRACKED and name else None


def normalized(fields: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The tracked fields of one object, None (unset) left out, lists for sequences."""
    return {f: list(v) if isinstance(v, tuple) else v
            for f, v in fields.items() if f in TRACKED[kind] and v is not None}


def roll_back(current: State, later: Iterable[AuditRow]) -> State:
    """The state before the LATER rows (given in any order) were written."""
    state = copy.deepcopy(current)
    for row in sorted(later, key=lambda r: r.id, reverse=True):
        kind = kind_of(row.object)
        if kind is None:
            continue
        obj = row.object
        changes = row.changes or {}
        if row.action in CREATES:
            state.pop(obj, None)
            continue
        if row.action in ENDS:
            state[obj] = normalized({f: pair[0] for f, pair in _pairs(changes)}, kind)
            continue
        now = obj
        moved = changes.get("position") if kind == "phone" else None
        if moved is not None and _is_pair(moved):
            # the row names the phone by its old position; it is under its new one now
            now = f"{obj.rsplit(':', 1)[0]}:{moved[1]}"
        fields = dict(state.pop(now, {}))
        for field, (before, _after) in _pairs(changes):
            fields[field] = before
        state[obj] = normalized(fields, kind)
    return state


def _is_pair(value: Any) -> TypeGuard[Sequence[Any]]:
    return isinstance(value, list | tuple) and len(value) == 2


def _pairs(changes: Mapping[str, Any]) -> Iterable[tuple[str, tuple[Any, Any]]]:
    for field, pair in changes.items():
        if _is_pair(pair):
            yield field, (pair[0], pair[1])


def named(state: State, kind: str) -> dict[str, dict[str, Any]]:
    """The objects of one kind, by name."""
    prefix = kind + " "
    return {obj[len(prefix):]: fields for obj, fields in state.items()
            if obj.startswith(prefix)}


def sessions_in(state: State) -> dict[str, str]:
    """The Web Call sessions of the state: username -> extension."""
    return {user: fields["extension"] for user, fields in named(state, "webcall").items()
            if "extension" in fields}


def ring_target_in(state: State, number: str) -> RingTarget | None:
    """The called number resolved in STATE as ring_target() does in the store, else None."""
    extensions = named(state, "extension")
    if number not in extensions:
        return None
    users = named(state, "user")
    owner = next((name for name, u in sorted(users.items()) if u.get("login") == number), None)

    def spec(ext: str) -> ExtensionSpec | None:
        return _extension_spec(state, ext) if ext in extensions else None

    own = spec(number)
    assert own is not None
    if owner is None:
        return RingTarget(number=number, extension=own)
    user = _user_spec(state, owner)
    webcall = {n: s for n in user.all_webcall_extensions if (s := spec(n)) is not None}
    return RingTarget(number=number, extension=own, user=user, webcall_extensions=webcall)


def _extension_spec(state: State, number: str) -> ExtensionSpec:
    ext = state[f"extension {number}"]
    models = named(state, "model")
    templates = named(state, "template")
    phones = []
    for name, fields in named(state, "phone").items():
        ext_number, _, position = name.rpartition(":")
        if ext_number != number:
            continue
        model = models.get(fields.get("model", ""), {})
        template = templates.get(fields.get("template", ""), {})
        phones.append(PhoneSpec(
            extension=number, position=int(position), order=int(fields.get("order", 1)),
            model=fields.get("model", ""), kind=model.get("kind", "hardphone"),
            vendor=model.get("vendor", ""),
            qr_provisionable=bool(model.get("qr_provisionable", False)),
            enabled=bool(fields.get("enabled", True)),
            template=fields.get("template", "default"),
            template_for_webcall=bool(template.get("for_webcall", False)),
            secure=bool(fields.get("secure", False)),
            publishable=bool(fields.get("publishable", False)), node=ext.get("node"),
            location=fields.get("location"), category=fields.get("category")))
    return ExtensionSpec(number=number, node=ext.get("node", ""),
                         display_name=ext.get("display_name"),
                         ring_timeout=int(ext.get("ring_timeout", 20)),
                         phones=tuple(sorted(phones, key=lambda p: p.position)))


def _user_spec(state: State, username: str) -> UserSpec:
    user = state[f"user {username}"]
    group = user.get("webcall_group")
    members = named(state, "group").get(group, {}).get("extensions", []) if group else []
    return UserSpec(
        username=username, display_name=user.get("display_name", username),
        login=user.get("login"), webcall_mode=user.get("webcall_mode"),
        webcall_license=user.get("webcall_license"),
        webcall_extensions=tuple(user.get("webcall_extensions", ())), webcall_group=group,
        group_extensions=tuple(members), webcall_position=user.get("webcall_position"))
