"""A Kamailio 5.6 configuration that routes calls straight from mtctl's store (SPEC §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mtctl import __version__
from mtctl.domain.nodes import ClusterNode
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


# How route[RECORD] runs one queued statement. On PostgreSQL a failed statement would abort
# the tick's transaction (every other record in it lost), so the tick holds a savepoint, moved
# past each statement that succeeds; a failed one is rolled back alone, and one PostgreSQL
# refuses for its bytes (not UTF-8) runs again in printable ASCII.
RUN_SQLITE = 'sql_query("mt", "$mqv(rec)");'
RUN_POSTGRES = """if (!sql_query("mt", "$mqv(rec); RELEASE SAVEPOINT rec; SAVEPOINT rec")) {
		sql_query("mt", "ROLLBACK TO SAVEPOINT rec");
		if (!sql_query("mt", "$(mqv(rec){re.subst,/[^[:print:]]//g}); """ \
               """RELEASE SAVEPOINT rec; SAVEPOINT rec")) {
			sql_query("mt", "ROLLBACK TO SAVEPOINT rec");
		}
	}"""


def kamailio_cfg(db: KamailioDb, *, listen: str, node: ClusterNode | None = None) -> str:
    """The routing script: the template with the store URL and the listen address filled in;
    for one node of a cluster, with MT_NODE and MT_NODE_ID defined."""
    template = resources.files("mtctl.formats").joinpath("kamailio.cfg.tmpl").read_text("utf-8")
    defines = "" if node is None else \
        f"#!define MT_NODE\n#!define MT_NODE_ID {int(node.id)}\n"
    return (template.replace("@@VERSION@@", __version__)
            .replace("@@LISTEN@@", check_listen(listen))
            .replace("@@NODE@@", defines)
            .replace("@@NODE_SQL@@", _cfg_sql_text(node.name if node is not None else ""))
            .replace("@@RECORDER_INIT@@", 'sql_query("mt", "PRAGMA busy_timeout = 5000");'
                     if db.module == "db_sqlite.so" else "# (PostgreSQL: nothing to set)")
            .replace("@@RECORDER_BEGIN@@", "BEGIN" if db.module == "db_sqlite.so"
                     else "BEGIN; SAVEPOINT rec")
            .replace("@@RECORDER_RUN@@",
                     RUN_SQLITE if db.module == "db_sqlite.so" else RUN_POSTGRES)
            .replace("@@DB_MODULE@@", db.module)
            .replace("@@DB_URL@@", db.url))


def check_cluster_store(db: KamailioDb, addresses: dict[str, str | None]) -> None:
    """Refuse a SQLite store for nodes on more than one host (SPEC §8: SQLite only when every
    node runs on one host); ADDRESSES maps every node's name to its SIP address."""
    from mtctl.domain.nodes import parse_sip_address

    if db.module != "db_sqlite.so":
        return
    hosts = {parse_sip_address(a).host for a in addresses.values() if a}
    loopback = all(parse_sip_address(a).is_loopback for a in addresses.values() if a)
    if len(hosts) > 1 and not loopback:
        shown = ", ".join(f"{name} at {address}" for name, address in sorted(addresses.items())
                          if address)
        raise UsageError(f"the nodes run on more than one host ({shown}) but the store is a "
                         "SQLite file, which only one host can share",
                         "use one PostgreSQL store for the cluster: --db "
                         "postgresql+psycopg://USER@HOST/DB (mtctl db upgrade, then apply or "
                         "export/import the SQLite store into it)")


def _cfg_sql_text(text: str) -> str:
    """TEXT inside a single-quoted SQL literal inside a double-quoted cfg string."""
    return text.replace("'", "''").replace("\\", "\\\\").replace('"', '\\"')


def kamailio_readme(db: KamailioDb, *, listen: str, cfg_path: Path,
                    node: ClusterNode | None = None) -> str:
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
    node_note = "" if node is None else f"""
## Node {node.name} of a cluster

This configuration is node {node.name}'s (id {node.id}, listening on {node.sip_address}). Every
node runs its own Kamailio over the same store:

- it accepts REGISTER only from phones of extensions on {node.name}; any other phone gets
  `403 Wrong node: register at node NAME (HOST:PORT)` and an `X-Mtctl-Node` header;
- a call for a number whose extension lives on another node is relayed to that node's SIP
  address (From and P-Asserted-Identity untouched), which rings it;
- its registrations carry the node's id in the `location` table's `server_id` column
  (`mtctl ring-sim NUMBER --live` and `mtctl phone show` name the node);
- `mtctl ext set NUMBER --node OTHER` moves an extension: its registrations here are removed at
  once, its phones' next REGISTER here is refused, and they register at OTHER.

Export again (`mtctl export kamailio --node {node.name}`) after the node's SIP address changes.
"""
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
- Every call and branch is recorded in the store for `mtctl calls list|show|explain` (queued
  in shared memory and written by one timer process: recording never delays or fails a call);
  run `mtctl calls prune` daily from cron to keep `calls.retention_days`.
- A pool extension's Web Call rings for an exclusive user only while that user has a Web Call
  session there (`mtctl webcall start USER --ext NUMBER`) and its Web Call phone is registered.
- The store must be at the schema this mtctl needs (`mtctl db upgrade`); export again after
  upgrading mtctl. `kamailio.cfg` contains the store URL (with its password, if any): keep it
  private.
{node_note}"""


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)
