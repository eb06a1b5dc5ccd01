"""A 3-node cluster on loopback (SPEC §8): three Kamailio, each running `mtctl export kamailio
--node`, over one store (PostgreSQL in CI; SQLite too, every node being on this host).

- Random stores spread over the nodes: a call entering at every node for numbers living on
  every node rings exactly what `ring-sim` (given who is registered and which Web Call
  sessions are open) and `ring-sim --live` say, stage by stage, with ring-sim's display name;
  `ring-sim --live` names the node each phone is registered at.
- A phone registering at a node its extension does not live on is refused (403) with a
  reason naming the right node.
- `ext set NUMBER --node OTHER` moves where the extension's phones can register: their
  registrations are gone at once, the old node refuses them, the new node accepts them, and
  a call entering at the old node rings them at the new one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Mtctl
from tests.e2e import harness
from tests.e2e.conftest import DOMAIN, Pbx, admin_password
from tests.e2e.pools import Store, bring_online, build_store, call_agrees
from tests.e2e.test_pool_agreement import change_sessions, random_store
from tests.e2e.test_ring_agreement import Phone

NODES = ("n1", "n2", "n3")
STORES = 30
CALLS = 3


@dataclass
class Cluster(Pbx):
    """Three Kamailio over one store; Pbx's kamailio is n1's."""

    nodes: dict[str, harness.Kamailio] = field(default_factory=dict)

    def port_of(self, node: str) -> int:
        return self.nodes[node].port

    def registrar(self, node: str) -> str | None:
        return node

    def errors(self) -> list[str]:
        return [f"{name}: {line}" for name, kam in self.nodes.items() for line in kam.errors()]

    def log_tail(self) -> str:
        return "\n".join(f"--- {name}\n{kam.log_text()[-1500:]}" for name, kam in
                         self.nodes.items())


@pytest.fixture
def cluster(mtctl: Mtctl, tmp_path: Path) -> Iterator[Cluster]:
    from mtctl.formats.kamailio import kamailio_db

    mtctl.ok("config", "set", "sip.domain", DOMAIN)
    env = kamailio_db(mtctl.url, cwd=Path.cwd()).env
    ports = {name: harness.free_udp_port() for name in NODES}
    for name, port in ports.items():
        mtctl.ok("node", "add", name, "--sip-address", f"127.0.0.1:{port}")
    runner = harness.SippRunner(tmp_path)
    try:
        with ExitStack() as stack:
            nodes = {name: start_node(stack, mtctl, name, port, env, tmp_path / name)
                     for name, port in ports.items()}
            cluster = Cluster(mtctl, nodes["n1"], runner, tmp_path, nodes=nodes)
            yield cluster
            assert not cluster.errors(), "\n".join(cluster.errors())
    finally:
        runner.stop_all()


def start_node(stack: ExitStack, mtctl: Mtctl, name: str, port: int, env: dict[str, str],
               workdir: Path) -> harness.Kamailio:
    """Export NAME's config and run it; when another program took the node's port meanwhile,
    give the node another address and start again (the other nodes read it from the store)."""
    for attempt in range(3):
        out = workdir / f"kamailio-{attempt}"
        mtctl.ok("export", "kamailio", "--node", name, "--out", str(out))
        try:
            return stack.enter_context(harness.kamailio(out / "kamailio.cfg", port, env,
                                                        out))
        except AssertionError as exc:
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
        port = harness.free_udp_port()
        mtctl.ok("node", "set", name, "--sip-address", f"127.0.0.1:{port}")
    raise AssertionError("unreachable")


def spread(store: Store, rng: random.Random) -> None:
    """Put the store's extensions on the nodes: the Web Call pool and the users drawing from
    it on one node, every other user (with its own Web Call extensions) and plain extension
    on any node."""
    pool_node = rng.choice(NODES)
    for number in store.pool:
        store.node_of[number] = pool_node
    for user in store.users:
        node = pool_node if user.group else rng.choice(NODES)
        for number in [user.login, *user.own]:
            store.node_of[number] = node
    for number in store.names:
        store.node_of.setdefault(number, rng.choice(NODES))


@pytest.mark.parametrize("seed", range(1, STORES + 1))
def test_calls_entering_at_every_node_ring_as_ring_sim_says(cluster: Cluster, seed: int) -> None:
    store = random_store(seed)
    rng = random.Random(1000 + seed)
    spread(store, rng)
    online = bring_online(cluster, store, build_store(cluster, store))
    numbers = [u.login for u in store.users] + [n for n in store.names if n.startswith("5")]
    entries = list(NODES)
    rng.shuffle(entries)
    for entry in entries[:CALLS]:
        change_sessions(cluster, store, rng)
        number = rng.choice(numbers)
        call_agrees(cluster, store, online, number, port=cluster.port_of(entry))


def _register(cluster: Cluster, node: str, auth_user: str, password: str,
              contact_port: int, name: str) -> tuple[str, str]:
    started = cluster.sipp.start(
        name, "register.xml", "-s", auth_user, "-au", auth_user, "-ap", password, "-m", "1",
        "-timeout", "10s", "-timeout_error", remote=f"{harness.HOST}:{cluster.port_of(node)}",
        keys={"domain": cluster.domain, "contact_port": str(contact_port), "expires": "300"},
        life=15)
    return harness.refusals([started], cluster.sipp)[auth_user]


def refused_by(node: str, address: str) -> str:
    """What register.xml reports of a node refusing a phone that belongs to NODE."""
    return f"SIP/2.0 403 Wrong node: register at node {node} ({address}) (X-Mtctl-Node: {node})"


def _phone_show(cluster: Cluster, number: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(
        cluster.mtctl.ok("phone", "show", number, "0", "--json").stdout)
    return shown


def test_wrong_node_is_refused_naming_the_right_one_and_a_move_moves_registration(
        cluster: Cluster) -> None:
    mtctl = cluster.mtctl
    mtctl.ok("ext", "add", "700", "--node", "n2", "--name", "Moving desk", "--ring-timeout", "1")
    mtctl.ok("phone", "add", "700", "--position", "0", "--model", "Generic SIP hardphone")
    password = admin_password()
    mtctl.ok("phone", "set-password", "700", "0", "--password-stdin", input=password + "\n")
    auth = _phone_show(cluster, "700")["sip_auth_user"]
    phone = cluster.sipp.start("phone-700", "phone_busy.xml", "-m", "100", life=120)
    contact = cluster.sipp.port_of(phone)
    n2 = f"127.0.0.1:{cluster.port_of('n2')}"
    n3 = f"127.0.0.1:{cluster.port_of('n3')}"

    for wrong in ("n1", "n3"):
        word, detail = _register(cluster, wrong, auth, password, contact, f"reg-{wrong}")
        assert word == "refused", detail
        assert detail == refused_by("n2", n2), detail
    assert _phone_show(cluster, "700")["registered_at"] is None
    assert _register(cluster, "n2", auth, password, contact, "reg-n2") == ("registered", "")
    assert _phone_show(cluster, "700")["registered_at"] == "n2"
    node_n2 = json.loads(mtctl.ok("node", "show", "n2", "--json").stdout)
    assert (node_n2["extensions"], node_n2["registered"]) == (1, 1)

    # the move: the registration at n2 is gone in the same transaction
    mtctl.ok("ext", "set", "700", "--node", "n3")
    assert _phone_show(cluster, "700")["registered_at"] is None
    plan = json.loads(mtctl.ok("ring-sim", "700", "--live", "--json").stdout)
    assert plan["outcome"] == "silent" and plan["registrations"] == [], plan
    result = harness.call(cluster.sipp, cluster.port_of("n1"), cluster.domain, "700",
                          name="caller-moved-unregistered")
    assert result.final == 480, result.responses  # n1 relays to n3, where nothing is there

    word, detail = _register(cluster, "n2", auth, password, contact, "reg-n2-again")
    assert (word, detail) == ("refused", refused_by("n3", n3))
    assert _register(cluster, "n3", auth, password, contact, "reg-n3") == ("registered", "")
    assert _phone_show(cluster, "700")["registered_at"] == "n3"

    # a call entering at the old node is relayed to the new one, which rings the phone
    for entry in ("n2", "n1", "n3"):
        result = harness.call(cluster.sipp, cluster.port_of(entry), cluster.domain, "700",
                              name=f"caller-moved-{entry}")
        assert result.final == 486, (entry, result.responses)
        assert {pai for code, pai in result.responses if code != 100} == \
            {f'"Moving desk" <sip:700@{cluster.domain}>'}, result.responses
    assert len(harness.invites(phone)) == 3
    live = json.loads(mtctl.ok("ring-sim", "700", "--live", "--json").stdout)
    assert [r["node"] for r in live["registrations"]] == ["n3"]


def test_a_node_relays_with_the_callers_identity(cluster: Cluster) -> None:
    """The INVITE a phone on n3 receives for a call entering at n1 has the caller's From."""
    store = Store(names={"710": "Far desk"}, phones=[Phone("710", 0, "Generic SIP hardphone")],
                  node_of={"710": "n3"})
    online = bring_online(cluster, store, build_store(cluster, store))
    result = harness.call(cluster.sipp, cluster.port_of("n1"), cluster.domain, "710",
                          name="caller-identity")
    assert result.final == 486, result.responses
    froms = [line.split(" ", 2)[2].strip() for line in online.procs["710:0"].lines()
             if line.startswith("FROM ")]
    assert len(froms) == 1 and froms[0].startswith('"Caller" <sip:caller@127.0.0.1:'), froms
