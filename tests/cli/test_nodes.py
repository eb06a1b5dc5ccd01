"""Nodes are servers (SPEC §8): their SIP address, `node show|set|rm`, moving an extension
(its registrations go in the same transaction), registrations with their node, the per-node
Kamailio export and the proxy a provisioned phone is given."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mtctl.domain.nodes import parse_sip_address, phone_proxy
from mtctl.errors import UsageError
from tests.cli.test_schemas import validate
from tests.conftest import Mtctl
from tests.dump import assert_refused, dump_store


def plant_registration(url: str, auth_user: str, node: str | None) -> None:
    """A location row as a node's Kamailio writes it (server_id = the node's id)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            server_id = 0 if node is None else conn.execute(
                text("SELECT id FROM node WHERE name = :n"), {"n": node}).scalar_one()
            conn.execute(text(
                "INSERT INTO location (ruid, username, contact, expires, last_modified, "
                "user_agent, server_id) VALUES (:ruid, :user, :contact, :expires, :modified, "
                "'Yealink', :server)"),
                {"ruid": f"uloc-{auth_user}-{node}", "user": auth_user,
                 "contact": f"sip:{auth_user}@192.0.2.1:5060", "server": server_id,
                 "expires": int(time.time()) + 300, "modified": int(time.time())})
    finally:
        engine.dispose()


def location_users(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT username FROM location")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize(("text_", "shown"), [
    ("127.0.0.1:5060", "127.0.0.1:5060"),
    ("PBX-1.Example.com:5070", "pbx-1.example.com:5070"),
    ("[2001:db8::1]:5060", "[2001:db8::1]:5060"),
    ("localhost:65535", "localhost:65535"),
])
def test_sip_addresses_are_host_and_port(text_: str, shown: str) -> None:
    assert str(parse_sip_address(text_)) == shown


@pytest.mark.parametrize("bad", [
    "", "pbx.example.com", ":5060", "pbx:0", "pbx:65536", "pbx:5o60", "pbx:123456",
    "300.1.1.1:5060", "pb x:5060", "pbx\n:5060", "pbx.ex\u00e1mple.com:5060",
    "[::g]:5060", "2001:db8::1:5060", "-pbx:5060", "a" * 300 + ":5060", "sip:pbx:5060",
])
def test_bad_sip_addresses_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_sip_address(bad)
    assert "HOST:PORT" in (caught.value.hint or "")


def test_loopback_addresses() -> None:
    assert parse_sip_address("127.0.0.2:5060").is_loopback
    assert parse_sip_address("[::1]:5060").is_loopback
    assert parse_sip_address("localhost:5060").is_loopback
    assert not parse_sip_address("192.0.2.1:5060").is_loopback


def test_a_phone_is_provisioned_with_its_node_and_a_publishable_one_with_the_edge() -> None:
    edge = "sip:edge.example.com"
    common = {"edge": edge, "site_proxy": "sip:pbx.example.com:5060",
              "domain": "example.com"}
    assert phone_proxy(publishable=False, node_address="192.0.2.10:5070", **common) == \
        "sip:192.0.2.10:5070"
    assert phone_proxy(publishable=False, node_address=None, **common) == \
        "sip:pbx.example.com:5060"
    assert phone_proxy(publishable=True, node_address="192.0.2.10:5070", **common) == \
        "sip:edge.example.com;transport=tls"
    assert phone_proxy(publishable=True, node_address="192.0.2.10:5070", edge=None,
                       site_proxy=None, domain="example.com") is None
    assert phone_proxy(publishable=False, node_address=None, edge=None, site_proxy=None,
                       domain="example.com") == "sip:example.com"


def test_node_add_set_show_list_and_rm(mtctl: Mtctl) -> None:
    mtctl.ok("node", "add", "madrid", "--sip-address", "192.0.2.10:5060")
    mtctl.ok("node", "add", "lima")
    shown = json.loads(mtctl.ok("node", "show", "madrid", "--json").stdout)
    validate("node-show", shown)
    assert shown == {"name": "madrid", "sip_address": "192.0.2.10:5060", "extensions": 0,
                     "phones": 0, "registered": 0}
    assert json.loads(mtctl.ok("node", "list", "--json").stdout) == [
        {"name": "lima", "sip_address": None, "extensions": 0},
        {"name": "madrid", "sip_address": "192.0.2.10:5060", "extensions": 0}]
    r = mtctl.ok("node", "set", "lima", "--sip-address", "[2001:DB8::5]:5070")
    assert "updated node lima" in r.stderr
    assert "nothing to change" in mtctl.ok("node", "set", "lima", "--sip-address",
                                            "[2001:db8::5]:5070").stderr
    mtctl.ok("node", "set", "madrid", "--sip-address", "")
    assert [(n["name"], n["sip_address"]) for n in
            json.loads(mtctl.ok("node", "list", "--json").stdout)] == [
        ("lima", "[2001:db8::5]:5070"), ("madrid", None)]
    audit = json.loads(mtctl.ok("audit", "--json").stdout)
    assert [(a["action"], a["object"], a["changes"]) for a in audit
            if a["object"] == "node madrid"][-1] == \
        ("set", "node madrid", {"sip_address": ["192.0.2.10:5060", None]})
    mtctl.ok("node", "rm", "lima")
    assert "lima" not in mtctl.ok("node", "list").stdout


def test_node_refusals_change_nothing(seeded: Mtctl) -> None:
    for args, code in [
        (("node", "add", "lima", "--sip-address", "lima"), 2),
        (("node", "add", "lima", "--sip-address", "10.0.0.1:99999"), 2),
        (("node", "set", "madrid", "--sip-address", "x y:1"), 2),
        (("node", "set", "madrid"), 2),
        (("node", "set", "nowhere", "--sip-address", "10.0.0.1:5060"), 3),
        (("node", "show", "nowhere"), 3),
        (("node", "rm", "madrid"), 4),
    ]:
        assert_refused(seeded, *args, exit_code=code)


def test_node_rm_names_the_extensions_that_live_there(seeded: Mtctl) -> None:
    r = assert_refused(seeded, "node", "rm", "madrid", exit_code=4)
    assert "node 'madrid' is still used by extension 40710" in r.stderr
    assert "mtctl ext set NUMBER --node OTHER" in r.stderr


def test_moving_an_extension_drops_its_registrations_in_the_same_transaction(seeded: Mtctl) -> None:
    seeded.ok("node", "add", "lima")
    seeded.ok("ext", "add", "40720", "--node", "madrid")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", "Generic SIP hardphone")
    plant_registration(seeded.url, "40710-0", "madrid")
    plant_registration(seeded.url, "40720-0", "madrid")
    assert json.loads(seeded.ok("phone", "show", "40710", "0", "--json").stdout)[
        "registered_at"] == "madrid"
    shown = json.loads(seeded.ok("node", "show", "madrid", "--json").stdout)
    assert (shown["extensions"], shown["registered"]) == (2, 2)

    seeded.ok("ext", "set", "40710", "--node", "lima")
    assert location_users(seeded.url) == ["40720-0"]  # only the moved extension's phones
    phone = json.loads(seeded.ok("phone", "show", "40710", "0", "--json").stdout)
    validate("phone-show", phone)
    assert (phone["node"], phone["registered_at"]) == ("lima", None)

    # a refused move (unknown node) keeps them
    plant_registration(seeded.url, "40710-0", "lima")
    before = dump_store(seeded.url)
    assert_refused(seeded, "ext", "set", "40710", "--node", "nowhere", exit_code=3)
    assert dump_store(seeded.url) == before
    # setting the node it already lives on is no move
    seeded.ok("ext", "set", "40710", "--node", "lima")
    assert location_users(seeded.url) == ["40710-0", "40720-0"]


def test_apply_moving_an_extension_drops_its_registrations(seeded: Mtctl, tmp_path: Path) -> None:
    seeded.ok("node", "add", "lima")
    plant_registration(seeded.url, "40710-0", "madrid")
    exported = seeded.ok("export").stdout
    moved = exported.replace('node = "madrid"', 'node = "lima"')
    assert moved != exported
    path = tmp_path / "pbx.toml"
    path.write_text(moved, encoding="utf-8")
    seeded.ok("apply", str(path))
    assert location_users(seeded.url) == []
    assert json.loads(seeded.ok("ext", "show", "40710", "--json").stdout)["node"] == "lima"


def test_ring_sim_live_names_the_node_holding_each_registration(seeded: Mtctl) -> None:
    plant_registration(seeded.url, "40710-0", "madrid")
    plan = json.loads(seeded.ok("ring-sim", "40710", "--live", "--json").stdout)
    validate("ring-sim-live", plan)
    assert [(r["extension"], r["position"], r["node"], r["user_agent"])
            for r in plan["registrations"]] == [("40710", 0, "madrid", "Yealink")]
    text_ = seeded.ok("ring-sim", "40710", "--live", "--format", "table").stdout
    assert "registered at node madrid" in " ".join(text_.split())
    # the single-proxy export writes server_id 0: no node
    plant_registration(seeded.url, "40710-1", None)
    plan = json.loads(seeded.ok("ring-sim", "40710", "--live", "--json").stdout)
    assert {r["position"]: r["node"] for r in plan["registrations"]} == {0: "madrid", 1: None}
    assert json.loads(seeded.ok("phone", "show", "40710", "1", "--json").stdout)[
        "registered_at"] == ""


def test_export_kamailio_for_a_node(seeded: Mtctl, tmp_path: Path) -> None:
    seeded.ok("node", "set", "madrid", "--sip-address", "127.0.0.1:5071")
    out = tmp_path / "k"
    seeded.ok("export", "kamailio", "--node", "madrid", "--out", str(out))
    cfg = (out / "kamailio.cfg").read_text()
    assert "#!define MT_NODE\n#!define MT_NODE_ID " in cfg
    assert "udp:127.0.0.1:5071" in cfg and "@@" not in cfg
    readme = (out / "README.md").read_text()
    assert "## Node madrid of a cluster" in readme and "127.0.0.1:5071" in readme
    # without --node: the single-proxy export, no node defined
    seeded.ok("export", "kamailio", "--out", str(tmp_path / "single"))
    single = (tmp_path / "single" / "kamailio.cfg").read_text()
    assert "#!define MT_NODE" not in single and "udp:127.0.0.1:5060" in single


def test_export_kamailio_node_refusals_write_nothing(seeded: Mtctl, tmp_path: Path) -> None:
    out = tmp_path / "k"
    r = assert_refused(seeded, "export", "kamailio", "--node", "madrid", "--out", str(out),
                       exit_code=2)
    assert "has no SIP address" in r.stderr and "mtctl node set madrid" in r.stderr
    assert_refused(seeded, "export", "kamailio", "--node", "nowhere", "--out", str(out),
                   exit_code=3)
    seeded.ok("node", "set", "madrid", "--sip-address", "127.0.0.1:5071")
    r = assert_refused(seeded, "export", "kamailio", "--node", "madrid", "--listen",
                       "udp:127.0.0.1:5072", "--out", str(out), exit_code=2)
    assert "--listen and --node" in r.stderr
    assert not out.exists()


def test_sqlite_is_refused_for_nodes_on_several_hosts(seeded: Mtctl, tmp_path: Path,
                                                      backend: str) -> None:
    seeded.ok("node", "set", "madrid", "--sip-address", "192.0.2.10:5060")
    seeded.ok("node", "add", "lima", "--sip-address", "192.0.2.11:5060")
    out = tmp_path / "k"
    if backend == "sqlite":
        r = assert_refused(seeded, "export", "kamailio", "--node", "madrid", "--out", str(out),
                           exit_code=2)
        assert "more than one host" in r.stderr and "PostgreSQL" in r.stderr
        assert not out.exists()
        # every node on one host: SQLite is fine
        seeded.ok("node", "set", "lima", "--sip-address", "192.0.2.10:5070")
    seeded.ok("export", "kamailio", "--node", "madrid", "--out", str(out))
    assert (out / "kamailio.cfg").exists()


def test_the_node_queries_of_the_cluster_config_name_each_numbers_and_phones_node(
        seeded: Mtctl) -> None:
    """The SQL a node's Kamailio runs (route NODE_RELAY and NODE_OF_PHONE of the template),
    run against the store: every number and every phone maps to its extension's node and
    that node's address, also after a move; an unknown one maps to nothing."""
    import re
    from importlib import resources

    template = resources.files("mtctl.formats").joinpath("kamailio.cfg.tmpl").read_text()
    queries = [q for q in re.findall(r'sql_xquery\("mt", "((?:[^"\\]|\\.)*)", "nd"\)', template)]
    by_phone, by_number = sorted(queries, key=lambda q: "phone_node" not in q)
    seeded.ok("node", "add", "lima", "--sip-address", "192.0.2.20:5060")
    seeded.ok("ext", "add", "50100", "--node", "lima")
    seeded.ok("phone", "add", "50100", "--position", "3", "--model", "Generic SIP hardphone")
    engine = create_engine(seeded.url)

    def run(query: str, var: str, value: str) -> list[tuple[object, ...]]:
        # values reach these queries checked: $rU is digits, $au passed authentication
        sql = query.replace(f"$({var}{{s.escape.common}})", value)
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]

    def node_id(name: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT id FROM node WHERE name = :n"),
                                    {"n": name}).scalar_one())

    try:
        for _ in range(2):
            phones = json.loads(seeded.ok("phone", "list", "--json").stdout)
            addresses = {n["name"]: n["sip_address"]
                         for n in json.loads(seeded.ok("node", "list", "--json").stdout)}
            for p in phones:
                assert run(by_phone, "var(au)", p["sip_auth_user"]) == [
                    (node_id(p["node"]), p["node"], addresses[p["node"]])]
            for e in json.loads(seeded.ok("ext", "list", "--json").stdout):
                assert run(by_number, "rU", e["number"]) == [
                    (node_id(e["node"]), e["node"], addresses[e["node"]])]
            seeded.ok("ext", "set", "40710", "--node", "lima")
        assert run(by_number, "rU", "999") == [] and run(by_phone, "var(au)", "nobody-0") == []
    finally:
        engine.dispose()


def test_apply_and_export_carry_node_addresses(seeded: Mtctl, tmp_path: Path) -> None:
    """Without addresses the export lists node names as before; with one, nodes are a table
    with their addresses, and apply of that export changes nothing (round trip)."""
    assert 'nodes = [\n    "madrid",\n]' in seeded.ok("export").stdout
    seeded.ok("node", "set", "madrid", "--sip-address", "192.0.2.10:5060")
    seeded.ok("node", "add", "lima")
    exported = seeded.ok("export").stdout
    assert '[nodes.madrid]\nsip_address = "192.0.2.10:5060"\n' in exported
    assert "[nodes.lima]\n" in exported
    path = tmp_path / "pbx.toml"
    path.write_text(exported, encoding="utf-8")
    r = seeded("apply", str(path), "--dry-run", "--detailed-exitcode")
    assert r.exit_code == 0, r.output

    path.write_text(exported.replace("192.0.2.10:5060", "[2001:DB8::1]:5070")
                    + '\n[nodes.quito]\nsip_address = "quito.example.com:5060"\n',
                    encoding="utf-8")
    plan = json.loads(seeded.ok("apply", str(path), "--dry-run", "--json").stdout)
    assert {(c["action"], c["object"], json.dumps(c["fields"])) for c in plan["changes"]} == {
        ("change", "node madrid",
         json.dumps({"sip_address": ["192.0.2.10:5060", "[2001:db8::1]:5070"]})),
        ("add", "node quito", json.dumps({"sip_address": "quito.example.com:5060"}))}
    seeded.ok("apply", str(path))
    assert {n["name"]: n["sip_address"] for n in
            json.loads(seeded.ok("node", "list", "--json").stdout)} == {
        "lima": None, "madrid": "[2001:db8::1]:5070", "quito": "quito.example.com:5060"}

    # a list of names leaves the addresses as they are
    path.write_text('nodes = ["madrid", "lima", "quito"]\n', encoding="utf-8")
    assert seeded("apply", str(path), "--dry-run", "--detailed-exitcode").exit_code == 0
    # in a table, a node without sip_address has none
    path.write_text("[nodes.madrid]\n[nodes.lima]\n[nodes.quito]\n", encoding="utf-8")
    seeded.ok("apply", str(path))
    assert {n["sip_address"] for n in
            json.loads(seeded.ok("node", "list", "--json").stdout)} == {None}


@pytest.mark.parametrize(("body", "where", "message"), [
    ('[nodes.madrid]\nsip_address = "madrid"\n', "nodes.madrid.sip_address", "has no port"),
    ('[nodes.madrid]\nsip_address = "10.0.0.1:0"\n', "nodes.madrid.sip_address",
     "is not 1–65535"),
    ('[nodes.madrid]\nsip_address = 5060\n', "nodes.madrid.sip_address", "string"),
    ('[nodes.madrid]\naddress = "10.0.0.1:5060"\n', "nodes.madrid.address", "unknown key"),
    ('nodes = "madrid"\n', "nodes", "should be a valid list"),
])
def test_bad_node_tables_are_located_problems(seeded: Mtctl, tmp_path: Path, body: str,
                                              where: str, message: str) -> None:
    path = tmp_path / "pbx.toml"
    path.write_text(body, encoding="utf-8")
    before = dump_store(seeded.url)
    r = seeded("apply", str(path))
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "pbx.toml:" in r.stderr and where in r.stderr and message in r.stderr, r.stderr
    assert "1 problem(s)" in r.stderr and dump_store(seeded.url) == before


def test_check_warns_of_a_web_call_extension_on_another_node_in_a_cluster(seeded: Mtctl
                                                                         ) -> None:
    seeded.ok("node", "add", "lima")
    seeded.ok("ext", "add", "40720", "--node", "madrid")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", "Generic SIP hardphone")
    seeded.ok("ext", "add", "40790", "--node", "lima")
    seeded.ok("phone", "add", "40790", "--position", "0", "--model", "VIVAit Call Web")
    seeded.ok("user", "add", "bob", "--name", "Bob", "--login", "40720", "--webcall-mode",
              "exclusive", "--webcall-ext", "40790")

    def node_warnings() -> list[dict[str, str]]:
        r = seeded("check", "--json")
        assert r.exit_code == 0, r.output  # warnings only
        return [w for w in json.loads(r.stdout)["warnings"]
                if w["rule"] == "webcall-other-node"]

    assert node_warnings() == []  # nodes without addresses: one proxy serves them all
    seeded.ok("node", "set", "lima", "--sip-address", "192.0.2.20:5060")
    [warning] = node_warnings()
    assert warning["object"] == "user bob" and "40790 lives on node lima" in warning["message"]
    seeded.ok("ext", "set", "40790", "--node", "madrid")
    assert node_warnings() == []


def test_two_nodes_cannot_share_a_sip_address(seeded: Mtctl, tmp_path: Path) -> None:
    """Each node runs its own Kamailio on its own address; a second node given the first's
    (a copy-paste in a loopback cluster) could not start, and the calls relayed to it would
    reach the first node, which answers them 503."""
    seeded.ok("node", "set", "madrid", "--sip-address", "127.0.0.1:5060")
    r = assert_refused(seeded, "node", "add", "lima", "--sip-address", "127.0.0.1:5060",
                       exit_code=4)
    assert "node madrid" in r.stderr
    seeded.ok("node", "add", "lima", "--sip-address", "127.0.0.1:5061")
    assert_refused(seeded, "node", "set", "lima", "--sip-address", "127.0.0.1:5060",
                   exit_code=4)
    seeded.ok("node", "set", "madrid", "--sip-address", "127.0.0.1:5060")  # its own: no-op
    path = tmp_path / "pbx.toml"
    path.write_text('[nodes.madrid]\nsip_address = "127.0.0.1:5060"\n\n'
                    '[nodes.quito]\nsip_address = "127.0.0.1:5060"\n', encoding="utf-8")
    before = dump_store(seeded.url)
    r = seeded("apply", str(path))
    assert r.exit_code == 1, r.output
    assert r.stderr.count("mtctl: error: ") == 1, r.stderr
    assert ":5: nodes.quito.sip_address: SIP address 127.0.0.1:5060 is node madrid's" in r.stderr
    assert dump_store(seeded.url) == before
