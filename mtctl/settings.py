"""Where the store is: --db > MTCTL_DATABASE_URL > the SQLite file in the user's data directory."""

from __future__ import annotations

import os
from pathlib import Path

ENV_URL = "MTCTL_DATABASE_URL"


def data_dir() -> Path:
    """The user's data directory for mtctl (XDG_DATA_HOME, else ~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mtctl"


def default_url() -> str:
    return f"sqlite:///{data_dir() / 'mtctl.db'}"


def database_url(cli_value: str | None) -> str:
    """The store URL a command uses; an empty --db or MTCTL_DATABASE_URL is refused, never
    taken to mean the default store (a script's unset variable would write to the wrong one)."""
    from mtctl.errors import UsageError

    hint = "give a store URL such as sqlite:///PATH, or leave it out for the default store"
    if cli_value is not None:
        if not cli_value.strip():
            raise UsageError("--db is empty", hint)
        return cli_value
    env = os.environ.get(ENV_URL)
    if env is not None:
        if not env.strip():
            raise UsageError(f"{ENV_URL} is set but empty",
                             "unset it for the default store, or set it to a store URL")
        return env
    return default_url()
