"""`mtctl webcall`: Web Call sessions — one per user and per extension, audited, never stale."""

import json

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.exc import IntegrityError

from mtctl.store.tables import extension, webcall_session
from tests.cli.test_schemas import validate
from tests.dump import assert_refused, plant

WEB = "VIVAit Call Web"


@pytest.fixture
def pool(mtctl):
    """Ana (100) and Bea (200), exclusive on pool 900/901; Cai (300) owns 301 and 302."""
    mtctl.ok("node", "add", "n1")
    for number in ("100", "200", "300", "301", "302", "900", "901"):
        mtctl.ok("ext", "add", number, "--node", "n1")
    for number in ("301", "302", "900", "901"):
        mtctl.ok("phone", "add", number, "--position", "0", "--model", WEB)
    mtctl.ok("group", "add", "pool")
    mtctl.ok("group", "add-ext", "pool", "900", "901")
    for user, login in (("ana", "100"), ("bea", "200")):
        mtctl.ok("user", "add", user, "--name", user.title(), "--login", login,
                 "--webcall-mode", "exclusive", "--webcall-group", "pool")
    mtctl.ok("user", "add", "cai", "--name", "Cai", "--login", "300", "--webcall-mode",
             "exclusive", "--webcall-ext", "301", "--webcall-ext", "302")
    return mtctl


def sessions(mtctl) -> dict[str, str]:
    items = json.loads(mtctl.ok("webcall", "list", "--json").stdout)
    for item in items:
        validate("webcall-session", item)
    return {item["user"]: item["extension"] for item in items}


def test_start_list_stop(pool):
    assert json.loads(pool.ok("webcall", "list", "--json").stdout) == []
    r = pool.ok("webcall", "start", "bea", "--ext", "900")
    assert "started bea's Web Call session on 900" in r.stderr
    started = json.loads(pool.ok("webcall", "start", "ana", "--json").stdout)
    validate("webcall-session", started)
    assert started["extension"] == "901"  # the first free extension of the pool
    assert sessions(pool) == {"ana": "901", "bea": "900"}
    table = pool.ok("webcall", "list").stdout
    assert "ana" in table and "901" in table
    r = pool.ok("webcall", "stop", "bea")
    assert "stopped bea's Web Call session on 900" in r.stderr
    assert sessions(pool) == {"ana": "901"}


def test_one_session_per_pool_extension_and_per_user(pool):
    pool.ok("webcall", "start", "bea", "--ext", "900")
    r = assert_refused(pool, "webcall", "start", "ana", "--ext", "900", exit_code=4)
    assert "900 is in use by bea" in r.stderr
    r = assert_refused(pool, "webcall", "start", "bea", "--ext", "901", exit_code=4)
    assert "already has a Web Call session on 900" in r.stderr
    assert_refused(pool, "webcall", "start", "bea", "--ext", "900", exit_code=4)
    pool.ok("webcall", "start", "ana")  # takes 901, the free one
    assert sessions(pool) == {"ana": "901", "bea": "900"}


def test_a_full_pool_is_a_conflict(pool):
    pool.ok("webcall", "start", "bea", "--ext", "900")
    pool.ok("webcall", "start", "ana", "--ext", "901")
    pool.ok("webcall", "stop", "ana")
    pool.ok("webcall", "start", "cai", "--ext", "301")
    pool.ok("ext", "add", "400", "--node", "n1")
    pool.ok("user", "add", "dan", "--name", "Dan", "--login", "400", "--webcall-mode",
            "exclusive", "--webcall-group", "pool")
    pool.ok("webcall", "start", "ana", "--ext", "901")
    r = assert_refused(pool, "webcall", "start", "dan", exit_code=4)
    assert "every extension of group pool is in use" in r.stderr


def test_refusals_name_the_problem(pool, mtctl):
    r = assert_refused(pool, "webcall", "start", "ana", "--ext", "301", exit_code=3)
    assert "301 is not one of ana's Web Call extensions (900, 901)" in r.stderr
    assert_refused(pool, "webcall", "start", "ana", "--ext", "100", exit_code=3)
    assert_refused(pool, "webcall", "start", "nobody", exit_code=3)
    r = assert_refused(pool, "webcall", "start", "cai", exit_code=2)
    assert "--ext" in r.stderr  # two own extensions: say which
    r = assert_refused(pool, "webcall", "stop", "ana", exit_code=3)
    assert "ana has no Web Call session" in r.stderr
    pool.ok("ext", "add", "500", "--node", "n1")
    pool.ok("user", "add", "eve", "--name", "Eve", "--login", "500")
    r = assert_refused(pool, "webcall", "start", "eve", exit_code=2)
    assert "eve has no Web Call extension" in r.stderr


def test_defaults_one_own_extension_and_multiterminal(seeded):
    # seeded: ana is multiterminal on 40710 with her Web Call at position 1
    assert json.loads(seeded.ok("webcall", "start", "ana", "--json").stdout)["extension"] \
        == "40710"
    seeded.ok("ext", "add", "40720", "--node", "madrid")
    seeded.ok("ext", "add", "40721", "--node", "madrid")
    seeded.ok("phone", "add", "40721", "--position", "0", "--model", WEB)
    seeded.ok("user", "add", "bob", "--name", "Bob", "--login", "40720", "--webcall-mode",
              "exclusive", "--webcall-ext", "40721")
    assert json.loads(seeded.ok("webcall", "start", "bob", "--json").stdout)["extension"] \
        == "40721"


def test_start_and_stop_are_audited_with_user_extension_and_since(pool):
    started = json.loads(pool.ok("webcall", "start", "bea", "--ext", "900", "--json").stdout)
    pool.ok("webcall", "stop", "bea")
    rows = [r for r in json.loads(pool.ok("audit", "--json").stdout)
            if r["object"] == "webcall bea"]
    assert [(r["action"], r["actor"]) for r in rows] == [("start", "tester"),
                                                         ("stop", "tester")]
    fields = {"user": "bea", "extension": "900", "since": started["since"]}
    assert rows[0]["changes"] == {k: [None, v] for k, v in fields.items()}
    assert rows[1]["changes"] == {k: [v, None] for k, v in fields.items()}


def test_changes_that_invalidate_a_session_stop_it_audited(pool):
    pool.ok("webcall", "start", "bea", "--ext", "900")
    pool.ok("webcall", "start", "ana", "--ext", "901")
    pool.ok("webcall", "start", "cai", "--ext", "302")
    pool.ok("group", "add", "other")
    pool.ok("user", "set", "bea", "--webcall-group", "other", "--webcall-ext", "301")
    assert sessions(pool) == {"ana": "901", "cai": "302"}
    pool.ok("user", "set", "cai", "--webcall-ext", "302")  # still one of cai's
    assert sessions(pool) == {"ana": "901", "cai": "302"}
    pool.ok("user", "set", "cai", "--no-webcall")
    pool.ok("user", "rm", "ana")
    assert sessions(pool) == {}
    stops = [(r["object"], r["changes"]["extension"][0])
             for r in json.loads(pool.ok("audit", "--json").stdout) if r["action"] == "stop"]
    assert sorted(stops) == [("webcall ana", "901"), ("webcall bea", "900"),
                             ("webcall cai", "302")]


def test_apply_that_moves_a_user_off_the_pool_stops_the_session(pool, tmp_path):
    pool.ok("webcall", "start", "bea", "--ext", "900")
    pool.ok("webcall", "start", "ana", "--ext", "901")
    path = tmp_path / "bea.toml"
    path.write_text('[users.bea]\nname = "Bea"\nlogin = "200"\nwebcall_mode = "exclusive"\n'
                    'webcall_extensions = ["301"]\n')
    pool.ok("apply", str(path))
    assert sessions(pool) == {"ana": "901"}


def test_the_store_holds_at_most_one_session_per_user_and_extension(pool):
    """Two racing starts cannot both land: the table itself refuses the second."""
    pool.ok("webcall", "start", "bea", "--ext", "900")
    engine = create_engine(pool.url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(webcall_session)).one()
            conn.rollback()
            for values in ({"user_id": row.user_id, "extension_id": row.extension_id + 1},
                           {"user_id": row.user_id + 1, "extension_id": row.extension_id}):
                with pytest.raises(IntegrityError):
                    with conn.begin():
                        conn.execute(webcall_session.insert().values(since=row.since,
                                                                     **values))
    finally:
        engine.dispose()


def test_check_finds_a_session_planted_on_someone_elses_extension(pool):
    pool.ok("webcall", "start", "cai", "--ext", "301")
    assert pool("check").exit_code == 0
    ext_900 = select(extension.c.id).where(extension.c.number == "900").scalar_subquery()
    plant(pool.url, update(webcall_session).values(extension_id=ext_900))
    r = pool("check", "--json")
    assert r.exit_code == 1, r.output
    assert json.loads(r.stdout)["errors"] == [{
        "rule": "webcall-session", "object": "webcall cai",
        "message": "session on 900, which is not one of cai's Web Call extensions",
        "hint": "mtctl webcall stop cai"}]
    assert "error\twebcall-session\twebcall cai\tsession on 900" in pool("check").stdout


def test_ext_rm_of_a_pool_extension_in_use_ends_its_session_audited(pool):
    pool.ok("webcall", "start", "bea", "--ext", "900")
    pool.ok("webcall", "start", "cai", "--ext", "301")
    # an own Web Call extension cannot go while the user names it (MT010), session or not
    assert_refused(pool, "ext", "rm", "301", exit_code=1, rule="MT010")
    pool.ok("ext", "rm", "900")
    assert sessions(pool) == {"cai": "301"}
    stops = [r for r in json.loads(pool.ok("audit", "--json").stdout) if r["action"] == "stop"]
    assert [r["object"] for r in stops] == ["webcall bea"]


def test_apply_that_takes_an_extension_out_of_the_pool_stops_its_session(pool, tmp_path):
    pool.ok("webcall", "start", "bea", "--ext", "900")
    pool.ok("webcall", "start", "ana", "--ext", "901")
    path = tmp_path / "pool.toml"
    path.write_text('[groups.pool]\nextensions = ["901"]\n')
    pool.ok("apply", str(path))
    assert sessions(pool) == {"ana": "901"}
    stops = [r for r in json.loads(pool.ok("audit", "--json").stdout) if r["action"] == "stop"]
    assert [(r["object"], r["actor"]) for r in stops] == [("webcall bea", "tester")]
