"""Extensions by the number users type: shared by the modules that write extensions and pools."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mtctl.errors import NotFound
from mtctl.store.tables import extension


def require_extension(conn: Connection, number: str) -> int:
    """The id of extension NUMBER, or NotFound (exit 3)."""
    found = conn.execute(select(extension.c.id).where(extension.c.number == number)).scalar()
    if found is None:
        raise NotFound(f"unknown extension {number!r}", "see: mtctl ext list")
    return found
