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
    """The store URL a command uses."""
    return cli_value or os.environ.get(ENV_URL) or default_url()
