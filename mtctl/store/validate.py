"""Rules enforced on every write: load what the write touched and ask the domain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from mtctl.domain.rules import Violation, extension_violations, user_violations
from mtctl.errors import RuleViolation, UsageError
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


INT_MAX = 2**31 - 1  # the store's INTEGER columns on every backend


def check_text(table: Table, values: Mapping[str, object]) -> None:
    """Refuse values the store cannot hold the same way on every backend (exit 2).

    SQLite ignores VARCHAR lengths and takes 64-bit integers, PostgreSQL refuses NUL
    characters; checking here gives both backends the same answer.
    """
    for name, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_MAX:
            raise UsageError(f"{table.name} {name.replace('_', ' ')} {value} is too large",
                             f"use a number up to {INT_MAX}")
        if not isinstance(value, str) or name not in table.c:
            continue
        what = f"{table.name} {name.replace('_', ' ')}"
        if "\x00" in value:
            raise UsageError(f"{what} contains a NUL character", "remove it")
        limit = getattr(table.c[name].type, "length", None)
        if limit is not None and len(value) > limit:
            raise UsageError(f"{what} is {len(value)} characters long, more than {limit}",
                             f"use at most {limit} characters")
