"""A Kamailio 5.6 configuration that routes calls straight from mtctl's store (SPEC §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mtctl import __version__
from mtctl.errors import UsageError

DEFAULT_LISTEN = "udp:127.0.0.1:5060"
LISTEN_PATTERN = re.compile(r"(udp|tcp):([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})")
# Kamailio's db URL parser splits on these, and a cfg string cannot hold quotes or backslashes.
UNSAFE_IN_URL_PART = re.compile(r"[\s\"\\@/:?#!]")
UNSAFE_IN_PATH = re.compile(r"[\s\"\\@?#!]")


@dataclass(frozen=True, slots=True)
class KamailioDb:
    """How Kamailio reaches the store: its db module and URL, and environment it needs."""

    module: str
    url: str
    env: dict[str, str]


def kamailio_db(store_url: str, *, cwd: Path) -> KamailioDb:
    """Translate mtctl's SQLAlchemy store URL into Kamailio's db_sqlite/db_postgres URL."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(store_url)
    except Exception as exc:  # ArgumentError, ValueError: the URL itself is never echoed
        raise UsageError("cannot parse the store URL", "use sqlite:///PATH or "
                         "postgresql+psycopg://USER@HOST/DB") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            raise UsageError("Kamailio needs a store file, not an in-memory SQLite store",
                             "use --db sqlite:///PATH")
        path = (cwd / database).resolve()
        _check_url_part(str(path), "the store path", UNSAFE_IN_PATH)
        # sqlite:// then the absolute path: db_sqlite takes what follows the third slash.
        return KamailioDb("db_sqlite.so", f"sqlite:///{path}", {})
    if backend == "postgresql":
        parts = {"user": url.username or "", "password": url.password or "",
                 "host": url.host or "", "database": url.database or ""}
        for name, value in parts.items():
            _check_url_part(value, f"the PostgreSQL {name}", UNSAFE_IN_URL_PART)
        if not parts["host"] or not parts["database"]:
            raise UsageError("Kamailio needs the PostgreSQL host and database in the store URL",
                             "use postgresql+psycopg://USER@HOST:PORT/DB")
        auth = parts["user"] + (f":{parts['password']}" if parts["password"] else "")
        where = parts["host"] + (f":{url.port}" if url.port else "")
        env = {}
        options = url.query.get("options")
        if options:
            env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
        return KamailioDb("db_postgres.so",
                          f"postgres://{auth + '@' if auth else ''}{where}/{parts['database']}",
                          env)
    raise UsageError(f"Kamailio cannot read a {backend} store",
                     "use a SQLite or PostgreSQL store")


def _check_url_part(value: str, what: str, unsafe: re.Pattern[str]) -> None:
    if unsafe.search(value):
        raise UsageError(f"{what} holds a character Kamailio's db URL cannot carry",
                         "use a store URL without spaces, quotes, backslashes, @, ?, # or !")


def check_listen(listen: str) -> str:
    """A Kamailio listen address PROTO:HOST:PORT, or UsageError."""
    match = LISTEN_PATTERN.fullmatch(listen)
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise UsageError(f"--listen {listen!r} is not PROTO:HOST:PORT",
                         f"use e.g. --listen {DEFAULT_LISTEN}")
    return listen


def kamailio_cfg(db: KamailioDb, *, listen: str) -> str:
    """The routing script: the template with the store URL and the listen address filled in."""
    template = resources.files("mtctl.formats").joinpath("kamailio.cfg.tmpl").read_text("utf-8")
    return (template.replace("@@VERSION@@", __version__)
            .replace("@@LISTEN@@", check_listen(listen))
            .replace("@@DB_MODULE@@", db.module)
            .replace("@@DB_URL@@", db.url))


def kamailio_readme(db: KamailioDb, *, listen: str, cfg_path: Path) -> str:
    """How to run the exported configuration."""
    package = "kamailio-sqlite-modules" if db.module == "db_sqlite.so" else \
        "kamailio-postgres-modules"
    env = "".join(f"{name}={_shell_quote(value)} " for name, value in sorted(db.env.items()))
    env_note = (f"\n`{' '.join(db.env)}` is needed because the store URL selects a schema "
                "through connection options, which Kamailio's URL cannot carry.\n"
                if db.env else "")
    sqlite_note = ("\nThe SQLite store file and its directory must be writable by the user "
                   "Kamailio runs as (it writes registrations, and SQLite's WAL files live "
                   "next to the store).\n" if db.module == "db_sqlite.so" else "")
    return f"""# Kamailio for Multiterminal

Written by `mtctl export kamailio` (mtctl {__version__}). `kamailio.cfg` routes calls for the
extensions in mtctl's store, reading the store directly: a change made with mtctl (a phone
added, disabled, reordered, a key rotated) takes effect on the next REGISTER or call, with no
reload and no copy of the data.

Install (Debian/Ubuntu): `apt-get install kamailio {package}`

Check, then run in the foreground (logs on stderr), listening on {listen}:

    kamailio -c -f {cfg_path}
    {env}kamailio -DD -E -f {cfg_path}
{env_note}{sqlite_note}
- Phones register as `SIP-AUTH-USER@<sip.domain>` with their mtctl key (HA1); during a key's
  grace period after `mtctl keys rotate` the previous key is accepted too.
- Call an extension or login number at `sip:NUMBER@<sip.domain>`; phones ring stage by stage
  exactly as `mtctl ring-sim NUMBER --live` shows, with the display name of SPEC §3 in
  `P-Asserted-Identity`.
- Registrations land in the store's `location` table (times in epoch seconds, whatever the
  time zones of Kamailio and the database); `mtctl ring-sim NUMBER --live` reads them.
- A pool extension's Web Call rings for an exclusive user only while that user has a Web Call
  session there (`mtctl webcall start USER --ext NUMBER`) and its Web Call phone is registered.
- The store must be at the schema this mtctl needs (`mtctl db upgrade`); export again after
  upgrading mtctl. `kamailio.cfg` contains the store URL (with its password, if any): keep it
  private.
"""


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)
