"""What every command shares: the global options, the store connection, common option types."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mtctl.cli import complete

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from mtctl.store.db import Store
    from mtctl.store.reader import Reader

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# Arguments naming what the store holds complete from it on TAB (mtctl --install-completion).
Number = Annotated[str, typer.Argument(metavar="NUMBER", autocompletion=complete.extensions)]
Username = Annotated[str, typer.Argument(metavar="USERNAME", autocompletion=complete.usernames)]
INT_MAX = 2**31 - 1  # the store's INTEGER columns


def whole_number(what: str, low: int = -INT_MAX - 1, high: int = INT_MAX,
                 hint: str | None = None) -> Callable[[str], int]:
    """A Typer parser for a bounded whole number in ASCII digits: anything else is one clear
    error line, exit 2 (`parser=whole_number("--order", 0)`)."""

    def parse(text: str | int) -> int:
        from mtctl.domain.values import parse_int

        if isinstance(text, int):  # a default value
            return text
        return parse_int(text, what=what, low=low, high=high, hint=hint)

    parse.__name__ = "integer"  # what --help shows as its type: <integer>, not <parse>
    return parse


def check_host(host: str) -> None:
    """Refuse a --host that no listener can bind: empty, over-long, control characters."""
    from mtctl.domain.values import check_text, escape
    from mtctl.errors import UsageError

    check_text("--host", host)
    labels = host.split(".")
    try:
        host.encode("idna")
        fits = 0 < len(host) <= 253 and all(len(label) <= 63 for label in labels)
    except UnicodeError:
        fits = False
    if not fits or any(c.isspace() for c in host):
        shown = escape(host if len(host) <= 60 else host[:60] + "…")
        raise UsageError(f"--host {shown!r} is not an address or host name",
                         "use an IP address (127.0.0.1, 0.0.0.0, ::) or a host name of at "
                         "most 253 characters")


def stdin_secret(what: str, most: int) -> str:
    """One line of standard input holding a secret, read no further than MOST characters (an
    endless line is refused, never held in memory); the line end is not part of it."""
    import sys

    from mtctl.errors import UsageError

    line = sys.stdin.readline(most + 2).rstrip("\r\n")  # room for the CRLF of a full line
    if len(line) > most:
        raise UsageError(f"the {what} is too long", f"use at most {most} characters")
    return line


def position_arg() -> Any:
    """The POS argument naming a phone on its extension."""
    return typer.Argument(metavar="POS", help="Position 0–7 on the extension.",
                          parser=whole_number("POS", 0, INT_MAX, "use a position from 0 to 7"))


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
            from mtctl.domain.values import check_text
            from mtctl.errors import UsageError

            check_text("--actor", self.actor)
            if len(self.actor) > 64:
                raise UsageError(f"--actor is {len(self.actor)} characters long, more than 64",
                                 "use at most 64 characters")
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
def opened(ctx: typer.Context) -> Iterator[Store]:
    """The command's store, opened once and closed when the command is done."""
    from mtctl.store.db import open_store

    store = open_store(globals_of(ctx).url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def reading(ctx: typer.Context) -> Iterator[Connection]:
    """One read transaction on the command's store."""
    with opened(ctx) as store, store.read() as conn:
        yield conn


@contextmanager
def quick_reading(ctx: typer.Context) -> Iterator[Reader]:
    """One read transaction straight on the driver, without importing SQLAlchemy, for the
    commands whose start-up counts (store/reader.py); through the Core path whenever the
    store is not one the read layer opens by itself (errors are then the Core path's)."""
    from mtctl.store import reader

    url = globals_of(ctx).url
    with reader.reading(url) as fast:
        if fast is not None:
            yield fast
            return
    with reading(ctx) as conn:
        yield reader.over(conn)


@contextmanager
def writing(ctx: typer.Context) -> Iterator[tuple[Connection, str]]:
    """One write transaction and the actor to audit: all of the command's changes or none."""
    with opened(ctx) as store, store.write() as conn:
        yield conn, globals_of(ctx).who


@contextmanager
def whole_store() -> Iterator[None]:
    """For a command that reads the whole store (check, ring-sim --all): the cyclic garbage
    collector runs a hundred times less often meanwhile. Such a command builds millions of
    small objects (phones, plans, findings) that hold no cycles and go with their batch, so
    the collections find nothing while costing over a tenth of the command's time."""
    import gc

    before = gc.get_threshold()
    gc.set_threshold(100 * before[0], *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
