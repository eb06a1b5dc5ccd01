"""Test helpers that look at the store behind mtctl's back: full dumps and planted rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Executable

from mtctl.store.tables import metadata


def dump_store(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table mtctl declares (audit_log included, the proxy's call records
    and registration events left out), ordered by primary key."""
    engine = create_engine(url)
    try:
        return dump_engine(engine)
    finally:
        engine.dispose()


# What a running proxy writes on its own, at any moment (call records arrive up to 100 ms after
# the call; registration events with every REGISTER): not mtctl's to change or to keep still.
PROXY_WRITTEN = frozenset({"call_record", "call_branch", "registration_event"})


def dump_engine(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """dump_store through an engine the caller keeps open (for loops of many dumps)."""
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(
                select(table).order_by(*table.primary_key.columns))]
            for table in metadata.sorted_tables if table.name not in PROXY_WRITTEN
        }


def plant(url: str, *statements: Executable) -> None:
    """Write straight into the store, bypassing every rule (to give `check` something to find)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        engine.dispose()


def assert_refused(mtctl: Any, *args: str, exit_code: int, rule: str | None = None,
                   input: str | None = None) -> Any:
    """Run a command that must fail: its exit code, one clean error line, and no change at all."""
    before = dump_store(mtctl.url)
    result = mtctl(*args, input=input)
    assert result.exit_code == exit_code, (args, result.output)
    assert_one_line_error(result)
    if rule is not None:
        assert rule in result.stderr, (args, result.stderr)
    assert dump_store(mtctl.url) == before, f"{args} changed the store"
    return result


def assert_one_line_error(result: Any) -> None:
    """`mtctl: error: <what> — <how to fix>` on one stderr line, nothing on stdout, no traceback."""
    assert "Traceback" not in result.output, result.output
    assert result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mtctl: error: "), result.stderr
    assert " — " in lines[0], f"no hint in: {lines[0]}"
