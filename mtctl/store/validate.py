"""Rules enforced on every write: load what the write touched and ask the domain."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Connection

from mtctl.domain.rules import Violation, extension_violations, user_violations
from mtctl.errors import RuleViolation
from mtctl.store.snapshots import extension_specs, user_specs, users_touching


def violations_for(conn: Connection, *, extension_ids: Iterable[int] = (),
                   user_ids: Iterable[int] = ()) -> list[Violation]:
    """Every rule broken by these extensions, these users, and the users of these extensions."""
    ext_ids = set(extension_ids)
    users = user_specs(conn, set(user_ids) | users_touching(conn, ext_ids))
    needed = set(ext_ids)
    for _, named in users.values():
        needed |= named
    specs = extension_specs(conn, needed)
    found: list[Violation] = []
    for ext_id in sorted(ext_ids):
        if ext_id in specs:
            found.extend(extension_violations(specs[ext_id]))
    by_number = {spec.number: spec for spec in specs.values()}
    for user, _ in sorted(users.values(), key=lambda pair: pair[0].username):
        found.extend(user_violations(user, by_number))
    return found


def enforce(conn: Connection, *, extension_ids: Iterable[int] = (),
            user_ids: Iterable[int] = ()) -> None:
    """Raise RuleViolation (the transaction then rolls back) if the write broke any rule."""
    found = violations_for(conn, extension_ids=extension_ids, user_ids=user_ids)
    if found:
        raise RuleViolation(found)
