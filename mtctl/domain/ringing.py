"""Who rings (SPEC §3): one pure function for ring-sim, check and every PBX export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import field
from itertools import groupby
from operator import attrgetter
from typing import Any

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec, read_only

# Reasons a candidate phone does not ring. The filter (SPEC §3 step 3) tests the first four in
# this order; the Web Call mode (step 2) gives the others directly.
ORDER_ZERO = "order-zero"
DISABLED = "disabled"
WEBCALL_NOT_RUNNING = "webcall-not-running"
NOT_REGISTERED = "not-registered"
EXCLUSIVE_WEBCALL_ACTIVE = "exclusive-webcall-active"
REASONS = (ORDER_ZERO, DISABLED, WEBCALL_NOT_RUNNING, NOT_REGISTERED, EXCLUSIVE_WEBCALL_ACTIVE)

PhoneKey = tuple[str, int]


@read_only
class Presence:
    """What is online: by default every phone is registered and Web Call is not running.

    `sessions` are the Web Call sessions (username -> extension) the store records; while an
    exclusive user's Web Call runs without a named extension, it runs on the session's.
    """

    webcall_running: bool = False
    webcall_extension: str | None = None
    offline: frozenset[PhoneKey] = frozenset()
    sessions: Mapping[str, str] = field(default_factory=dict, hash=False)

    def registered(self, phone: PhoneSpec) -> bool:
        return _key(phone) not in self.offline


@read_only
class RingTarget:
    """The called number resolved to its extension and (maybe) its user."""

    number: str
    extension: ExtensionSpec
    user: UserSpec | None = None
    # Web Call extensions the user names (individually or through the group), by number.
    webcall_extensions: Mapping[str, ExtensionSpec] = field(default_factory=dict)


@read_only
class Stage:
    order: int
    ring_seconds: int
    phones: tuple[PhoneSpec, ...]


@read_only
class Skipped:
    phone: PhoneSpec
    reason: str


@read_only
class RingPlan:
    """Who rings for one call: stages in ringing order, and every other candidate with why."""

    number: str
    user: str | None
    mode: str | None
    webcall_running: bool
    display_name: str
    stages: tuple[Stage, ...]
    skipped: tuple[Skipped, ...]
    # The Web Call extension an exclusive user is logged into while Web Call runs, else None.
    webcall_extension: str | None = None

    @property
    def outcome(self) -> str:
        return "rings" if self.stages else "silent"

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of SPEC §7 (schemas/ring-sim.schema.json)."""
        return {
            "number": self.number,
            "user": self.user,
            "mode": self.mode,
            "webcall_running": self.webcall_running,
            "display_name": self.display_name,
            "outcome": self.outcome,
            "stages": [
                {"order": s.order, "ring_seconds": s.ring_seconds,
                 "phones": [{"extension": p.extension, "position": p.position,
                             "model": p.model} for p in s.phones]}
                for s in self.stages
            ],
            "skipped": [
                {"extension": s.phone.extension, "position": s.phone.position,
                 "reason": s.reason}
                for s in self.skipped
            ],
        }


def _key(phone: PhoneSpec) -> PhoneKey:
    return (phone.extension, phone.position)


def chosen_webcall_extension(target: RingTarget, presence: Presence) -> str | None:
    """The Web Call extension an exclusive user is logged into: the one named, else the
    extension of the user's session (when it is one of the user's), else the first that no
    other user's session holds (where `webcall start` would log in), else the first."""
    user = target.user
    if user is None:
        return None
    if presence.webcall_extension is not None:
        return presence.webcall_extension
    numbers = user.all_webcall_extensions
    session = presence.sessions.get(user.username)
    if session in numbers:
        return session
    held = _held_by_others(user.username, presence)
    free = [number for number in numbers if number not in held] or list(numbers)
    return free[0] if free else None


def webcall_taken_by(target: RingTarget, presence: Presence) -> tuple[str, str] | None:
    """(extension, username) when the exclusive user's Web Call would run on an extension
    another user's session holds: a call there would ring that user's browser."""
    user = target.user
    if user is None or user.webcall_mode != "exclusive" or not presence.webcall_running:
        return None
    number = chosen_webcall_extension(target, presence)
    holder = _held_by_others(user.username, presence).get(number) if number else None
    return (number, holder) if number and holder else None


def _held_by_others(username: str, presence: Presence) -> dict[str, str]:
    """extension -> username of every session of another user."""
    return {number: other for other, number in presence.sessions.items() if other != username}


DEFAULT_PRESENCE = Presence()  # every phone registered, Web Call not running


def ring_plan(target: RingTarget, presence: Presence = DEFAULT_PRESENCE) -> RingPlan:
    """Decide which phones ring, in which stages, and why each other candidate does not.

    Every phone the plan mentions appears exactly once, ringing or skipped, and the result does
    not depend on the order of the phones in the input. Stages ring for the called extension's
    ring timeout.
    """
    user = target.user
    mode = user.webcall_mode if user else None
    running = presence.webcall_running
    logged_into = None
    if mode == "exclusive" and running and user is not None:
        logged_into = chosen_webcall_extension(target, presence)
        chosen = target.webcall_extensions.get(logged_into) if logged_into else None
        candidates = (_by_key(p for p in chosen.phones if p.is_webcall)
                      if chosen is not None else {})
        listed = _listed(candidates, [(target.extension.phones, EXCLUSIVE_WEBCALL_ACTIVE),
                                      (_own_webcall_phones(target), WEBCALL_NOT_RUNNING)])
    elif mode == "exclusive":
        candidates = _by_key(target.extension.phones)
        listed = _listed(candidates, [(_own_webcall_phones(target), WEBCALL_NOT_RUNNING)])
    else:
        candidates = _by_key(target.extension.phones)
        listed = {}

    ringing: list[PhoneSpec] = []
    skipped = list(listed.values())
    for phone in candidates.values():
        reason = _skip_reason(phone, presence)
        if reason is None:
            ringing.append(phone)
        else:
            skipped.append(Skipped(phone, reason))

    ringing.sort(key=_RING_ORDER)
    seconds = target.extension.ring_timeout
    stages = tuple([
        Stage(order, seconds, tuple(phones))
        for order, phones in groupby(ringing, key=_ORDER)
    ])
    if len(skipped) > 1:
        skipped.sort(key=_SKIPPED_ORDER)
    return RingPlan(
        number=target.number,
        user=user.username if user else None,
        mode=mode,
        webcall_running=running,
        display_name=_display_name(target, mode, running),
        stages=stages,
        skipped=tuple(skipped),
        webcall_extension=logged_into,
    )


# Stages in ascending order, each phone by extension and position; skipped phones likewise.
_ORDER = attrgetter("order")
_RING_ORDER = attrgetter("order", "extension", "position")
_SKIPPED_ORDER = attrgetter("phone.extension", "phone.position")


def _by_key(phones: Iterable[PhoneSpec]) -> dict[PhoneKey, PhoneSpec]:
    return {(phone.extension, phone.position): phone for phone in phones}


def _listed(candidates: Mapping[PhoneKey, PhoneSpec],
            lists: Iterable[tuple[Iterable[PhoneSpec], str]]) -> dict[PhoneKey, Skipped]:
    """The phones the Web Call mode skips (SPEC §3 step 2), before the filter: each list's
    phones for its reason. The first listing wins, and a candidate is never also listed
    (both only happen when MT010 breaks)."""
    listed: dict[PhoneKey, Skipped] = {}
    for phones, reason in lists:
        for phone in phones:
            key = (phone.extension, phone.position)
            if key not in candidates and key not in listed:
                listed[key] = Skipped(phone, reason)
    return listed


def _own_webcall_phones(target: RingTarget) -> list[PhoneSpec]:
    """Web Call phones of the user's individually assigned Web Call extensions (not the pool's)."""
    user = target.user
    numbers = dict.fromkeys(user.webcall_extensions) if user else {}
    phones = []
    for number in numbers:
        ext = target.webcall_extensions.get(number)
        if ext is not None:
            phones += [p for p in ext.phones if p.is_webcall]
    return phones


def _skip_reason(phone: PhoneSpec, presence: Presence) -> str | None:
    if phone.order == 0:
        return ORDER_ZERO
    if not phone.enabled:
        return DISABLED
    if phone.is_webcall and not presence.webcall_running:
        return WEBCALL_NOT_RUNNING
    if presence.offline and not presence.registered(phone):
        return NOT_REGISTERED
    return None


def _display_name(target: RingTarget, mode: str | None, running: bool) -> str:
    user = target.user
    if user is not None and (mode == "exclusive" or (mode == "multiterminal" and running)):
        return user.display_name
    return target.extension.shown_name


_EVERYTHING_ONLINE = Presence(webcall_running=True)


def can_ever_ring(extension: ExtensionSpec) -> bool:
    """False when no phone of the extension can ring whatever is online (check's warning)."""
    plan = ring_plan(RingTarget(extension.number, extension), _EVERYTHING_ONLINE)
    return bool(plan.stages)


def all_phones(plan: RingPlan) -> Iterable[PhoneSpec]:
    """Every phone the plan mentions, ringing or skipped."""
    for stage in plan.stages:
        yield from stage.phones
    for skip in plan.skipped:
        yield skip.phone
