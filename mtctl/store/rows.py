"""Bulk reads straight from the driver, for the queries that return a whole table."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection


def rows_of(conn: Connection, query) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """Rows of a query without parameters, as the driver returns them: the bulk reads skip
    SQLAlchemy's per-row work."""
    sql = str(query.compile(dialect=conn.dialect))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()
