"""`mtctl check`: every rule over the whole store, streamed in batches of extensions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from mtctl.domain.nodes import webcall_node_warnings
from mtctl.domain.ringing import can_ever_ring
from mtctl.domain.rules import Violation, extension_violations, key_warnings, user_violations
from mtctl.store import reader
from mtctl.store.nodes import node_addresses
from mtctl.store.webcall import invalid_sessions

BATCH = 2_000


def check_store(conn: Connection, *, now: datetime,
                rotate_within: timedelta) -> Iterator[tuple[str, Violation]]:
    """Yield ("error" | "warning", violation) for the whole store, holding one batch at a time."""
    from mtctl.store.validate import value_findings

    for finding in value_findings(conn):  # bad-text, bad-setting
        yield "error", finding
    read = reader.over(conn)  # the batches straight through the driver, in the Core transaction
    addresses = node_addresses(conn)
    # Users are checked with the batch holding their login extension (its phones are read
    # once), and their errors held back, to come after every extension's, by user id.
    user_errors: list[tuple[int, Violation]] = []
    for extensions, users in read.extensions_by_id(BATCH):
        for ext in extensions:
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
        for user_id, user, named in users:
            user_errors.extend((user_id, problem) for problem in user_violations(user, named))
            for warning in webcall_node_warnings(user, named, addresses):
                yield "warning", warning
    user_errors.sort(key=lambda found: found[0])  # stable: each user's errors keep their order
    for _, problem in user_errors:
        yield "error", problem
    for session in invalid_sessions(conn):
        yield "error", Violation(
            "webcall-session", f"webcall {session['user']}",
            f"session on {session['extension']}, which is not one of {session['user']}'s "
            "Web Call extensions", f"mtctl webcall stop {session['user']}")
