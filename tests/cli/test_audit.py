"""The audit trail: one row per change (actor, action, object); refused writes leave none."""

import json
from datetime import UTC, datetime, timedelta

from tests.dump import assert_one_line_error

WEB = "VIVAit Call Web"


def audit_rows(mtctl, *args):
    return json.loads(mtctl.ok("audit", *args, "--json").stdout)


# Each change, in an order that works, with the one audit row (action, object) it must write.
CHANGES = [
    (("node", "add", "barcelona"), "add", "node barcelona"),
    (("category", "add", "national"), "add", "category national"),
    (("model", "add", "Yealink T46U", "--vendor", "Yealink", "--kind", "hardphone"),
     "add", "model Yealink T46U"),
    (("template", "add", "mobile", "--key-lifetime", "30"), "add", "template mobile"),
    (("group", "add", "pool"), "add", "group pool"),
    (("ext", "add", "40790", "--node", "madrid"), "add", "extension 40790"),
    (("ext", "add", "40791", "--node", "madrid"), "add", "extension 40791"),
    (("phone", "add", "40790", "--position", "0", "--model", WEB), "add", "phone 40790:0"),
    (("group", "add-ext", "pool", "40790"), "add-ext", "group pool"),
    (("ext", "set", "40790", "--name", "Web Call pool 1"), "set", "extension 40790"),
    (("phone", "add", "40710", "--position", "2", "--model", "Yealink T46U",
      "--category", "national", "--template", "mobile", "--secure"), "add", "phone 40710:2"),
    (("phone", "set", "40710", "2", "--location", "Home office"), "set", "phone 40710:2"),
    (("phone", "disable", "40710", "2"), "disable", "phone 40710:2"),
    (("phone", "enable", "40710", "2"), "enable", "phone 40710:2"),
    (("phone", "set", "40710", "0", "--order", "2"), "set", "phone 40710:0"),
    (("phone", "set-password", "40710", "0", "--password-stdin"), "set-password",
     "phone 40710:0"),
    (("ext", "add", "40720", "--node", "madrid"), "add", "extension 40720"),
    (("user", "add", "bob", "--name", "Bob", "--login", "40720", "--webcall-mode",
      "exclusive", "--webcall-license", "pool", "--webcall-group", "pool"), "add", "user bob"),
    (("user", "set", "bob", "--name", "Bob Smith"), "set", "user bob"),
    (("user", "rm", "bob"), "remove", "user bob"),
    (("phone", "rm", "40710", "2"), "remove", "phone 40710:2"),
    (("ext", "rm", "40791"), "remove", "extension 40791"),
    (("config", "set", "sip.proxy", "sip:pbx.example.com:5060"), "set", "config sip.proxy"),
    (("config", "unset", "sip.proxy"), "unset", "config sip.proxy"),
    (("category", "rm", "national"), "remove", "category national"),
    (("node", "rm", "barcelona"), "remove", "node barcelona"),
]


def test_the_seed_left_one_row_per_change(seeded):
    rows = audit_rows(seeded)
    assert [(r["actor"], r["action"], r["object"]) for r in rows] == [
        ("tester", "set", "config sip.domain"),
        ("tester", "add", "node madrid"),
        ("tester", "add", "extension 40710"),
        ("tester", "add", "phone 40710:0"),
        ("tester", "add", "phone 40710:1"),
        ("tester", "add", "user ana"),
    ]


def test_every_successful_change_writes_one_audit_row(seeded):
    for args, action, obj in CHANGES:
        before = audit_rows(seeded)
        input = "long enough password\n" if "--password-stdin" in args else None
        r = seeded(*args, input=input)
        assert r.exit_code == 0, (args, r.output)
        after = audit_rows(seeded)
        assert after[:len(before)] == before, f"{args} rewrote history"
        new = after[len(before):]
        assert [(n["actor"], n["action"], n["object"]) for n in new] == \
            [("tester", action, obj)], args
        assert datetime.fromisoformat(new[0]["at"]) >= datetime.now(UTC) - timedelta(minutes=5)


def test_audit_rows_record_what_changed(seeded):
    seeded.ok("phone", "set", "40710", "0", "--order", "3", "--location", "Home")
    row = audit_rows(seeded, "--object", "phone 40710:0")[-1]
    assert row["changes"] == {"order": [1, 3], "location": ["Madrid", "Home"]}


def test_removing_an_extension_audits_each_of_its_phones(seeded):
    seeded.ok("ext", "add", "40720", "--node", "madrid")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", "Generic SIP hardphone")
    seeded.ok("phone", "add", "40720", "--position", "3", "--model", "Generic SIP hardphone")
    before = len(audit_rows(seeded))
    seeded.ok("ext", "rm", "40720")
    new = audit_rows(seeded)[before:]
    assert [(n["action"], n["object"]) for n in new] == [
        ("remove", "phone 40720:0"), ("remove", "phone 40720:3"), ("remove", "extension 40720")]


def test_a_change_that_changes_nothing_writes_no_row(seeded):
    before = audit_rows(seeded)
    seeded.ok("config", "set", "sip.domain", "pbx.example.com")
    seeded.ok("user", "set", "ana")
    assert audit_rows(seeded) == before


def test_a_refused_change_writes_no_row(seeded):
    before = audit_rows(seeded)
    r = seeded("phone", "rm", "40710", "1")
    assert r.exit_code == 1, r.output
    assert "MT009" in r.stderr
    assert audit_rows(seeded) == before


def test_the_actor_defaults_to_the_os_user(seeded, monkeypatch):
    from typer.testing import CliRunner

    from mtctl.cli.app import app

    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    r = CliRunner().invoke(app, ["--db", seeded.url, "node", "add", "sevilla"])
    assert r.exit_code == 0, r.output
    assert audit_rows(seeded)[-1]["actor"] == "osuser"


def test_audit_object_filters_to_one_object(seeded):
    seeded.ok("phone", "set", "40710", "0", "--order", "2")
    seeded.ok("phone", "set", "40710", "1", "--order", "2")
    rows = audit_rows(seeded, "--object", "phone 40710:0")
    assert [(r["action"], r["object"]) for r in rows] == [
        ("add", "phone 40710:0"), ("set", "phone 40710:0")]
    assert audit_rows(seeded, "--object", "user ana")[0]["action"] == "add"
    assert audit_rows(seeded, "--object", "phone 40710:7") == []


def test_audit_since_and_limit(seeded):
    everything = audit_rows(seeded)
    assert audit_rows(seeded, "--since", "1d") == everything
    assert audit_rows(seeded, "--since", "2000-01-01") == everything
    assert audit_rows(seeded, "--since", "2999-01-01T00:00+00:00") == []
    assert len(everything) > 3
    assert audit_rows(seeded, "--limit", "2") == everything[-2:]  # the latest, as `tail`
    assert audit_rows(seeded, "--limit", str(len(everything) + 5)) == everything
    assert audit_rows(seeded, "--since", "1d", "--limit", "1") == everything[-1:]


def test_audit_human_output_names_actor_action_and_object(seeded):
    r = seeded.ok("audit", "--object", "user ana")
    assert "tester" in r.stdout and "add" in r.stdout and "user ana" in r.stdout


def test_audit_since_with_a_bad_value_is_a_usage_error(seeded):
    for since in ["yesterday", "7x", "d", "2026-13-01", ""]:
        r = seeded("audit", "--since", since, "--json")
        assert r.exit_code == 2, (since, r.output)
        assert_one_line_error(r)
        assert "--since" in r.stderr
