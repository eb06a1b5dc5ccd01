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
# table and on each of its indexes; a phone has eight, so one row per statement spends about
# a third of its time there. 64 rows of a phone are 1,088 parameters (the limit is 32,766).
ROWS_PER_INSERT = 64


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
        self.many_sql = _rows_per_statement(self.sql, ROWS_PER_INSERT) if self.direct else None
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
                if self.many_sql is not None:
                    cursor.executemany(self.many_sql, cast(Sequence[Sequence[Any]], _flat(
                        ordered, ROWS_PER_INSERT, rest)))
                    ordered = rest
                cursor.executemany(self.sql, cast(Sequence[Sequence[Any]], ordered))
            finally:
                cursor.close()
            return
        for batch in chunks(rows):
            self.conn.exec_driver_sql(self.sql, self.convert(batch))


def _rows_per_statement(sql: str, count: int) -> str | None:
    """An `INSERT ... VALUES (?, ...)` for count rows at once; None for another statement."""
    head, values, row = sql.rpartition(" VALUES ")
    if not head.startswith("INSERT INTO ") or not (row.startswith("(") and row.endswith(")")):
        return None
    return head + values + ", ".join([row] * count)


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
