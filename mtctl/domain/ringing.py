"""Who rings (SPEC §3): one pure function for ring-sim, check and every PBX export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import groupby

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec

# Reasons a candidate phone does not ring, in the order they are tested.
ORDER_ZERO = "order-zero"
DISABLED = "disabled"
WEBCALL_NOT_RUNNING = "webcall-not-running"
NOT_REGISTERED = "not-registered"
EXCLUSIVE_WEBCALL_ACTIVE = "exclusive-webcall-active"

REASON_TEXT = {
    ORDER_ZERO: "order 0 — never rings",
    DISABLED: "disabled",
    WEBCALL_NOT_RUNNING: "Web Call is not running",
    NOT_REGISTERED: "not registered",
    EXCLUSIVE_WEBCALL_ACTIVE: "Web Call is running in exclusive mode, so only it rings",
}


@dataclass(frozen=True, slots=True)
class Presence:
    """What is online: by default every phone is registered and Web Call is not running."""

    webcall_running: bool = False
    webcall_extension: str | None = None
    offline: frozenset[tuple[str, int]] = frozenset()

    def registered(self, phone: PhoneSpec) -> bool:
        return (phone.extension, phone.position) not in self.offline


@dataclass(frozen=True, slots=True)
class RingTarget:
    """The called number resolved to its extension and (maybe) its user."""

    number: str
    extension: ExtensionSpec
    user: UserSpec | None = None
    # Web Call extensions the user names (individually or through the group), by number.
    webcall_extensions: Mapping[str, ExtensionSpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stage:
    order: int
    ring_seconds: int
    phones: tuple[PhoneSpec, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    phone: PhoneSpec
    reason: str


@dataclass(frozen=True, slots=True)
class RingPlan:
    number: str
    user: str | None
    mode: str | None
    webcall_running: bool
    display_name: str
    stages: tuple[Stage, ...]
    skipped: tuple[Skipped, ...]

    @property
    def outcome(self) -> str:
        return "rings" if self.stages else "silent"

    def as_dict(self) -> dict:
        """The JSON shape of SPEC §7."""
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


def _key(phone: PhoneSpec) -> tuple[str, int]:
    return (phone.extension, phone.position)


def chosen_webcall_extension(target: RingTarget, presence: Presence) -> str | None:
    """The Web Call extension an exclusive user is logged into: the one asked for, else the first."""
    user = target.user
    if user is None:
        return None
    if presence.webcall_extension is not None:
        return presence.webcall_extension
    numbers = user.all_webcall_extensions
    return numbers[0] if numbers else None


def ring_plan(target: RingTarget, presence: Presence = Presence()) -> RingPlan:
    """Decide which phones ring, in which stages, and why each other candidate does not."""
    user = target.user
    mode = user.webcall_mode if user else None
    running = presence.webcall_running
    candidates: list[PhoneSpec] = []
    skipped: list[Skipped] = []

    if mode == "exclusive" and user is not None and running:
        chosen = chosen_webcall_extension(target, presence)
        skipped += [Skipped(p, EXCLUSIVE_WEBCALL_ACTIVE) for p in target.extension.phones]
        for number in user.webcall_extensions:
            ext = target.webcall_extensions.get(number)
            if ext is None or number == chosen:
                continue
            skipped += [Skipped(p, WEBCALL_NOT_RUNNING) for p in ext.phones if p.is_webcall]
        chosen_ext = target.webcall_extensions.get(chosen) if chosen else None
        if chosen_ext is not None:
            candidates += [p for p in chosen_ext.phones if p.is_webcall]
    else:
        candidates += target.extension.phones
        if mode == "exclusive" and user is not None:
            for number in user.webcall_extensions:
                ext = target.webcall_extensions.get(number)
                if ext is not None and number != target.extension.number:
                    skipped += [Skipped(p, WEBCALL_NOT_RUNNING)
                                for p in ext.phones if p.is_webcall]

    ringing: list[PhoneSpec] = []
    for phone in candidates:
        reason = _skip_reason(phone, presence)
        if reason is None:
            ringing.append(phone)
        else:
            skipped.append(Skipped(phone, reason))

    ringing.sort(key=lambda p: (p.order, p.extension, p.position))
    seconds = target.extension.ring_timeout
    stages = tuple(
        Stage(order, seconds, tuple(phones))
        for order, phones in groupby(ringing, key=lambda p: p.order)
    )
    skipped.sort(key=lambda s: _key(s.phone))
    return RingPlan(
        number=target.number,
        user=user.username if user else None,
        mode=mode,
        webcall_running=running,
        display_name=_display_name(target, mode, running),
        stages=stages,
        skipped=tuple(skipped),
    )


def _skip_reason(phone: PhoneSpec, presence: Presence) -> str | None:
    if phone.order == 0:
        return ORDER_ZERO
    if not phone.enabled:
        return DISABLED
    if phone.is_webcall and not presence.webcall_running:
        return WEBCALL_NOT_RUNNING
    if not presence.registered(phone):
        return NOT_REGISTERED
    return None


def _display_name(target: RingTarget, mode: str | None, running: bool) -> str:
    user = target.user
    if user is not None and (mode == "exclusive" or (mode == "multiterminal" and running)):
        return user.display_name
    return target.extension.shown_name


def can_ever_ring(extension: ExtensionSpec) -> bool:
    """False when no phone of the extension can ring whatever is online (check's warning)."""
    plan = ring_plan(RingTarget(extension.number, extension), Presence(webcall_running=True))
    return bool(plan.stages)


def all_phones(plan: RingPlan) -> Iterable[PhoneSpec]:
    """Every phone the plan mentions, ringing or skipped."""
    for stage in plan.stages:
        yield from stage.phones
    for skip in plan.skipped:
        yield skip.phone
