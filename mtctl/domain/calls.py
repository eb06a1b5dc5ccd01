"""Real calls next to what SPEC §3 planned for them (`mtctl calls explain`). Pure: no I/O.

A call's plan is ring_plan() over the store as it was at the call's start (rebuilt from the audit
trail) and the registrations and Web Call sessions of that moment. Each phone the plan mentions
gets a verdict in plain words, the evidence behind it (audit row, registration event, response
code), and a divergence when what the proxy did differs from the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mtctl.domain.history import AuditRow
from mtctl.domain.registrations import EXPIRED, PhoneRegistration
from mtctl.domain.ringing import (
    DISABLED,
    EXCLUSIVE_WEBCALL_ACTIVE,
    NOT_REGISTERED,
    ORDER_ZERO,
    WEBCALL_NOT_RUNNING,
    PhoneKey,
    RingPlan,
)

OUTCOMES = ("answered", "no-answer", "busy", "cancelled", "failed", "silent")


@dataclass(frozen=True, slots=True)
class CallBranch:
    """One INVITE the proxy sent to one phone's contact."""

    stage: int
    ring_order: int
    auth_user: str
    extension: str
    position: int
    contact: str
    invited_ms: int
    ended_ms: int | None
    final_code: int | None
    final_reason: str | None
    answered: bool

    @property
    def phone(self) -> PhoneKey:
        return (self.extension, self.position)

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "order": self.ring_order, "extension": self.extension,
                "position": self.position, "auth_user": self.auth_user,
                "contact": self.contact, "invited_at": iso_ms(self.invited_ms),
                "ended_at": iso_ms(self.ended_ms), "final_code": self.final_code,
                "final_reason": self.final_reason, "answered": self.answered}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call the proxy routed."""

    call_id: str
    node: str
    caller: str
    called: str
    started_ms: int
    ended_ms: int | None
    outcome: str | None
    answered_by: PhoneKey | None
    final_code: int | None
    final_reason: str | None
    branches: tuple[CallBranch, ...] = ()

    @property
    def summary(self) -> str:
        """The outcome in words: "answered by 40710:0", "no answer", "ringing"."""
        if self.outcome is None:
            return "in progress"
        if self.outcome == "answered" and self.answered_by is not None:
            return f"answered by {self.answered_by[0]}:{self.answered_by[1]}"
        return self.outcome.replace("-", " ")

    def as_dict(self, *, branches: bool = False) -> dict[str, Any]:
        item: dict[str, Any] = {
            "call_id": self.call_id, "node": self.node, "caller": self.caller,
            "called": self.called, "started_at": iso_ms(self.started_ms),
            "ended_at": iso_ms(self.ended_ms), "outcome": self.outcome,
            "answered_by": (None if self.answered_by is None else
                            {"extension": self.answered_by[0],
                             "position": self.answered_by[1]}),
            "final_code": self.final_code, "final_reason": self.final_reason,
            "summary": self.summary,
        }
        if branches:
            item["branches"] = [b.as_dict() for b in self.branches]
        return item


def utc(ms: int) -> datetime:
    """Epoch milliseconds as a UTC time; one no date can hold (a store written by other means)
    reads as the nearest one that can, never an error."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return (datetime.max if ms > 0 else datetime.min).replace(tzinfo=UTC)


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds, None stays None."""
    if ms is None:
        return None
    return utc(ms).isoformat(timespec="milliseconds")


def clock(ms: int, call_ms: int) -> str:
    """A time for people: 09:10:05 UTC on the call's day, else 2026-11-28 09:10:05 UTC."""
    when = utc(ms)
    return when.strftime("%H:%M:%S UTC" if when.date() == utc(call_ms).date()
                         else "%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str  # audit | registration | response | session
    detail: str
    id: int | None = None
    at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "at": self.at, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class PhoneVerdict:
    extension: str
    position: int
    model: str
    planned: str  # "stage N" or a skip reason
    happened: str  # rang | answered | declined | no-answer | cancelled | not-sent | ...
    verdict: str
    evidence: tuple[Evidence, ...] = ()
    divergence: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"extension": self.extension, "position": self.position, "model": self.model,
                "planned": self.planned, "happened": self.happened, "verdict": self.verdict,
                "evidence": [e.as_dict() for e in self.evidence],
                "divergence": self.divergence}


@dataclass(frozen=True, slots=True)
class Explanation:
    call: CallRecord
    plan: RingPlan | None
    phones: tuple[PhoneVerdict, ...]
    divergences: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"call": self.call.as_dict(), "plan": self.plan.as_dict() if self.plan else None,
                "phones": [p.as_dict() for p in self.phones],
                "divergences": list(self.divergences), "notes": list(self.notes)}


@dataclass(frozen=True, slots=True)
class Context:
    """What the explanation may cite, gathered by the store for the call's time."""

    registrations: Mapping[PhoneKey, PhoneRegistration]
    # audit rows at or before the call's start, per audit object ("phone 40710:2", "webcall bea")
    audit: Mapping[str, Sequence[AuditRow]]
    sessions: Mapping[str, str]  # username -> extension at the call's start


def explain(call: CallRecord, plan: RingPlan | None, context: Context) -> Explanation:
    """Every phone the plan names, what happened to it, and why; divergences flagged."""
    if plan is None:
        gone = tuple(f"the proxy rang {b.extension}:{b.position} for a number the store did "
                     "not have" for b in call.branches)
        return Explanation(call, None, (), gone,
                           (f"{call.called} did not exist in the store at the call's time",))
    branches: dict[PhoneKey, list[CallBranch]] = {}
    for branch in call.branches:
        branches.setdefault(branch.phone, []).append(branch)
    reached = max((b.stage for b in call.branches), default=0)
    verdicts: list[PhoneVerdict] = []
    for number, stage in enumerate(plan.stages, start=1):
        for phone in stage.phones:
            key = (phone.extension, phone.position)
            verdicts.append(_ringing(key, phone.model, number, branches.pop(key, []), call,
                                     reached))
    for skip in plan.skipped:
        key = (skip.phone.extension, skip.phone.position)
        verdicts.append(_skipped(key, skip.phone.model, skip.reason, branches.pop(key, []),
                                 plan, context, call.started_ms))
    for key, extra in sorted(branches.items()):
        verdicts.append(PhoneVerdict(
            key[0], key[1], "", "not in the plan", _happened(extra[-1]),
            f"the proxy rang it ({_branch_words(extra[-1], call)}) though the plan does not "
            "name it", tuple(_response(b) for b in extra),
            divergence="rang a phone the plan does not name"))
    verdicts.sort(key=lambda v: (v.extension != call.called, v.extension, v.position))
    divergences = tuple(f"{v.extension}:{v.position}: {v.divergence}" for v in verdicts
                        if v.divergence)
    notes: tuple[str, ...] = ()
    if plan.webcall_extension:
        notes = (f"Web Call of {plan.user} was running on {plan.webcall_extension}",)
    return Explanation(call, plan, tuple(verdicts), divergences, notes)


def _happened(branch: CallBranch) -> str:
    if branch.answered:
        return "answered"
    code = branch.final_code
    if code is None:
        return "no-final-response"
    if code in (486, 600, 603):
        return "declined"
    if code in (408, 480):
        return "no-answer"
    if code == 487:
        return "cancelled"
    return "failed"


def _seconds(branch: CallBranch) -> str:
    if branch.ended_ms is None:
        return ""
    return f"{round((branch.ended_ms - branch.invited_ms) / 1000)} s"


def _branch_words(branch: CallBranch, call: CallRecord) -> str:
    happened = _happened(branch)
    code = f"{branch.final_code} {branch.final_reason or ''}".strip()
    if happened == "answered":
        return f"answered after {_seconds(branch)}"
    if happened == "declined":
        return f"declined {code}"
    if happened == "no-answer":
        return f"rang {_seconds(branch)}, no answer ({code})"
    if happened == "cancelled":
        if call.outcome == "answered":
            return f"rang {_seconds(branch)}, stopped when another phone answered"
        if call.outcome == "cancelled":
            return f"rang {_seconds(branch)}, the caller hung up"
        return f"rang {_seconds(branch)}, cancelled ({code})"
    if happened == "no-final-response":
        return "sent, no final response recorded"
    return f"failed {code}"


def _response(branch: CallBranch) -> Evidence:
    code = (f"{branch.final_code} {branch.final_reason or ''}".strip()
            if branch.final_code is not None else "no final response")
    return Evidence("response", f"{code} from {branch.contact or branch.auth_user}",
                    at=iso_ms(branch.ended_ms or branch.invited_ms))


def _ringing(key: PhoneKey, model: str, stage: int, sent: list[CallBranch], call: CallRecord,
             reached: int) -> PhoneVerdict:
    planned = f"stage {stage}"
    if not sent:
        if stage > reached and call.outcome in ("answered", "cancelled"):
            why = ("the call was answered before" if call.outcome == "answered"
                   else "the caller hung up before")
            return PhoneVerdict(key[0], key[1], model, planned, "not-reached",
                                f"would have rung in stage {stage}; {why} stage {stage}")
        if stage > reached and call.outcome is None:
            return PhoneVerdict(key[0], key[1], model, planned, "not-reached",
                                f"would ring in stage {stage}; the call had not reached it "
                                "when recorded")
        return PhoneVerdict(key[0], key[1], model, planned, "not-sent",
                            f"planned to ring in stage {stage}, but the proxy never rang it",
                            divergence=f"planned for stage {stage}, never rung")
    branch = sent[-1]
    words = _branch_words(branch, call)
    divergence = None
    if branch.stage != stage:
        divergence = f"planned for stage {stage}, rang in stage {branch.stage}"
    return PhoneVerdict(key[0], key[1], model, planned, _happened(branch),
                        f"rang in stage {branch.stage}, {words}",
                        tuple(_response(b) for b in sent), divergence)


def _skipped(key: PhoneKey, model: str, reason: str, sent: list[CallBranch], plan: RingPlan,
             context: Context, call_ms: int) -> PhoneVerdict:
    verdict, evidence = _reason_words(key, reason, plan, context, call_ms)
    if not sent:
        return PhoneVerdict(key[0], key[1], model, reason, "not-rung", verdict, evidence)
    return PhoneVerdict(key[0], key[1], model, reason, _happened(sent[-1]),
                        f"{verdict}, yet the proxy rang it in stage {sent[-1].stage}",
                        evidence + tuple(_response(b) for b in sent),
                        divergence=f"not planned to ring ({reason}), rang in stage "
                                   f"{sent[-1].stage}")


def _reason_words(key: PhoneKey, reason: str, plan: RingPlan, context: Context, call_ms: int
                  ) -> tuple[str, tuple[Evidence, ...]]:
    obj = f"phone {key[0]}:{key[1]}"
    rows = context.audit.get(obj, ())
    if reason == ORDER_ZERO:
        row = _last_set(rows, "order", lambda v: v == 0)
        return "order 0 (never rings)", _audit_evidence(row, "order 0")
    if reason == DISABLED:
        row = _last_set(rows, "enabled", lambda v: v is False)
        if row is None:
            return "disabled", ()
        at_ms = int(datetime.fromisoformat(row.at).timestamp() * 1000)
        return (f"disabled at {clock(at_ms, call_ms)} by {row.actor} (audit #{row.id})",
                _audit_evidence(row, "disabled"))
    if reason == NOT_REGISTERED:
        return _registration_words(key, context, call_ms)
    if reason == WEBCALL_NOT_RUNNING:
        return _webcall_words(key, plan, context, call_ms)
    if reason == EXCLUSIVE_WEBCALL_ACTIVE:
        return (f"{plan.user}'s Web Call was running on {plan.webcall_extension}: in exclusive "
                "mode only the Web Call rings", ())
    return reason, ()


def _registration_words(key: PhoneKey, context: Context, call_ms: int
                        ) -> tuple[str, tuple[Evidence, ...]]:
    found = context.registrations.get(key)
    if found is None or found.event is None:
        return "not registered (no registration recorded)", (
            Evidence("registration", "no registration event for this phone before the call"),)
    event = found.event
    since = found.since_ms
    how = EXPIRED if found.lapsed_ms is not None else event.event
    evidence = (Evidence("registration", f"{event.event} {event.contact}".strip()
                         + (f" ({event.user_agent})" if event.user_agent else "")
                         + (f", expires {iso_ms(event.expires * 1000)}"
                            if event.expires else ""),
                         id=event.id, at=iso_ms(event.at_ms)),)
    when = clock(since, call_ms) if since is not None else "?"
    return f"not registered since {when} ({how})", evidence


def _webcall_words(key: PhoneKey, plan: RingPlan, context: Context, call_ms: int
                   ) -> tuple[str, tuple[Evidence, ...]]:
    evidence: list[Evidence] = []
    user = plan.user if plan.mode == "exclusive" else None  # multiterminal: no session needed
    if user is not None:
        session = context.sessions.get(user)
        rows = context.audit.get(f"webcall {user}", ())
        last = rows[-1] if rows else None
        if last is not None:
            evidence.append(Evidence("audit", f"webcall {last.action} by {last.actor}",
                                     id=last.id, at=last.at))
        if session is None:
            evidence.append(Evidence("session", f"{user} had no Web Call session"))
        else:
            evidence.append(Evidence("session", f"{user}'s Web Call session was on {session}"))
    registration = context.registrations.get(key)
    if registration is None or not registration.registered:
        words, more = _registration_words(key, context, call_ms)
        evidence += more
        return f"Web Call not running: its phone was {words}", tuple(evidence)
    if user is not None and context.sessions.get(user) is None:
        return f"Web Call not running: {user} had no Web Call session", tuple(evidence)
    return "Web Call not running", tuple(evidence)


def _last_set(rows: Iterable[AuditRow], field_name: str, matches: Callable[[Any], bool]
              ) -> AuditRow | None:
    """The newest row that gave FIELD a value MATCHES accepts."""
    found = None
    for row in rows:
        pair = (row.changes or {}).get(field_name)
        if isinstance(pair, list | tuple) and len(pair) == 2 and matches(pair[1]):
            found = row
    return found


def _audit_evidence(row: AuditRow | None, what: str) -> tuple[Evidence, ...]:
    if row is None:
        return ()
    return (Evidence("audit", f"{what}: {row.action} by {row.actor}", id=row.id, at=row.at),)

