"""Redeeming provisioning tokens for `mtctl serve`: find a token's phone account fast (the
TokenReader, straight on the driver), decide the step of a fetch, record it. Issuing and
revoking them (`mtctl provision`) is in tokens.py."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, Select, any_, bindparam, select, update
from sqlalchemy.engine import Connection

from mtctl.domain import provisioning
from mtctl.domain.model import PhoneSpec
from mtctl.domain.nodes import phone_proxy
from mtctl.domain.provisioning import Account
from mtctl.domain.rules import provisioning_violation
from mtctl.store import audit
from mtctl.store.audit import as_utc
from mtctl.store.db import Store
from mtctl.store.driver import DriverConnections
from mtctl.store.snapshots import phone_node, phone_query, phone_spec
from mtctl.store.tables import extension, phone, provisioning_token, setting

log = logging.getLogger("mtctl.serve")


# What a client calls itself before it knows better (a fresh linphonec's first fetch says
# `Unknown/...`): such a fetch redeems the token but leaves it for the next one to bind.
ANONYMOUS_PRODUCTS = frozenset({"", "unknown"})


def device_of(user_agent: str | None) -> str:
    """The product of a User-Agent (`Linphone/5.1 (...)` → `Linphone`): what a token binds to."""
    return (user_agent or "").split("/", 1)[0].strip()[:256]


@dataclass(frozen=True, slots=True)
class Lookup:
    """A live token as the endpoint sees it: its state and the account it would serve."""

    token_id: int
    phone_ref: str  # "number:position", for the audit trail
    redeem_by: datetime
    redeemed_at: datetime | None
    device: str | None
    account: Account | None  # None: the phone may not be provisioned (any more)


# What a fetch needs next: serve the account as it is, or first write the redemption / binding.
SERVE, REDEEM, BIND = "serve", "redeem", "bind"


def next_step(found: Lookup | None, device: str, now: datetime) -> str | None:
    """SERVE, REDEEM or BIND for a fetch by `device`, or None for a 404.

    The first fetch redeems the token and binds it to the fetching device (an anonymous one
    leaves the binding to the next fetch); later fetches by that device are plain reads.
    """
    if found is None or found.account is None:
        return None
    anonymous = device.lower() in ANONYMOUS_PRODUCTS
    if found.redeemed_at is None:
        return REDEEM if found.redeem_by >= now else None
    if found.device is None:
        return SERVE if anonymous else BIND
    return SERVE if found.device == device else None


def record_fetch(conn: Connection, found: Lookup, *, device: str, step: str,
                 now: datetime) -> bool:
    """Write a first fetch's redemption or binding; False when another fetch got there first.

    Conditional UPDATEs: a concurrent fetch that redeemed or bound the token already makes
    this one change nothing, and the caller looks again.
    """
    anonymous = device.lower() in ANONYMOUS_PRODUCTS
    t = provisioning_token.c
    if step == REDEEM:
        done = conn.execute(update(provisioning_token)
                            .where(t.id == found.token_id, t.redeemed_at.is_(None),
                                   t.redeem_by >= now)
                            .values(redeemed_at=now, device=None if anonymous else device)
                            ).rowcount
        if done:
            audit.record(conn, actor="provisioning", action="redeem",
                         obj=f"phone {found.phone_ref}", changes={"device": [None, device]})
    else:
        done = conn.execute(update(provisioning_token)
                            .where(t.id == found.token_id, t.device.is_(None))
                            .values(device=device)).rowcount
    return bool(done)


def _setting(name: str) -> ScalarSelect[Any]:
    return select(setting.c.value).where(setting.c.key == name).scalar_subquery()


def _lookup_query(many: bool = False) -> Select[Any]:
    """One indexed query: the token, its phone and the settings an account needs.

    many: for a list of token hashes (PostgreSQL), each row ending with its token's hash.
    """
    t = provisioning_token.c
    return (phone_query()
            .add_columns(t.id.label("token_id"), t.redeem_by, t.redeemed_at, t.device,
                         phone.c.ha1, extension.c.display_name,
                         phone_node.c.sip_address.label("node_address"),
                         _setting("sip.domain").label("s_domain"),
                         _setting("sip.realm").label("s_realm"),
                         _setting("sip.proxy").label("s_proxy"),
                         _setting("flexisip.proxy").label("s_flexisip"))
            .join(provisioning_token, t.phone_id == phone.c.id)
            .where(t.token_hash == any_(bindparam("token_hashes")) if many
                   else t.token_hash == bindparam("token_hash")))


def _account(m: Mapping[str, Any], spec: PhoneSpec) -> Account | None:
    """The phone's account as provisioning serves it, if the phone may still be provisioned."""
    domain = m["s_domain"]
    realm = m["s_realm"] or domain
    if m["ha1"] is None or domain is None or provisioning_violation(spec) is not None:
        return None
    proxy = phone_proxy(publishable=spec.publishable, edge=m["s_flexisip"],
                        node_address=m["node_address"], site_proxy=m["s_proxy"], domain=domain)
    if proxy is None:
        return None
    return Account(auth_user=m["sip_auth_user"], ha1=m["ha1"], realm=realm, domain=domain,
                   proxy=proxy, display_name=m["display_name"])


class _Row:
    """A driver row with the `_mapping` that snapshots.phone_spec reads."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        self._mapping = mapping


class TokenReader:
    """Read-only token lookups for `mtctl serve`, without SQLAlchemy or a lock per request.

    The lookup is compiled once and run through CONNECTIONS (store/driver.py: straight
    through the driver, following a replaced SQLite file), made for the store if not given.
    """

    def __init__(self, store: Store, connections: DriverConnections | None = None) -> None:
        self.store = store
        self._connections = connections or DriverConnections(store)
        dialect = store.engine.dialect
        query = _lookup_query()
        compiled = query.compile(dialect=dialect)
        self._sql = str(compiled)
        self._params = dict(compiled.params)  # the setting names, and the token's hash
        self._order = compiled.positiontup  # qmark/format drivers: the parameters' order
        if self._order is not None:
            self._args = [self._params[name] for name in self._order]
            self._slot = self._order.index("token_hash")
        self._columns = list(query.selected_columns.keys())
        # What SQLAlchemy would do to each value (SQLite keeps datetimes as text).
        self._convert = [(i, proc) for i, c in enumerate(query.selected_columns)
                         if (proc := c.type.dialect_impl(dialect).result_processor(dialect, None))
                         is not None]
        # The same row (nothing changed) gives the same Lookup: the query still runs for every
        # fetch, only turning its row into values is skipped.
        self._from_row = functools.lru_cache(maxsize=4096)(self._build)
        if dialect.name == "postgresql":  # lookup_many: token_hash = ANY(%(token_hashes)s)
            t = provisioning_token.c
            many = _lookup_query(many=True).add_columns(t.token_hash.label("found_hash"))
            compiled_many = many.compile(dialect=dialect)
            self._many_sql = str(compiled_many)
            self._many_params = dict(compiled_many.params)

    @property
    def never_blocks(self) -> bool:
        """True on SQLite, where lookup(wait=False) is quick enough to run on an event loop."""
        return self._connections.never_blocks

    @property
    def batches(self) -> bool:
        """True on PostgreSQL, where lookup_many() saves round trips."""
        return self.store.dialect == "postgresql"

    def _params_for(self, token: str) -> Any:
        if not provisioning.looks_like_token(token):
            return None
        digest = provisioning.token_hash(token)
        if self._order is None:
            return {**self._params, "token_hash": digest}
        params = self._args.copy()
        params[self._slot] = digest
        return params

    def _found(self, rows: list[tuple[Any, ...]]) -> Lookup | None:
        return self._from_row(rows[0]) if rows else None

    def _build(self, row: tuple[Any, ...]) -> Lookup:
        """The Lookup a row stands for: a pure function of the row (memoised as _from_row)."""
        values = list(row)
        for i, convert in self._convert:
            values[i] = convert(values[i])
        m = dict(zip(self._columns, values, strict=True))
        account = _account(m, phone_spec(_Row(m)))
        return Lookup(token_id=m["token_id"], phone_ref=f"{m['number']}:{m['position']}",
                      redeem_by=as_utc(m["redeem_by"]),
                      redeemed_at=as_utc(m["redeemed_at"]), device=m["device"],
                      account=account)

    def lookup(self, token: str, wait: bool = True) -> Lookup | None:
        """The token's state and account, or None for a malformed or unknown token.

        wait=False (SQLite only): raise Busy rather than wait for a locked file.
        """
        params = self._params_for(token)
        if params is None:
            return None
        return self._found(self._connections.query(self._sql, params, wait))

    def lookup_many(self, tokens: list[str]) -> list[Lookup | None]:
        """lookup() for several tokens at once: one query, one round trip (PostgreSQL)."""
        digests = [provisioning.token_hash(t) if provisioning.looks_like_token(t) else None
                   for t in tokens]
        wanted = [d for d in digests if d is not None]
        rows = self._connections.query(
            self._many_sql, {**self._many_params, "token_hashes": wanted}) if wanted else []
        by_hash = {row[-1]: row[:-1] for row in rows}
        found = [by_hash.get(d) if d is not None else None for d in digests]
        return [self._from_row(row) if row is not None else None for row in found]

    def revision(self, wait: bool = True) -> str | None:
        """The store's schema revision, read the same way (what /healthz checks)."""
        rows = self._connections.query("SELECT version_num FROM alembic_version", (), wait)
        return rows[0][0] if rows else None

    def close(self) -> None:
        self._connections.close()
