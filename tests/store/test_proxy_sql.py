"""The SQL the exported Kamailio runs agrees with ring_plan(), fast and without Kamailio.

The queries are taken from kamailio.cfg.tmpl itself and run against the store; the routing
script's logic around them (route EXTENSION, EXCLUSIVE_WEBCALL, WEBCALL_REGISTERED,
RING_GROUP) is followed step by step, with `registered()`/`lookup()` answering from a set of
registered SIP auth users. For random stores with Web Call pools and sessions, every number
rings the stages and shows the name that `ring_plan()` gives for the same registrations and
sessions (what `ring-sim --live` prints).
"""

from __future__ import annotations

import json
import random
import re
from importlib import resources

import pytest
from sqlalchemy import create_engine, text

from mtctl.domain.presence import live_presence
from mtctl.domain.ringing import ring_plan
from mtctl.store.ring import ring_sessions, ring_target
from tests.e2e.pools import store_toml
from tests.e2e.test_pool_agreement import random_store

TEMPLATE = resources.files("mtctl.formats").joinpath("kamailio.cfg.tmpl").read_text("utf-8")
QUERIES = [q.replace('\\"', '"') for q in
           re.findall(r'sql_xquery\("mt", "((?:[^"\\]|\\.)*)", "(?:ex|wc|wp|g)"\)', TEMPLATE)]
TARGET, WEBCALLS, WEB_PHONES, GROUP = QUERIES


def sql_string(value: str) -> str:
    """What Kamailio's s.escape.common does to a value inside '...' (digits here anyway)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def fill(query: str, **avps: str) -> str:
    if "ext" in avps:  # the called number: $rU, then $avp(ext)
        query = query.replace("$(rU{s.escape.common})", sql_string(avps["ext"]))
    for name, value in avps.items():
        query = query.replace(f"$(avp({name}){{s.escape.common}})", sql_string(value))
        query = query.replace(f"$avp({name})", value)
    assert "$" not in query, query
    return query


class Proxy:
    """route[EXTENSION] of kamailio.cfg.tmpl, over a connection and registered auth users."""

    def __init__(self, conn, registered: set[str]) -> None:  # type: ignore[no-untyped-def]
        self.conn, self.registered = conn, registered

    def rows(self, query: str) -> list:
        return list(self.conn.execute(text(query)))

    def webcall_registered(self, wcext: str) -> bool:
        return any(au in self.registered
                   for (au,) in self.rows(fill(WEB_PHONES, wcext=wcext)))

    def route(self, number: str) -> tuple[str, list[set[str]]]:
        """(display name as put in P-Asserted-Identity, stages of auth users)."""
        target = self.rows(fill(TARGET, ext=number))
        assert target, number
        _, ext_name, user_name, mode = target[0]
        shown, ringext, kinds = ext_name, number, "any"
        if mode == "exclusive":
            shown, kinds = user_name, "other"
            for (wcext,) in self.rows(fill(WEBCALLS, ext=number)):
                if self.webcall_registered(wcext):
                    ringext, kinds = wcext, "webcall"
                    break
        elif mode == "multiterminal" and self.webcall_registered(number):
            shown = user_name
        stages, order = [], "0"
        while True:  # route[RING_GROUP], once per stage
            group = self.rows(fill(GROUP, ringext=ringext, kinds=kinds, order=order))
            if not group:
                return shown, stages
            order = str(group[0][0])
            found = {au for _, au in group if au in self.registered}
            if found:
                stages.append(found)


@pytest.mark.parametrize("seed", range(1, 21))
def test_the_proxy_sql_rings_what_ring_plan_says(mtctl, tmp_path, seed):
    store = random_store(seed)
    path = tmp_path / "store.toml"
    path.write_text(store_toml(store), encoding="utf-8")
    mtctl.ok("config", "set", "sip.domain", "pbx.example.com")
    mtctl.ok("apply", str(path))
    auth = {f"{p['extension']}:{p['position']}": p["sip_auth_user"]
            for p in json.loads(mtctl.ok("phone", "list", "--json").stdout)}
    rng = random.Random(seed)
    engine = create_engine(mtctl.url)
    try:
        for _ in range(4):
            for user in store.users:  # some users log into a free Web Call extension
                busy = set(store.sessions.values())
                free = [n for n in user.session_extensions(store.pool) if n not in busy]
                if user.username in store.sessions and rng.random() < 0.5:
                    mtctl.ok("webcall", "stop", user.username)
                    del store.sessions[user.username]
                elif user.username not in store.sessions and free and rng.random() < 0.6:
                    store.sessions[user.username] = rng.choice(free)
                    mtctl.ok("webcall", "start", user.username, "--ext",
                             store.sessions[user.username])
            online = {key for key in auth if rng.random() < 0.6}
            registered = {auth[key] for key in online}
            with engine.connect() as conn:
                proxy = Proxy(conn, registered)
                for number in store.names:
                    target = ring_target(conn, number)
                    presence = live_presence(target, {tuple_key(k) for k in online},
                                             ring_sessions(conn, target))
                    plan = ring_plan(target, presence)
                    shown, stages = proxy.route(number)
                    expected = [{auth[p.ref] for p in stage.phones} for stage in plan.stages]
                    assert stages == expected, (number, store.sessions, online)
                    assert shown == quoted_inside(plan.display_name), number
    finally:
        engine.dispose()


def tuple_key(key: str) -> tuple[str, int]:
    number, position = key.split(":")
    return number, int(position)


def quoted_inside(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')
