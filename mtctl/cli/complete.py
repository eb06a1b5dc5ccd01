"""Shell completion of the names a store holds: extension numbers, usernames, node names.

A TAB must answer at once and must never print an error into the command line being typed, so
these read the store with the standard library's sqlite3 or plain psycopg (never SQLAlchemy),
read-only, with a short timeout, at most LIMIT names; anything that goes wrong (no store, a
store not migrated, a database that does not answer) completes nothing.

`mtctl --install-completion` (bash, zsh, fish) installs Typer's completion script; each TAB
then runs `mtctl` with `_MTCTL_COMPLETE` set, and Typer calls the functions below for the
arguments and options that name these things.
"""

from __future__ import annotations

import os
from contextlib import closing
from typing import Any

TIMEOUT_SECONDS = 1
LIMIT = 500
# What can be completed: (table, column). Never a secret column.
EXTENSIONS = ("extension", "number")
USERS = ("app_user", "username")
NODES = ("node", "name")
GROUPS = ("webcall_group", "name")


def extensions(ctx: Any, incomplete: str) -> list[str]:
    """Extension numbers starting with INCOMPLETE."""
    return names(store_url(ctx), EXTENSIONS, incomplete)


def usernames(ctx: Any, incomplete: str) -> list[str]:
    """Usernames starting with INCOMPLETE."""
    return names(store_url(ctx), USERS, incomplete)


def nodes(ctx: Any, incomplete: str) -> list[str]:
    """Node names starting with INCOMPLETE."""
    return names(store_url(ctx), NODES, incomplete)


def groups(ctx: Any, incomplete: str) -> list[str]:
    """Web Call group names starting with INCOMPLETE."""
    return names(store_url(ctx), GROUPS, incomplete)


def store_url(ctx: Any) -> str | None:
    """The store the command line being completed names: its --db, else the environment's,
    else the default one."""
    root = ctx.find_root() if ctx is not None else None
    given = root.params.get("db_url") if root is not None else None
    if given:
        return str(given)
    from mtctl.settings import ENV_URL, default_url

    return os.environ.get(ENV_URL) or default_url()


def names(url: str | None, where: tuple[str, str], incomplete: str) -> list[str]:
    """The values of WHERE's column starting with INCOMPLETE, sorted; [] on any failure."""
    if not url:
        return []
    table, column = where
    # Identifiers come from the constants above, never from the user; the prefix is a parameter.
    prefix = incomplete.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    try:
        with closing(_connect(url)) as conn:
            mark = "?" if _is_sqlite(url) else "%s"
            cursor = conn.cursor()
            cursor.execute(f"SELECT {column} FROM {table} WHERE {column} LIKE {mark} "  # noqa: S608
                           f"ESCAPE '\\' ORDER BY {column} LIMIT {LIMIT}", (prefix,))
            return [str(row[0]) for row in cursor.fetchall()]
    except Exception:  # a TAB completes nothing rather than print an error
        return []


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _connect(url: str) -> Any:
    """A read-only DB-API connection to URL (an SQLAlchemy URL of SQLite or PostgreSQL)."""
    if _is_sqlite(url):
        import sqlite3
        from urllib.parse import quote

        scheme, _, rest = url.partition(":///")
        if scheme not in ("sqlite", "sqlite+pysqlite") or not rest:
            raise ValueError("not a SQLite file URL")
        path = rest.split("?", 1)[0]
        # mode=ro: completion never creates, migrates or locks a store for writing.
        return sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True,
                               timeout=TIMEOUT_SECONDS)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError("not a PostgreSQL URL")
    import psycopg

    conn = psycopg.connect(f"postgresql://{rest}", connect_timeout=TIMEOUT_SECONDS,
                           autocommit=True)
    conn.execute(f"SET statement_timeout = {TIMEOUT_SECONDS * 1000}")
    return conn
