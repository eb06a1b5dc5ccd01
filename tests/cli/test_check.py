"""`mtctl check` finds what was planted behind the rules' back, in the SPEC's JSON shape."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from mtctl.store.tables import app_user, phone, phone_model
from tests.dump import dump_store, plant


def check_json(mtctl, exit_code):
    r = mtctl("check", "--json")
    assert r.exit_code == exit_code, r.output
    found = json.loads(r.stdout)
    assert set(found) == {"errors", "warnings"}
    for item in found["errors"] + found["warnings"]:
        assert set(item) == {"rule", "object", "message", "hint"}, item
        assert all(isinstance(value, str) and value for value in item.values()), item
    return found


def test_a_store_that_keeps_every_rule_checks_clean(seeded):
    r = seeded("check")
    assert r.exit_code == 0, r.output
    assert "0 error(s), 0 warning(s)" in r.stderr
    assert check_json(seeded, 0) == {"errors": [], "warnings": []}


def test_check_finds_a_planted_publishable_phone_that_is_not_secure(seeded):
    plant(seeded.url, update(phone).where(phone.c.sip_auth_user == "40710-0")
          .values(publishable=True))
    before = dump_store(seeded.url)
    r = seeded("check")
    assert r.exit_code == 1, r.output
    assert r.stdout == ("severity\trule\tobject\tmessage\thint\n"
                        "error\tMT005\tphone 40710:0\tis publishable but not secure\t"
                        "add --secure or drop --publishable\n")
    assert r.stderr == "1 error(s), 0 warning(s)\n"
    found = check_json(seeded, 1)
    assert found["errors"] == [{"rule": "MT005", "object": "phone 40710:0",
                                "message": "is publishable but not secure",
                                "hint": "add --secure or drop --publishable"}]
    assert dump_store(seeded.url) == before, "check must not write"


def test_check_finds_planted_violations_of_several_rules_at_once(seeded):
    plant(seeded.url,
          update(phone).where(phone.c.sip_auth_user == "40710-1").values(ring_order=0),
          update(phone_model).where(phone_model.c.name == "VIVAit Call Web")
          .values(vendor="Cisco"),
          update(app_user).where(app_user.c.username == "ana").values(webcall_license="pool"))
    found = check_json(seeded, 1)
    rules = {(e["rule"], e["object"]) for e in found["errors"]}
    assert rules == {("MT003", "phone 40710:1"), ("MT007", "user ana"), ("MT009", "user ana")}


def test_check_finds_a_secure_phone_without_a_key(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure")
    plant(seeded.url, update(phone).where(phone.c.sip_auth_user == "40710-2")
          .values(ha1=None, ha1_sha256=None, key_expires_at=None))
    found = check_json(seeded, 1)
    assert [(e["rule"], e["object"]) for e in found["errors"]] == [("MT011", "phone 40710:2")]


def test_check_warns_about_an_extension_where_nothing_can_ring(seeded):
    seeded.ok("ext", "add", "40720", "--node", "madrid")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", "Generic SIP hardphone",
              "--order", "0")
    seeded.ok("phone", "add", "40720", "--position", "1", "--model", "Generic SIP hardphone")
    seeded.ok("phone", "disable", "40720", "1")
    r = seeded("check")
    assert r.exit_code == 0, r.output
    assert "warning\tsilent-extension\textension 40720\t" in r.stdout
    found = check_json(seeded, 0)
    assert found["errors"] == []
    assert [(w["rule"], w["object"]) for w in found["warnings"]] == [
        ("silent-extension", "extension 40720")]


def test_check_warns_about_an_expired_secure_key(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure")
    assert check_json(seeded, 0)["warnings"] == []
    plant(seeded.url, update(phone).where(phone.c.sip_auth_user == "40710-2")
          .values(key_expires_at=datetime.now(UTC) - timedelta(days=1)))
    found = check_json(seeded, 0)
    assert found["errors"] == []
    assert [(w["rule"], w["object"]) for w in found["warnings"]] == [
        ("key-expired", "phone 40710:2")]


def test_check_warns_about_a_key_expiring_within_the_rotation_window(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure")
    plant(seeded.url, update(phone).where(phone.c.sip_auth_user == "40710-2")
          .values(key_expires_at=datetime.now(UTC) + timedelta(days=3)))
    found = check_json(seeded, 0)
    assert [(w["rule"], w["object"]) for w in found["warnings"]] == [
        ("key-expiring", "phone 40710:2")]


def test_every_format_of_check_says_how_to_fix_a_finding(seeded):
    """A warning with no way forward helps nobody: each finding carries its rule's hint."""
    seeded.ok("phone", "set", "40710", "0", "--secure")  # a desk phone: its key comes by fetch
    hint = ("give it its MAC (mtctl phone set 40710 0 --mac MAC) and point the phone at mtctl "
            "serve's /d/ (README: Provisioning desk phones)")
    (warning,) = check_json(seeded, 0)["warnings"]
    assert (warning["rule"], warning["hint"]) == ("never-provisioned", hint)
    line = json.loads(seeded.ok("check", "--format", "ndjson").stdout)
    assert (line["severity"], line["hint"]) == ("warning", hint)
    plain = seeded.ok("check").stdout.splitlines()
    assert plain[0].split("\t")[-1] == "hint" and plain[1].split("\t")[-1] == hint
    assert seeded.ok("check", "--format", "csv", "--fields", "rule,hint").stdout == (
        f'rule,hint\r\nnever-provisioned,{hint}\r\n')
    table = seeded.ok("check", "--format", "table").stdout
    assert "mtctl phone set 40710 0 --mac MAC" in " ".join(table.split()), table
