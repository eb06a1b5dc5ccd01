"""Stores with several users sharing Web Call pool extensions, phones that stay up for several
calls, and the check that Kamailio, `ring-sim --live` and `ring-sim` (with the flags SPEC §3
gives for who is registered and which sessions are open) ring the same phones."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from tests.e2e import harness
from tests.e2e.conftest import Pbx, admin_password
from tests.e2e.recorded import assert_recorded
from tests.e2e.test_ring_agreement import RING_TIMEOUT, Phone, clusters, quoted, stages_of


@dataclass
class User:
    username: str
    name: str
    login: str
    mode: str | None = None  # exclusive | multiterminal | None
    own: list[str] = field(default_factory=list)  # individually assigned Web Call extensions
    group: bool = False  # uses the store's pool group
    webcall_position: int | None = None

    def session_extensions(self, pool: list[str]) -> list[str]:
        if self.mode == "multiterminal":
            return [self.login]
        if self.mode == "exclusive":
            return list(dict.fromkeys(self.own + (pool if self.group else [])))
        return []


@dataclass
class Store:
    names: dict[str, str | None] = field(default_factory=dict)  # extension -> display name
    phones: list[Phone] = field(default_factory=list)
    pool: list[str] = field(default_factory=list)  # the group's extensions, in its order
    users: list[User] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)  # username -> extension
    node_of: dict[str, str] = field(default_factory=dict)  # extension -> node (default n1)

    def node(self, number: str) -> str:
        return self.node_of.get(number, "n1")

    def user_of(self, number: str) -> User | None:
        return next((u for u in self.users if u.login == number), None)

    def webcall_registered(self, number: str) -> bool:
        return any(p.ext == number and p.webcall and p.registered for p in self.phones)


def store_toml(store: Store) -> str:
    """The store as an `mtctl apply` file (json.dumps makes valid TOML strings)."""
    q = json.dumps
    nodes = sorted({"n1", *store.node_of.values()})
    lines = [f"nodes = [{', '.join(map(q, nodes))}]", ""]
    if store.pool:
        lines += ["[groups.pool]", f"extensions = [{', '.join(map(q, store.pool))}]", ""]
    for number, name in store.names.items():
        lines += [f"[extensions.{q(number)}]", f"node = {q(store.node(number))}",
                  f"ring_timeout = {RING_TIMEOUT}"]
        if name is not None:
            lines.append(f"name = {q(name)}")
        phones = sorted((p for p in store.phones if p.ext == number), key=lambda p: p.position)
        lines.append("phones = [")
        for p in phones:
            assert not p.secure, "secure phones get keys nobody can map back: use build()"
            lines.append(f"    {{ position = {p.position}, model = {q(p.model)}, "
                         f"order = {p.order}, enabled = {str(p.enabled).lower()} }},")
        lines += ["]", ""]
    for user in store.users:
        lines += [f"[users.{q(user.username)}]", f"name = {q(user.name)}",
                  f"login = {q(user.login)}"]
        if user.mode:
            lines.append(f"webcall_mode = {q(user.mode)}")
        if user.own:
            lines.append(f"webcall_extensions = [{', '.join(map(q, user.own))}]")
        if user.group:
            lines.append('webcall_group = "pool"')
        if user.webcall_position is not None:
            lines.append(f"webcall_position = {user.webcall_position}")
        lines.append("")
    return "\n".join(lines)


def build_store(pbx: Pbx, store: Store, later: tuple[str, ...] = ()) -> dict[str, str]:
    """Make the store with `mtctl apply`, and give a password (`phone set-password`) to every
    registered phone and to the phones named in LATER; returns phone key -> password."""
    path = pbx.workdir / "store.toml"
    path.write_text(store_toml(store), encoding="utf-8")
    pbx.mtctl.ok("apply", str(path))
    secrets: dict[str, str] = {}
    for phone in store.phones:
        if not phone.registered and phone.key not in later:
            continue
        secrets[phone.key] = admin_password()
        pbx.mtctl.ok("phone", "set-password", phone.ext, str(phone.position),
                     "--password-stdin", input=secrets[phone.key] + "\n")
    return secrets


@dataclass
class Online:
    """The store's phones as SIPp processes that answer every call busy, registered once."""

    auth: dict[str, str]  # phone key -> SIP auth user
    procs: dict[str, harness.Sipp]


def bring_online(pbx: Pbx, store: Store, secrets: dict[str, str],
                 phones: list[Phone] | None = None, online: Online | None = None) -> Online:
    """Start and register PHONES (default: every registered phone of the store)."""
    if online is None:
        auth = {f"{p['extension']}:{p['position']}": p["sip_auth_user"]
                for p in json.loads(pbx.mtctl.ok("phone", "list", "--json").stdout)}
        online = Online(auth, {})
    wanted = [p for p in (phones if phones is not None else store.phones) if p.registered]
    for p in wanted:
        online.procs[p.key] = pbx.sipp.start(f"phone-{p.key.replace(':', '-')}",
                                             "phone_busy.xml", "-m", "1000", life=300)
    for node in sorted({store.node(p.ext) for p in wanted}):
        # node by node: each phone at its extension's node (one SQLite writer at a time)
        contacts = [(online.auth[p.key], secrets[p.key], pbx.sipp.port_of(online.procs[p.key]))
                    for p in wanted if store.node(p.ext) == node]
        outcome = harness.register(pbx.sipp, pbx.port_of(node), pbx.domain, contacts,
                                   name=f"register-{len(online.procs)}-{node}")
        assert outcome == {user: "registered" for user, _, _ in contacts}, \
            (outcome, pbx.log_tail())
    return online


def what_if_flags(store: Store, number: str) -> list[str]:
    """ring-sim flags for the registrations and sessions of STORE, as SPEC §3 defines them."""
    args = [a for p in store.phones if not p.registered for a in ("--offline", p.key)]
    user = store.user_of(number)
    if user is None or user.mode is None:
        return args
    if user.mode == "multiterminal":
        return args + (["--webcall-running"] if store.webcall_registered(number) else [])
    session = store.sessions.get(user.username)
    counted = [session] if session in user.session_extensions(store.pool) else []
    counted += user.own  # an own Web Call extension runs on registration alone
    running = next((n for n in counted if store.webcall_registered(n)), None)
    return args + (["--webcall-running", "--webcall-ext", running] if running else [])


def ring_sim(pbx: Pbx, number: str, *flags: str) -> dict:
    return json.loads(pbx.mtctl.ok("ring-sim", number, "--json", *flags).stdout)


def call_agrees(pbx: Pbx, store: Store, online: Online, number: str,
                port: int | None = None) -> dict:
    """Call NUMBER (at PORT, default the Kamailio of NUMBER's node): Kamailio's INVITEs by
    stage and its P-Asserted-Identity are ring-sim's, ring-sim --live equals ring-sim with
    the what-if flags, and --live names the node each ringing phone is registered at.
    Returns the plan."""
    plan = ring_sim(pbx, number, *what_if_flags(store, number))
    live = ring_sim(pbx, number, "--live")
    registrations = live.pop("registrations")
    user = store.user_of(number)
    assert live.pop("webcall_session") == (store.sessions.get(user.username) if user else None)
    assert live == plan, ("ring-sim --live disagrees with ring-sim", number, store.sessions,
                          what_if_flags(store, number))
    ringing = {(p["extension"], p["position"]) for s in plan["stages"] for p in s["phones"]}
    held = {(r["extension"], r["position"]): r["node"] for r in registrations}
    assert {key: held.get(key) for key in ringing} == \
        {key: pbx.registrar(store.node(key[0])) for key in ringing}, registrations
    started = time.time() * 1000
    entry = pbx.port_of(store.node(number)) if port is None else port
    result = harness.call(pbx.sipp, entry, pbx.domain, number,
                          name=f"caller-{number}-{entry}-{int(started)}")
    reached = {user: key for key, user in online.auth.items()}
    invited = [(ms, user) for sipp in online.procs.values() for ms, user in harness.invites(sipp)
               if ms >= started - 50]
    observed = [{reached[u] for u in group} for group in clusters(invited)]
    expected = stages_of(plan)
    assert observed == [set(stage) for stage in expected], \
        (number, store.sessions, expected, observed, result.responses)
    assert result.final == (486 if expected else 480), (result.responses, result.output[-1500:])
    assert_recorded(pbx.mtctl, number, started, observed)
    pai = f"{quoted(plan['display_name'])} <sip:{number}@{pbx.domain}>"
    shown = [(code, header) for code, header in result.responses if code != 100]
    assert shown and all(header == pai for _, header in shown), (pai, shown)
    return plan
