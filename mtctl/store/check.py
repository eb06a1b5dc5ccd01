"""`mtctl check`: every rule over the whole store, streamed in batches of extensions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mtctl.domain.ringing import can_ever_ring
from mtctl.domain.rules import Violation, extension_violations, key_warnings, user_violations
from mtctl.store.snapshots import extension_specs, user_specs
from mtctl.store.tables import app_user, extension
from mtctl.store.webcall import invalid_sessions

BATCH = 2_000


def _batches(conn: Connection, id_column) -> Iterator[list[int]]:  # type: ignore[no-untyped-def]
    last = 0
    while True:
        ids = conn.execute(select(id_column).where(id_column > last).order_by(id_column)
                           .limit(BATCH)).scalars().all()
        if not ids:
            return
        yield list(ids)
        last = ids[-1]


def check_store(conn: Connection, *, now: datetime,
                rotate_within: timedelta) -> Iterator[tuple[str, Violation]]:
    """Yield ("error" | "warning", violation) for the whole store, holding one batch at a time."""
    from mtctl.store.validate import value_findings

    for finding in value_findings(conn):  # bad-text, bad-setting
        yield "error", finding
    for ids in _batches(conn, extension.c.id):
        specs = extension_specs(conn, ids)
        for ext_id in ids:
            ext = specs[ext_id]
            for problem in extension_violations(ext):
                yield "error", problem
            if not can_ever_ring(ext):
                yield "warning", Violation(
                    "silent-extension", f"extension {ext.number}",
                    "no phone can ring (every phone has order 0 or is disabled)"
                    if ext.phones else "has no phones, so nothing rings",
                    f"mtctl phone add {ext.number} ... or mtctl phone set {ext.number} POS "
                    "--order 1")
            for warning in key_warnings(ext.phones, now=now, within=rotate_within):
                yield "warning", warning
    for ids in _batches(conn, app_user.c.id):
        users = user_specs(conn, ids)
        needed: set[int] = set()
        for _, named in users.values():
            needed |= named
        by_number = {spec.number: spec for spec in extension_specs(conn, needed).values()}
        for user_id in ids:
            for problem in user_violations(users[user_id][0], by_number):
                yield "error", problem
    for session in invalid_sessions(conn):
        yield "error", Violation(
            "webcall-session", f"webcall {session['user']}",
            f"session on {session['extension']}, which is not one of {session['user']}'s "
            "Web Call extensions", f"mtctl webcall stop {session['user']}")
