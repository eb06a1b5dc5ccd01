"""Bulk writes straight to the driver: one statement for many rows, compiled once, rows as
plain tuples (on SQLite straight from their generator to the driver's executemany, elsewhere
a batch at a time). At 100,000 extensions the per-row Python work, not the database, is what
the time goes to; `rows.py` is the same for reads."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any, cast

from sqlalchemy import Column, Table, bindparam, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

BATCH = 5_000
# SQLite: rows per INSERT statement. Each execution of a statement opens a cursor on the
# table and on each of its indexes (a phone has eight), and a statement of many rows inside a
# transaction copies every page it changes to SQLite's statement journal first, so that it can
# be undone alone: fewer, longer statements do both less often. 1,024 rows of a phone are
# 17,408 parameters; a wider table gets fewer rows, within the parameters the SQLite library
# takes (32,766 by default since 3.32, 250,000 as Debian builds it).
ROWS_PER_INSERT = 1_024


def chunks(rows: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Bulk:
    """One statement for many rows, each a tuple of bind values in the order of `names`."""

    def __init__(self, conn: Connection, statement: ClauseElement, names: Sequence[str]) -> None:
        compiled = statement.compile(dialect=conn.dialect)
        self.conn, self.sql = conn, str(compiled)
        order = cast(SQLCompiler, compiled).positiontup  # a statement compiles to SQL
        self.convert: Callable[[list[tuple[Any, ...]]], list[Any]]
        # SQLite's driver takes the rows straight from their generator, unbatched.
        self.direct = order is not None and conn.dialect.name == "sqlite"
        self.pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
        self.many: tuple[str, int] | None = None
        if self.direct:
            self.many = _rows_per_statement(self.sql, _parameter_limit(conn))
        if order is None:  # named parameters (psycopg)
            self.convert = lambda batch: [dict(zip(names, row, strict=True)) for row in batch]
        elif list(order) == list(names):
            self.convert = lambda batch: batch
        else:
            index = [list(names).index(name) for name in order]
            pick = operator.itemgetter(*index) if len(index) > 1 else (
                lambda row: (row[index[0]],))
            self.pick = pick
            self.convert = lambda batch: list(map(pick, batch))

    def run(self, rows: Iterable[tuple[Any, ...]]) -> None:
        if self.direct:
            dbapi_connection = self.conn.connection.dbapi_connection
            assert dbapi_connection is not None, "a connection in use has its driver connection"
            cursor = dbapi_connection.cursor()
            ordered = rows if self.pick is None else map(self.pick, rows)
            rest: list[tuple[Any, ...]] = []
            try:
                # sqlite3 takes any iterator of rows; the DB-API types ask for a sequence
                if self.many is not None:
                    many_sql, count = self.many
                    cursor.executemany(many_sql, cast(Sequence[Sequence[Any]], _flat(
                        ordered, count, rest)))
                    ordered = rest
                cursor.executemany(self.sql, cast(Sequence[Sequence[Any]], ordered))
            finally:
                cursor.close()
            return
        for batch in chunks(rows):
            self.conn.exec_driver_sql(self.sql, self.convert(batch))


def _rows_per_statement(sql: str, limit: int) -> tuple[str, int] | None:
    """An `INSERT ... VALUES (?, ...)` for many rows at once (up to ROWS_PER_INSERT, and
    within limit parameters) and how many; None for another statement."""
    head, values, row = sql.rpartition(" VALUES ")
    if not head.startswith("INSERT INTO ") or not (row.startswith("(") and row.endswith(")")):
        return None
    count = min(ROWS_PER_INSERT, limit // max(row.count("?"), 1))
    return (head + values + ", ".join([row] * count), count) if count > 1 else None


def _parameter_limit(conn: Connection) -> int:
    """The most parameters one statement may have on this SQLite connection."""
    import sqlite3  # loaded already: the connection is one

    dbapi_connection = conn.connection.dbapi_connection
    assert isinstance(dbapi_connection, sqlite3.Connection), "a SQLite connection"
    return dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def _flat(rows: Iterable[tuple[Any, ...]], count: int,
          rest: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The rows count at a time, each batch as one flat tuple; a last, shorter batch goes to
    rest instead."""
    stream = iter(rows)
    while len(batch := list(islice(stream, count))) == count:
        yield tuple(chain.from_iterable(batch))
    rest.extend(batch)


def bulk_insert(conn: Connection, table: Table, columns: Sequence[str]) -> Bulk:
    """INSERT INTO table (columns) VALUES (?...); rows are tuples in the order of columns."""
    names = [f"b_{column}" for column in columns]
    return Bulk(conn, insert(table).values({c: bindparam(n) for c, n in zip(
        columns, names, strict=True)}), names)


def bulk_update(conn: Connection, table: Table, key: str, columns: Sequence[str]) -> Bulk:
    """UPDATE table SET columns WHERE key = ?; rows are (*columns, key)."""
    names = [f"b_{column}" for column in columns]
    statement = update(table).where(table.c[key] == bindparam("b_key")).values(
        {c: bindparam(n) for c, n in zip(columns, names, strict=True)})
    return Bulk(conn, statement, [*names, "b_key"])


def bind_processor(column: Column[Any], conn: Connection) -> Callable[[Any], Any]:
    """The driver value of a column's Python value, as SQLAlchemy would bind it."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process or (lambda value: value)
