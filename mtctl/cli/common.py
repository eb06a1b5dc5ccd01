"""What every command shares: the global options, the store connection, common option types."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@dataclass
class Globals:
    db: str | None = None
    actor: str | None = None

    @property
    def url(self) -> str:
        from mtctl.settings import database_url

        return database_url(self.db)

    @property
    def who(self) -> str:
        if self.actor:
            return self.actor
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


def globals_of(ctx: typer.Context) -> Globals:
    root = ctx.find_root()
    if not isinstance(root.obj, Globals):
        root.obj = Globals()
    return root.obj


@contextmanager
def reading(ctx: typer.Context) -> Iterator[Connection]:
    """One read transaction on the command's store."""
    from mtctl.store.db import open_store

    store = open_store(globals_of(ctx).url)
    try:
        with store.read() as conn:
            yield conn
    finally:
        store.close()


@contextmanager
def writing(ctx: typer.Context) -> Iterator[tuple[Connection, str]]:
    """One write transaction and the actor to audit: all of the command's changes or none."""
    from mtctl.store.db import open_store

    g = globals_of(ctx)
    store = open_store(g.url)
    try:
        with store.write() as conn:
            yield conn, g.who
    finally:
        store.close()
