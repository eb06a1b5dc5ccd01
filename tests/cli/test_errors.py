"""Bad input: one clear error line with a hint, the SPEC exit code, no change, no traceback.

A refused command changes nothing, so each test tries many bad inputs on one store.
"""

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text
from typer.testing import CliRunner

from mtctl.cli.app import app
from mtctl.store.tables import node
from tests.conftest import Mtctl
from tests.dump import assert_one_line_error, assert_refused, dump_store, plant

GENERIC = "Generic SIP hardphone"


def test_the_dump_sees_every_change_audit_included(seeded):
    before = dump_store(seeded.url)
    seeded.ok("ext", "set", "40710", "--name", "Reception")
    after = dump_store(seeded.url)
    assert after["extension"] != before["extension"]
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    plant(seeded.url, insert(node).values(name="planted"))
    assert dump_store(seeded.url)["node"] != after["node"]


def test_bad_values_are_refused_with_the_spec_exit_code(seeded):
    for args, exit_code in [
        (("ext", "add", "40a10", "--node", "madrid"), 1),
        (("phone", "add", "40710", "--position", "8", "--model", GENERIC), 1),
        (("phone", "add", "40710", "--position=-1", "--model", GENERIC), 1),
        (("phone", "add", "40710", "--position", "2", "--model", GENERIC, "--order=-1"), 1),
        (("phone", "set", "40710", "0", "--order=-1"), 1),
        (("template", "add", "short", "--key-lifetime", "0"), 2),
        (("ext", "add", "40720", "--node", "madrid", "--ring-timeout", "0"), 2),
        (("ext", "set", "40710", "--ring-timeout", "601"), 2),
        (("user", "set", "ana", "--webcall-position", "8"), 2),
        (("config", "set", "sip.domain", "not a host"), 2),
        (("config", "set", "provisioning.base_url", "ftp://x"), 2),
        (("config", "set", "no.such.key", "x"), 2),
        (("user", "add", "bob", "--name", "Bob", "--login", "40710",
          "--webcall-position", "1"), 2),
        (("node", "add", "  "), 2),
    ]:
        assert_refused(seeded, *args, exit_code=exit_code)


def test_unknown_names_are_not_found_and_change_nothing(seeded):
    for args in [
        ("ext", "add", "40720", "--node", "nowhere"),
        ("ext", "set", "40710", "--node", "nowhere"),
        ("phone", "add", "40710", "--position", "2", "--model", "Nokia 3310"),
        ("phone", "add", "40710", "--position", "2", "--model", GENERIC, "--template", "nope"),
        ("phone", "add", "40710", "--position", "2", "--model", GENERIC, "--category", "nope"),
        ("phone", "set", "40710", "0", "--model", "Nokia 3310"),
        ("phone", "set", "40710", "0", "--template", "nope"),
        ("phone", "set", "40710", "0", "--category", "nope"),
        ("phone", "add", "49999", "--position", "0", "--model", GENERIC),
        ("phone", "set", "49999", "0", "--order", "2"),
        ("phone", "set", "40710", "5", "--order", "2"),
        ("phone", "rm", "40710", "5"),
        ("phone", "enable", "49999", "0"),
        ("phone", "disable", "40710", "5"),
        ("ext", "set", "49999", "--name", "x"),
        ("ext", "rm", "49999"),
        ("user", "set", "nobody", "--name", "x"),
        ("user", "set", "ana", "--webcall-group", "nope"),
        ("user", "rm", "nobody"),
        ("group", "add-ext", "nope", "40710"),
        ("node", "rm", "nowhere"),
        ("template", "add", "t", "--category", "nope"),
    ]:
        assert_refused(seeded, *args, exit_code=3)


def test_duplicates_are_conflicts_and_change_nothing(seeded):
    for args in [
        ("ext", "add", "40710", "--node", "madrid"),
        ("user", "add", "ana", "--name", "Ana", "--login", "40710"),
        ("node", "add", "madrid"),
        ("node", "rm", "madrid"),  # still used
        ("model", "add", "Cisco 8841", "--vendor", "Cisco", "--kind", "hardphone"),
        ("template", "add", "webfon"),
    ]:
        assert_refused(seeded, *args, exit_code=4)


def test_looking_up_something_unknown_is_not_found(seeded):
    for args in [
        ("ext", "show", "49999"),
        ("phone", "list", "49999"),
        ("phone", "show", "49999", "0"),
        ("phone", "show", "40710", "5"),
        ("user", "show", "nobody"),
        ("user", "phones", "nobody"),
        ("ext", "list", "--node", "nowhere"),
        ("config", "get", "provisioning.base_url"),
    ]:
        r = seeded(*args)
        assert r.exit_code == 3, (args, r.output)
        assert_one_line_error(r)
    r = seeded("ext", "show", "49999")
    assert r.stderr.strip() == "mtctl: error: unknown extension '49999' — see: mtctl ext list"


def test_parser_usage_errors_exit_2_and_change_nothing(seeded):
    before = dump_store(seeded.url)
    for args, mentions in [
        (("phone", "add", "40710", "--position", "two", "--model", GENERIC), "--position"),
        (("phone", "add", "40710", "--model", GENERIC), "--position"),
        (("user", "add", "bob", "--name", "Bob", "--login", "40710", "--webcall-mode", "solo"),
         "--webcall-mode"),
        (("model", "add", "X", "--vendor", "Y", "--kind", "fax"), "--kind"),
        (("phone", "nosuchcommand",), "nosuchcommand"),
    ]:
        r = seeded(*args)
        assert r.exit_code == 2, (args, r.output)
        assert_one_line_error(r)
        assert mentions in r.stderr, (args, r.stderr)
    assert dump_store(seeded.url) == before


@pytest.mark.parametrize(("args", "line"), [
    (("ext", "list", "--bogus"), "no such option: --bogus — see: mtctl ext list --help"),
    (("--bogus",), "no such option: --bogus — see: mtctl --help"),
    (("ext", "lst"), "no such command 'lst'. Did you mean 'list', 'set'? — see: mtctl ext --help"),
    (("phone", "show"), "missing argument 'EXT' — see: mtctl phone show --help"),
    (("phone", "show", "40710", "0", "9"), "got unexpected extra argument(s) (9) — see: mtctl "
     "phone show --help"),
    (("ext", "list", "--format", "xml"), "invalid value for '--format': 'xml' is not one of "
     "'table', 'plain', 'json', 'ndjson', 'csv', 'tsv' — see: mtctl ext list --help"),
    (("keys", "rotate", "--within"), "option '--within' requires an argument — see: mtctl "
     "keys rotate --help"),
])
def test_clicks_own_usage_errors_are_one_line_with_the_command_to_ask(seeded, args, line):
    """An unknown option or command, a missing or extra argument: Click printed four lines
    (usage, "Try ...", a blank line, "Error: ..."); mtctl's errors are one line with a hint."""
    r = seeded(*args)
    assert r.exit_code == 2, (args, r.output)
    assert_one_line_error(r)
    assert r.stderr == f"mtctl: error: {line}\n"


def test_a_group_without_a_command_still_shows_its_help(seeded):
    r = seeded("ext")
    assert r.exit_code == 2 and "Usage:" in r.output and "add" in r.output


def test_values_too_big_for_the_store_are_refused_never_a_store_error(seeded):
    """A 33-digit extension, a 300-character name or an order past 2^31: the user's error,
    refused the same way on SQLite (which would store them) and PostgreSQL."""
    for args in [
        ("ext", "add", "4" * 40, "--node", "madrid"),
        ("ext", "set", "40710", "--name", "x" * 300),
        ("node", "add", "n" * 100),
        ("phone", "add", "40710", "--position", "2", "--model", GENERIC, "--order", str(2**40)),
        ("phone", "set", "40710", "0", "--location", "x" * 129),
        ("user", "set", "ana", "--name", "Ana\x00"),
    ]:
        before = dump_store(seeded.url)
        r = seeded(*args)
        assert r.exit_code == 2, (args, r.output)
        assert_one_line_error(r)
        assert dump_store(seeded.url) == before


# The store -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "sqlite:////nonexistent-dir/x.db",
    "postgresql+psycopg://nobody@127.0.0.1:1/none",
    "nosuchdriver://x",
    "not a url at all",
    "postgresql+psycopg://nobody@127.0.0.1:notaport/none",
], ids=["missing-sqlite", "unreachable-postgres", "unknown-driver", "garbage", "bad-port"])
def test_a_store_that_cannot_be_opened_exits_5(url):
    for args in [("ext", "list"), ("node", "add", "madrid"), ("check",), ("audit", "--json")]:
        r = Mtctl(url)(*args)
        assert r.exit_code == 5, (args, r.output)
        assert_one_line_error(r)


def test_a_store_url_from_the_environment_that_cannot_be_opened_exits_5():
    r = CliRunner().invoke(app, ["node", "list"], env={"MTCTL_DATABASE_URL": "nosuchdriver://x"})
    assert r.exit_code == 5, r.output
    assert "mtctl: error: cannot open store" in r.stderr


def test_a_store_that_was_never_migrated_exits_5_with_the_fix(empty_url):
    for args in [("ext", "list"), ("node", "add", "madrid")]:
        r = Mtctl(empty_url)(*args)
        assert r.exit_code == 5, r.output
        assert_one_line_error(r)
        assert "run: mtctl db upgrade" in r.stderr


def test_an_existing_sqlite_file_that_is_not_migrated_exits_5(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
        conn.execute("INSERT INTO unrelated VALUES (1)")
    conn.close()
    for args in [("ext", "list"), ("node", "add", "madrid")]:
        r = Mtctl(f"sqlite:///{path}")(*args)
        assert r.exit_code == 5, r.output
        assert_one_line_error(r)
        assert "run: mtctl db upgrade" in r.stderr
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("unrelated",)]
    assert conn.execute("SELECT x FROM unrelated").fetchall() == [(1,)]
    conn.close()


def test_an_empty_sqlite_file_is_not_migrated_either(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    r = Mtctl(f"sqlite:///{path}")("ext", "list")
    assert r.exit_code == 5, r.output
    assert_one_line_error(r)
    assert "run: mtctl db upgrade" in r.stderr


def test_a_file_that_is_not_a_database_exits_5(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not the tables you are looking for\n" * 100)
    r = Mtctl(f"sqlite:///{path}")("ext", "list")
    assert r.exit_code == 5, r.output
    assert_one_line_error(r)


def test_a_store_at_another_schema_revision_exits_5(mtctl):
    plant(mtctl.url, text("UPDATE alembic_version SET version_num = '0000'"))
    r = mtctl("ext", "list")
    assert r.exit_code == 5, r.output
    assert_one_line_error(r)
    assert "0000" in r.stderr and "run: mtctl db upgrade" in r.stderr


# Passwords ------------------------------------------------------------------------------------

def test_set_password_needs_a_password_from_stdin_or_a_terminal(seeded):
    r = assert_refused(seeded, "phone", "set-password", "40710", "0", exit_code=2)
    assert "--password-stdin" in r.stderr
    assert_refused(seeded, "phone", "set-password", "40710", "0", "--password-stdin",
                   input="", exit_code=2)
    assert_refused(seeded, "phone", "set-password", "40710", "6", "--password-stdin",
                   input="long enough password\n", exit_code=3)


# Any input --------------------------------------------------------------------------------------

ARG = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
              max_size=40)
FEW = settings(max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


@FEW
@given(number=ARG, name=ARG)
def test_no_extension_number_or_name_gives_a_traceback_or_a_half_written_store(
        seeded, number, name):
    before = dump_store(seeded.url)
    r = seeded("ext", "add", number, "--node", "madrid", "--name", name)
    assert "Traceback" not in r.output
    if r.exit_code == 0:
        seeded.ok("ext", "rm", number)
        return
    assert r.exit_code in (1, 2, 4), r.output
    assert dump_store(seeded.url) == before


@FEW
@given(position=st.integers(-2**40, 2**40), order=st.integers(-2**40, 2**40))
def test_no_position_or_order_gives_a_traceback_or_a_half_written_store(
        seeded, position, order):
    before = dump_store(seeded.url)
    r = seeded("phone", "add", "40710", f"--position={position}", "--model", GENERIC,
               f"--order={order}")
    assert "Traceback" not in r.output
    if r.exit_code == 0:
        seeded.ok("phone", "rm", "40710", str(position))
        return
    assert r.exit_code in (1, 2), r.output
    assert dump_store(seeded.url) == before
