"""The catalog verbs: model and template rm/show, template set, group rm and rm-ext."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_schemas import validate
from tests.dump import assert_refused


def audit_of(mtctl, obj: str) -> list[dict]:
    rows = json.loads(mtctl.ok("audit", "--json").stdout)
    return [row for row in rows if row["object"] == obj]


def test_model_show_and_rm(seeded):
    shown = json.loads(seeded.ok("model", "show", "Cisco 8841", "--json").stdout)
    validate("model", shown)
    assert shown == {"name": "Cisco 8841", "vendor": "Cisco", "kind": "hardphone",
                     "qr_provisionable": False, "profile": "cisco-mpp", "seeded": True,
                     "phones": 1}
    seeded.ok("model", "add", "Yealink T46U", "--vendor", "Yealink", "--kind", "hardphone",
              "--profile", "yealink")
    assert json.loads(seeded.ok("model", "show", "Yealink T46U", "--json").stdout)[
        "profile"] == "yealink"
    text = seeded.ok("model", "show", "Yealink T46U").stdout
    assert "Yealink" in text and "seeded" in text
    r = seeded.ok("model", "rm", "Yealink T46U")
    assert "removed model Yealink T46U" in r.stderr
    assert "Yealink T46U" not in seeded.ok("model", "list").stdout
    [removed] = [row for row in audit_of(seeded, "model Yealink T46U")
                 if row["action"] == "remove"]
    assert removed["actor"] == "tester"
    assert removed["changes"]["vendor"] == ["Yealink", None]


def test_a_model_in_use_is_refused_naming_its_phones(seeded):
    seeded.ok("model", "add", "Yealink T46U", "--vendor", "Yealink", "--kind", "hardphone")
    for pos in ("2", "3", "4", "5", "6", "7"):
        seeded.ok("phone", "add", "40710", "--position", pos, "--model", "Yealink T46U")
    r = assert_refused(seeded, "model", "rm", "Yealink T46U", exit_code=4)
    assert "phone 40710:2, phone 40710:3" in r.stderr and "(and 1 more)" in r.stderr
    assert "mtctl phone set" in r.stderr


@pytest.mark.parametrize("args", [("model", "rm", "Cisco 8841"),
                                  ("model", "rm", "VIVAit Call Business iOS"),  # unused
                                  ("template", "rm", "default"),
                                  ("template", "rm", "webfon")])
def test_seeded_models_and_templates_cannot_be_removed(seeded, args):
    r = assert_refused(seeded, *args, exit_code=1)
    assert "is seeded and cannot be removed" in r.stderr


@pytest.mark.parametrize("args", [("model", "rm", "nope"), ("model", "show", "nope"),
                                  ("template", "rm", "nope"), ("template", "show", "nope"),
                                  ("template", "set", "nope", "--secure"),
                                  ("template", "set", "default", "--category", "nope"),
                                  ("group", "rm", "nope"), ("group", "rm-ext", "nope", "40710"),
                                  ("group", "rm-ext", "pool", "49999"),
                                  ("group", "rm-ext", "pool", "40710")])  # not a member
def test_unknown_names_are_not_found(seeded, args):
    seeded.ok("group", "add", "pool")
    assert_refused(seeded, *args, exit_code=3)


def test_template_show_set_and_rm(seeded):
    seeded.ok("category", "add", "national")
    seeded.ok("template", "add", "mobile", "--key-lifetime", "30", "--secure")
    seeded.ok("template", "set", "mobile", "--key-lifetime", "60", "--category", "national",
              "--not-secure")
    shown = json.loads(seeded.ok("template", "show", "mobile", "--json").stdout)
    validate("template", shown)
    assert shown == {"name": "mobile", "for_webcall": False, "secure": False,
                     "key_lifetime_days": 60, "category": "national", "seeded": False,
                     "phones": 0}
    [changed] = [row for row in audit_of(seeded, "template mobile") if row["action"] == "set"]
    assert changed["changes"] == {"key_lifetime_days": [30, 60], "category": [None, "national"],
                                  "secure": [True, False]}
    seeded.ok("template", "set", "mobile", "--key-lifetime", "0", "--category", "")
    shown = json.loads(seeded.ok("template", "show", "mobile", "--json").stdout)
    assert (shown["key_lifetime_days"], shown["category"]) == (None, None)
    same = seeded.ok("template", "set", "mobile", "--not-secure")
    assert "nothing to change" in same.stderr
    assert len([r for r in audit_of(seeded, "template mobile") if r["action"] == "set"]) == 2
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--template", "mobile")
    assert json.loads(seeded.ok("template", "show", "mobile", "--json").stdout)["phones"] == 1
    r = assert_refused(seeded, "template", "rm", "mobile", exit_code=4)
    assert "phone 40710:2" in r.stderr
    seeded.ok("phone", "rm", "40710", "2")
    seeded.ok("template", "rm", "mobile")
    assert "mobile" not in seeded.ok("template", "list").stdout


def test_template_set_refuses_bad_values(seeded):
    assert_refused(seeded, "template", "set", "default", "--key-lifetime", "36501",
                   exit_code=2)
    seeded.ok("config", "set", "keys.rotate_within_days", "14")
    # a lifetime inside the rotation window would rotate every run
    r = assert_refused(seeded, "template", "set", "default", "--key-lifetime", "10",
                       exit_code=2)  # as template add and config set say it
    assert "rotation window" in r.stderr


@pytest.fixture
def pool(seeded):
    """Pool 'pool' of 40790 and 40791; bea draws from it, with a session on 40790."""
    for number in ("40790", "40791", "40720"):
        seeded.ok("ext", "add", number, "--node", "madrid")
    for number in ("40790", "40791"):
        seeded.ok("phone", "add", number, "--position", "0", "--model", "VIVAit Call Web")
    seeded.ok("group", "add", "pool")
    seeded.ok("group", "add-ext", "pool", "40790", "40791")
    seeded.ok("user", "add", "bea", "--name", "Bea", "--login", "40720", "--webcall-mode",
              "exclusive", "--webcall-license", "pool", "--webcall-group", "pool")
    seeded.ok("webcall", "start", "bea", "--ext", "40790")
    assert len(json.loads(seeded.ok("webcall", "list", "--json").stdout)) == 1
    return seeded


def test_group_rm_ext_takes_extensions_out_and_ends_their_sessions(pool):
    r = pool.ok("group", "rm-ext", "pool", "40790")
    assert "group pool: removed 40790" in r.stderr
    groups = json.loads(pool.ok("group", "list", "--json").stdout)
    assert groups == [{"name": "pool", "extensions": ["40791"]}]
    assert json.loads(pool.ok("webcall", "list", "--json").stdout) == []
    assert [row["changes"] for row in audit_of(pool, "group pool")
            if row["action"] == "rm-ext"] == [{"extensions": [["40790", "40791"], ["40791"]]}]


def test_group_rm_ext_that_leaves_a_pool_user_nothing_is_refused(pool):
    r = assert_refused(pool, "group", "rm-ext", "pool", "40790", "40791", exit_code=1)
    assert "MT010" in r.stderr


def test_group_rm_is_refused_while_users_draw_from_it(pool):
    r = assert_refused(pool, "group", "rm", "pool", exit_code=4)
    assert "user bea" in r.stderr and "--webcall-group" in r.stderr


def test_group_rm_removes_the_group_and_keeps_its_extensions(pool):
    pool.ok("group", "add", "spare")
    pool.ok("group", "add-ext", "spare", "40791")
    pool.ok("group", "rm", "spare")
    names = [g["name"] for g in json.loads(pool.ok("group", "list", "--json").stdout)]
    assert names == ["pool"]
    pool.ok("ext", "show", "40791")
    [removed] = [row for row in audit_of(pool, "group spare") if row["action"] == "remove"]
    assert removed["changes"] == {"extensions": [["40791"], None]}
