"""Ids of rows: an extension's by the number users type (shared by the modules that write
extensions and pools), and the one an INSERT just made."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, CursorResult

from mtctl.errors import NotFound
from mtctl.store.tables import extension


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT of one row just made."""
    key = result.inserted_primary_key
    assert key is not None, "an INSERT of one row has a primary key"
    row_id: int = key[0]
    return row_id


def require_extension(conn: Connection, number: str) -> int:
    """The id of extension NUMBER, or NotFound (exit 3)."""
    found: int | None = conn.execute(select(extension.c.id)
                                     .where(extension.c.number == number)).scalar()
    if found is None:
        raise NotFound(f"unknown extension {number!r}", "see: mtctl ext list")
    return found
