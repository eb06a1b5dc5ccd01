"""Call records, branches and registration events: read, explained, pruned."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from mtctl.domain.calls import CallBranch, CallRecord, Context, Explanation, explain, utc
from mtctl.domain.history import CREATES, ENDS, AuditRow, ring_target_in, sessions_in
from mtctl.domain.presence import live_presence
from mtctl.domain.registrations import PhoneRegistration, RegistrationEvent, registrations_at
from mtctl.domain.ringing import PhoneKey, RingPlan, all_phones, ring_plan
from mtctl.errors import NotFound
from mtctl.store.history import state_at
from mtctl.store.tables import (
    audit_log,
    call_branch,
    call_record,
    extension,
    phone,
    registration_event,
)

if TYPE_CHECKING:
    from mtctl.store.rows import AnyRow

MAX_POSITIONS = 8  # positions 0-7 (SPEC §1)
LIST_LIMIT = 1000  # calls a listing shows at most, newest first
PRUNE_BATCH = 5000  # rows per delete statement (and per transaction when the caller commits)


def _record(row: AnyRow, branches: tuple[CallBranch, ...] = ()) -> CallRecord:
    answered = next((b.phone for b in branches if b.answered), None)
    if answered is None and row.answered_by:
        answered = _phone_of_auth_user(row.answered_by)
    return CallRecord(call_id=row.call_id, node=row.node, caller=row.caller, called=row.called,
                      started_ms=row.started_ms, ended_ms=row.ended_ms, outcome=row.outcome,
                      answered_by=answered, final_code=row.final_code,
                      final_reason=row.final_reason, branches=branches)


def _phone_of_auth_user(auth_user: str) -> PhoneKey | None:
    """NUMBER-POSITION, the form every phone's SIP auth user starts with."""
    number, _, position = auth_user.partition("-")
    tail = position.split("-", 1)[0]
    return (number, int(tail)) if number.isdigit() and tail.isdigit() else None


def _branches(conn: Connection, call_id: str, node: str) -> tuple[CallBranch, ...]:
    rows = conn.execute(select(call_branch)
                        .where(call_branch.c.call_id == call_id, call_branch.c.node == node)
                        .order_by(call_branch.c.invited_ms, call_branch.c.id))
    return tuple(CallBranch(stage=r.stage, ring_order=r.ring_order, auth_user=r.auth_user,
                            extension=r.extension, position=r.position, contact=r.contact,
                            invited_ms=r.invited_ms, ended_ms=r.ended_ms,
                            final_code=r.final_code, final_reason=r.final_reason,
                            answered=bool(r.answered))
                 for r in rows)


def list_calls(conn: Connection, *, number: str | None = None, since_ms: int | None = None,
               limit: int = LIST_LIMIT) -> list[CallRecord]:
    """Calls, newest first, optionally to one number and since a time."""
    query = select(call_record).order_by(call_record.c.started_ms.desc(),
                                         call_record.c.id.desc()).limit(limit)
    if number is not None:
        query = query.where(call_record.c.called == number)
    if since_ms is not None:
        query = query.where(call_record.c.started_ms >= since_ms)
    rows = conn.execute(query).all()
    answered: dict[tuple[str, str], PhoneKey] = {}
    ids = [r.call_id for r in rows if r.outcome == "answered"]
    if ids:
        for b in conn.execute(select(call_branch.c.call_id, call_branch.c.node,
                                     call_branch.c.extension, call_branch.c.position)
                              .where(call_branch.c.call_id.in_(ids), call_branch.c.answered)):
            answered[(b.call_id, b.node)] = (b.extension, b.position)
    found = []
    for row in rows:
        record = _record(row)
        key = (row.call_id, row.node)
        if key in answered:
            record = dataclasses.replace(record, answered_by=answered[key])
        found.append(record)
    return found


def get_call(conn: Connection, call_id: str) -> CallRecord:
    """One call with its branches; a call relayed between nodes is shown from the node that
    rang it (the record with the most branches)."""
    rows = conn.execute(select(call_record).where(call_record.c.call_id == call_id)
                        .order_by(call_record.c.started_ms, call_record.c.id)).all()
    if not rows:
        raise NotFound(f"no call with id {call_id!r}", "see: mtctl calls list")
    records = [_record(row, _branches(conn, row.call_id, row.node)) for row in rows]
    return max(records, key=lambda r: len(r.branches))


def plan_at(conn: Connection, number: str, at_ms: int
            ) -> tuple[RingPlan | None, dict[PhoneKey, PhoneRegistration], dict[str, str]]:
    """What SPEC §3 planned for NUMBER at AT_MS: the store then (from the audit trail), the
    registrations then (from the registration events) and the Web Call sessions then."""
    state = state_at(conn, utc(at_ms))
    target = ring_target_in(state, number)
    if target is None:
        return None, {}, {}
    sessions = sessions_in(state)
    keys = [(p.extension, p.position) for p in target.extension.phones]
    for ext in target.webcall_extensions.values():
        keys += [(p.extension, p.position) for p in ext.phones]
    registrations = registrations_of(conn, keys, at_ms)
    online = {key for key, reg in registrations.items() if reg.registered}
    user_sessions = ({target.user.username: sessions[target.user.username]}
                     if target.user is not None and target.user.username in sessions else {})
    plan = ring_plan(target, live_presence(target, online, user_sessions))
    return plan, registrations, user_sessions


def registrations_of(conn: Connection, keys: list[PhoneKey], at_ms: int
                     ) -> dict[PhoneKey, PhoneRegistration]:
    """These phones' registrations at AT_MS, from the registration events up to then."""
    auth = _auth_users(conn, keys, at_ms)
    if not auth:
        return {}
    rows = conn.execute(select(registration_event)
                        .where(registration_event.c.auth_user.in_(list(auth)),
                               registration_event.c.at_ms <= at_ms))
    events = [RegistrationEvent(id=r.id, at_ms=r.at_ms, event=r.event, auth_user=r.auth_user,
                                contact=r.contact, user_agent=r.user_agent, expires=r.expires,
                                node=r.node) for r in rows]
    return {auth[user]: reg for user, reg in registrations_at(events, at_ms).items()}


def _auth_users(conn: Connection, keys: list[PhoneKey], at_ms: int) -> dict[str, PhoneKey]:
    """SIP auth user -> the phone (KEYS) that held it at AT_MS. An auth user stays with its
    phone for life, and the phone may since have moved (`phone set --position`), been removed,
    or left its position to a phone added later: the audit rows after AT_MS are undone, newest
    first. A phone gone since then is taken to be NUMBER-POSITION."""
    numbers = sorted({number for number, _ in keys})
    held: dict[PhoneKey, str] = {}
    if numbers:
        held = {(number, position): auth_user for number, position, auth_user in conn.execute(
            select(extension.c.number, phone.c.position, phone.c.sip_auth_user)
            .join(extension, extension.c.id == phone.c.extension_id)
            .where(extension.c.number.in_(numbers)))}
        objects = [f"phone {n}:{p}" for n in numbers for p in range(MAX_POSITIONS)]
        for row in conn.execute(select(audit_log.c.action, audit_log.c.object,
                                       audit_log.c.changes)
                                .where(audit_log.c.object.in_(objects),
                                       audit_log.c.at > utc(at_ms))
                                .order_by(audit_log.c.id.desc())):
            number, _, position = row.object.removeprefix("phone ").rpartition(":")
            key = (number, int(position))
            moved = (row.changes or {}).get("position")
            if row.action in CREATES | ENDS:
                held.pop(key, None)
            elif isinstance(moved, list) and len(moved) == 2 and (number, moved[1]) in held:
                held[key] = held.pop((number, moved[1]))
    wanted = set(keys)
    found = {auth_user: key for key, auth_user in held.items() if key in wanted}
    for number, position in wanted - set(found.values()):
        found.setdefault(f"{number}-{position}", (number, position))
    return found


def _audit_before(conn: Connection, objects: list[str], at_ms: int
                  ) -> dict[str, list[AuditRow]]:
    when = utc(at_ms)
    found: dict[str, list[AuditRow]] = defaultdict(list)
    if not objects:
        return found
    for row in conn.execute(select(audit_log)
                            .where(audit_log.c.object.in_(objects), audit_log.c.at <= when)
                            .order_by(audit_log.c.id)):
        found[row.object].append(AuditRow(
            id=row.id, at=_iso(row.at), actor=row.actor,
            action=row.action, object=row.object, changes=row.changes or {}))
    return found


def _iso(at: datetime) -> str:
    return at.replace(tzinfo=at.tzinfo or UTC).isoformat(timespec="seconds")


def explain_call(conn: Connection, call_id: str) -> Explanation:
    """The call next to what SPEC §3 planned at its start, phone by phone."""
    call = get_call(conn, call_id)
    plan, registrations, sessions = plan_at(conn, call.called, call.started_ms)
    objects = []
    if plan is not None:
        objects = [f"phone {p.extension}:{p.position}" for p in all_phones(plan)]
        if plan.user is not None:
            objects.append(f"webcall {plan.user}")
    context = Context(registrations=registrations,
                      audit=_audit_before(conn, objects, call.started_ms), sessions=sessions)
    return explain(call, plan, context)


def prune_calls(conn: Connection, *, before_ms: int, batch: int = PRUNE_BATCH) -> int:
    """Delete at most BATCH calls, BATCH branches and BATCH registration events older than
    BEFORE_MS; the number of rows deleted (0: nothing is left to prune)."""
    deleted = 0
    for table, column in ((call_record, call_record.c.started_ms),
                          (call_branch, call_branch.c.invited_ms),
                          (registration_event, registration_event.c.at_ms)):
        ids = conn.execute(select(table.c.id).where(column < before_ms)
                           .order_by(table.c.id).limit(batch)).scalars().all()
        if ids:
            deleted += conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
    return deleted
