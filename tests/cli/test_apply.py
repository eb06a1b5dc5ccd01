"""`mtctl apply`: the file is checked whole, then written all or nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import create_engine, select

from mtctl.store.tables import audit_log, phone
from tests.dump import dump_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
APPLY_SCHEMA = json.loads((ROOT / "schemas" / "apply.schema.json").read_text())

# What each example's header documents for `mtctl ring-sim 40710 [--webcall-running]`:
# {running: (stages, skipped, display name)} - the same as the example scripts'.
DOCUMENTED = {
    "exclusive": {
        False: ([(1, ["40710:0"])], [("40711:0", "webcall-not-running")], "Ana García"),
        True: ([(1, ["40711:0"])], [("40710:0", "exclusive-webcall-active")], "Ana García"),
    },
    "multiterminal": {
        False: ([(1, ["40710:0"])], [("40710:1", "webcall-not-running")], "Desk 40710"),
        True: ([(1, ["40710:0", "40710:1"])], [], "Ana García"),
    },
    "portal": {
        False: ([(3, ["40710:2"])], [("40710:0", "order-zero"), ("40710:1", "order-zero")],
                "Ana 40710"),
        True: ([(3, ["40710:2"])], [("40710:0", "order-zero"), ("40710:1", "order-zero")],
               "Ana 40710"),
    },
}


def write(tmp_path: Path, text: str, name: str = "pbx.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def validate_output(data: dict) -> None:
    Draft202012Validator(APPLY_SCHEMA).validate(data)


def ring(mtctl, running: bool) -> tuple:
    flags = ["--webcall-running"] if running else []
    plan = json.loads(mtctl.ok("ring-sim", "40710", *flags, "--json").stdout)
    stages = [(s["order"], [f"{p['extension']}:{p['position']}" for p in s["phones"]])
              for s in plan["stages"]]
    skipped = [(f"{s['extension']}:{s['position']}", s["reason"]) for s in plan["skipped"]]
    return stages, skipped, plan["display_name"]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_each_example_applies_to_a_fresh_store_and_rings_as_its_header_says(mtctl, name):
    example = EXAMPLES / f"{name}.toml"
    result = mtctl.ok("apply", str(example))
    assert "applied" in result.stderr
    check = mtctl("check", "--json")
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["errors"] == []
    header = example.read_text(encoding="utf-8").split("\n\n")[0]
    assert "mtctl ring-sim 40710" in header and "mtctl apply examples/" in header
    for running, documented in DOCUMENTED[name].items():
        assert ring(mtctl, running) == documented, (name, running)
        _, skipped, display = documented
        assert f'"{display}"' in header
        for ref, reason in skipped:
            assert ref in header and reason in header


def shell_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MTCTL_DATABASE_URL"] = url
    return env


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_each_example_builds_the_same_store_as_its_script(mtctl, empty_url, name):
    script = subprocess.run(["bash", str(EXAMPLES / f"{name}.sh")],  # noqa: S603, S607
                            env=shell_env(empty_url), capture_output=True, text=True,
                            timeout=120, check=False)
    assert script.returncode == 0, script.stderr
    mtctl.ok("apply", str(EXAMPLES / f"{name}.toml"))
    from tests.conftest import Mtctl

    assert Mtctl(empty_url).ok("export").stdout == mtctl.ok("export").stdout


def test_applying_the_same_file_twice_changes_nothing_the_second_time(mtctl):
    example = str(EXAMPLES / "portal.toml")
    mtctl.ok("apply", example)
    before = dump_store(mtctl.url)
    again = mtctl("apply", example)
    assert again.exit_code == 0, again.output
    assert again.stdout == ""
    assert "no changes" in again.stderr
    assert dump_store(mtctl.url) == before
    data = json.loads(mtctl.ok("apply", example, "--json").stdout)
    validate_output(data)
    assert data["summary"] == {"add": 0, "change": 0, "remove": 0}
    assert data["applied"] is True and data["changes"] == []


CHANGED = """nodes = ["madrid", "sevilla"]

[settings]
sip.domain = "pbx.example.com"

[extensions.40710]
node = "madrid"
name = "Desk 40710"
phones = [
    { position = 0, model = "Cisco 8841", location = "Home" },
    { position = 1, model = "VIVAit Call Web", order = 2 },
    { position = 2, model = "VIVAit Call Business Android", secure = true },
]

[extensions.40720]
node = "sevilla"

[users.ana]
name = "Ana García"
login = "40710"
webcall_mode = "multiterminal"
webcall_position = 1
"""


def test_dry_run_prints_the_plan_and_leaves_the_store_byte_identical(seeded, tmp_path):
    path = write(tmp_path, CHANGED)
    before = dump_store(seeded.url)
    result = seeded("apply", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert dump_store(seeded.url) == before
    lines = result.stdout.splitlines()
    assert "+ node sevilla" in lines
    assert "+ extension 40720" in lines
    assert "+ phone 40710:2" in lines
    assert '~ phone 40710:0: location "Madrid" → "Home"' in lines
    assert "~ phone 40710:1: order 1 → 2" in lines
    assert "dry run: 3 to add, 2 to change, 0 to remove; nothing was written" in result.stderr
    data = json.loads(seeded.ok("apply", path, "--dry-run", "--json").stdout)
    validate_output(data)
    assert data["dry_run"] is True and data["applied"] is False
    assert {"action": "change", "object": "phone 40710:1",
            "fields": {"order": [1, 2]}} in data["changes"]
    assert dump_store(seeded.url) == before


def test_detailed_exitcode_says_whether_the_store_matches_the_file(seeded, tmp_path):
    path = write(tmp_path, CHANGED)
    before = dump_store(seeded.url)
    pending = seeded("apply", path, "--dry-run", "--detailed-exitcode")
    assert pending.exit_code == 6, pending.output
    assert "+ extension 40720" in pending.stdout.splitlines()
    assert "dry run: 3 to add, 2 to change, 0 to remove" in pending.stderr
    as_json = seeded("apply", path, "--dry-run", "--detailed-exitcode", "--json")
    assert as_json.exit_code == 6, as_json.output
    validate_output(json.loads(as_json.stdout))
    assert dump_store(seeded.url) == before

    seeded.ok("apply", path)
    in_sync = seeded("apply", path, "--dry-run", "--detailed-exitcode")
    assert in_sync.exit_code == 0, in_sync.output
    assert "no changes" in in_sync.stderr


@pytest.mark.parametrize("text", [
    CHANGED.replace('node = "sevilla"', 'node = "nowhere"'),  # a problem the plan finds
    CHANGED + "[extensions.40720]\nnode = \"madrid\"\n",  # one the parser finds
    CHANGED.replace("position = 2", "position = 9"),  # one the schema finds
])
def test_detailed_exitcode_is_1_for_a_file_with_errors(seeded, tmp_path, text):
    path = write(tmp_path, text)
    before = dump_store(seeded.url)
    result = seeded("apply", path, "--dry-run", "--detailed-exitcode")
    assert result.exit_code == 1, result.output
    assert "nothing was written" in result.stderr
    assert dump_store(seeded.url) == before


def test_detailed_exitcode_needs_dry_run(seeded, tmp_path):
    path = write(tmp_path, CHANGED)
    before = dump_store(seeded.url)
    result = seeded("apply", path, "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "--detailed-exitcode needs --dry-run" in result.stderr
    assert dump_store(seeded.url) == before


def test_apply_writes_the_plan_with_keys_and_one_audit_row_per_object(seeded, tmp_path):
    path = write(tmp_path, CHANGED)
    audit_before = len(dump_store(seeded.url)["audit_log"])
    result = seeded("apply", path)
    assert result.exit_code == 0, result.output
    assert "applied" in result.stderr and "3 added, 2 changed, 0 removed" in result.stderr
    desk = json.loads(seeded.ok("phone", "show", "40710", "0", "--json").stdout)
    assert desk["location"] == "Home"
    android = json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)
    assert android["secure"] and android["has_key"] and android["key_expires_at"]
    assert android["sip_auth_user"] == "40710-2"
    ext = json.loads(seeded.ok("ext", "show", "40720", "--json").stdout)
    assert ext["node"] == "sevilla"
    rows = dump_store(seeded.url)["audit_log"][audit_before:]
    assert len(rows) == 5
    audit = {row[4]: (row[3], row[5]) for row in rows}
    assert audit["phone 40710:1"] == ("set", {"order": [1, 2]})
    action, changes = audit["phone 40710:2"]
    assert action == "add" and changes["secure"] == [None, True]
    assert changes["key_expires_at"][1] == android["key_expires_at"]
    assert "ha1" not in json.dumps([row[5] for row in rows])
    assert seeded("check").exit_code == 0
    assert "no changes" in seeded.ok("apply", path).stderr


def test_objects_the_file_does_not_name_stay_unless_prune(seeded, tmp_path):
    seeded.ok("ext", "add", "40799", "--node", "madrid")
    seeded.ok("model", "add", "Acme", "--vendor", "Acme", "--kind", "softphone")
    path = write(tmp_path, CHANGED.replace(
        '    { position = 2, model = "VIVAit Call Business Android", secure = true },\n', ""))
    seeded.ok("apply", path)
    assert seeded("ext", "show", "40799").exit_code == 0
    seeded.ok("phone", "add", "40710", "--position", "3", "--model", "Acme")
    plan = json.loads(seeded.ok("apply", path, "--prune", "--dry-run", "--json").stdout)
    removed = {c["object"] for c in plan["changes"] if c["action"] == "remove"}
    assert removed == {"extension 40799", "phone 40710:3", "model Acme"}
    result = seeded("apply", path, "--prune")
    assert result.exit_code == 0, result.output
    assert "- extension 40799" in result.stdout.splitlines()
    assert seeded("ext", "show", "40799").exit_code == 3
    assert [p["position"] for p in json.loads(seeded.ok("phone", "list", "40710", "--json")
                                              .stdout)] == [0, 1]
    models = {m["name"] for m in json.loads(seeded.ok("model", "list", "--json").stdout)}
    assert "Acme" not in models and "Cisco 8841" in models  # seeded models stay
    assert "no changes" in seeded.ok("apply", path, "--prune").stderr


@pytest.mark.parametrize("text", ["", "\n# generated by nothing\n"])
def test_an_empty_file_with_prune_is_refused_instead_of_removing_everything(seeded, tmp_path,
                                                                            text):
    before = dump_store(seeded.url)
    result = seeded("apply", "--prune", write(tmp_path, text))
    assert result.exit_code == 1
    assert "the file is empty, and with --prune applying it would remove everything" in \
        result.stderr and "nodes = []" in result.stderr
    assert dump_store(seeded.url) == before
    seeded.ok("apply", write(tmp_path, text, "empty.toml"))  # without --prune: nothing to do
    emptied = seeded.ok("apply", "--prune", write(tmp_path, "nodes = []\n", "none.toml"))
    assert "- extension 40710" in emptied.stdout
    assert json.loads(seeded.ok("ext", "list", "--json").stdout) == []


def test_prune_resets_changed_seed_entries_instead_of_removing_them(mtctl, tmp_path):
    changed = write(tmp_path, '[templates.default]\nkey_lifetime_days = 30\n', "a.toml")
    mtctl.ok("apply", changed)
    templates = {t["name"]: t for t in json.loads(mtctl.ok("template", "list", "--json").stdout)}
    assert templates["default"]["key_lifetime_days"] == 30
    assert "[templates.default]" in mtctl.ok("export").stdout
    result = mtctl.ok("apply", write(tmp_path, "", "empty.toml"), "--prune")
    assert "~ template default: key_lifetime_days 30 → null" in result.stdout.splitlines()
    templates = {t["name"]: t for t in json.loads(mtctl.ok("template", "list", "--json").stdout)}
    assert set(templates) == {"default", "webfon"}
    assert templates["default"]["key_lifetime_days"] is None
    assert mtctl.ok("export").stdout == ""


BASE = """nodes = ["madrid"]

[settings]
sip.domain = "pbx.example.com"

[extensions.40710]
node = "madrid"
phones = [
    { position = 0, model = "Cisco 8841" },
    { position = 1, model = "VIVAit Call Web" },
]

[users.ana]
name = "Ana García"
login = "40710"
webcall_mode = "multiterminal"
webcall_position = 1
"""
LINPHONES = "".join(f'    {{ position = {p}, model = "Linphone (no proxy)" }},\n'
                    for p in range(2, 8))

# name: (file text, [(location, line, rule)] every error it must report)
BAD_FILES = {
    "invalid TOML": (BASE.replace('nodes = ["madrid"]', 'nodes = ["madrid"'),
                     [("(file)", 3, None)]),
    "a string where an integer belongs": (
        BASE.replace('model = "VIVAit Call Web" }', 'model = "VIVAit Call Web", order = "2" }'),
        [('extensions."40710".phones[1].order', 10, None)]),
    "an unknown key": (BASE.replace('node = "madrid"\n', 'node = "madrid"\ncolour = "red"\n'),
                       [('extensions."40710".colour', 8, None)]),
    "9 phones on one extension": (
        BASE.replace("]\n\n[users", LINPHONES + '    { position = 7, model = "Linphone (no '
                     'proxy)" },\n]\n\n[users'),
        [('extensions."40710".phones', 8, "MT001"),
         ('extensions."40710".phones[8].position', 17, "MT002")]),
    "two phones at one position": (
        BASE.replace("]\n\n[users", '    { position = 1, model = "Linphone (no proxy)" },\n'
                     "]\n\n[users"),
        [('extensions."40710".phones[2].position', 11, "MT002")]),
    "a duplicate extension": (
        BASE + '\n[extensions."40710"]\nnode = "madrid"\n',
        [('extensions."40710"', 19, None)]),
    "a publishable non-secure phone": (
        BASE.replace("]\n\n[users", '    { position = 2, model = "VIVAit Call Business '
                     'Android", publishable = true },\n]\n\n[users'),
        [('extensions."40710".phones[2].publishable', 11, "MT005")]),
    "a pool user in multiterminal mode": (
        BASE + 'webcall_license = "pool"\n',
        [("users.ana.webcall_license", 18, "MT007")]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_reports_every_error_with_its_location_and_changes_nothing(
        seeded, tmp_path, case):
    text, expected = BAD_FILES[case]
    path = write(tmp_path, text)
    before = dump_store(seeded.url)
    result = seeded("apply", path)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert "nothing was written" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("mtctl: error: ")]
    assert len(errors) == len(expected), result.stderr
    for location, line, rule in expected:
        prefix = f"mtctl: error: {path}:{line}:"
        if location != "(file)":
            prefix += f" {location}:"
        if rule:
            prefix += f" {rule} "
        assert any(e.startswith(prefix) for e in errors), (prefix, result.stderr)
    data = json.loads(seeded("apply", path, "--json").stdout)
    validate_output(data)
    assert data["applied"] is False and data["changes"] == []
    assert sorted((e["location"], e["line"], e["rule"]) for e in data["errors"]) == \
        sorted(expected)
    assert all(e["message"] and e["hint"] for e in data["errors"])
    assert seeded("apply", path, "--dry-run").exit_code == 1
    assert dump_store(seeded.url) == before


def test_the_duplicate_extension_error_names_both_lines(mtctl, tmp_path):
    text, _ = BAD_FILES["a duplicate extension"]
    result = mtctl("apply", write(tmp_path, text))
    assert "extension 40710" in result.stderr and "first at line 6" in result.stderr


def test_every_kind_of_problem_is_reported_at_once(seeded, tmp_path):
    text = BASE.replace('node = "madrid"\n', 'node = "lisboa"\n') + """
[extensions.40711]
node = "madrid"
ring_timeout = "20"

[extensions.40712]
node = "madrid"
phones = [
    { position = 0, model = "Nokia 3310" },
    { position = 1, model = "VIVAit Call Business Android", publishable = true },
]

[users.bob]
name = "Bob"
login = "40799"
webcall_mode = "exclusive"
webcall_group = "pool"
"""
    before = dump_store(seeded.url)
    data = json.loads(seeded("apply", write(tmp_path, text), "--json").stdout)
    validate_output(data)
    found = {(e["location"], e["rule"]) for e in data["errors"]}
    assert found >= {
        ('extensions."40710".node', None),  # unknown node
        ('extensions."40711".ring_timeout', None),  # a string
        ('extensions."40712".phones[0].model', None),  # unknown model
        ('extensions."40712".phones[1].publishable', "MT005"),
        ("users.bob.login", "MT012"),  # not an existing extension
        ("users.bob.webcall_group", None),  # unknown group
    }, data["errors"]
    assert all(e["line"] for e in data["errors"])
    assert dump_store(seeded.url) == before


def test_unknown_references_have_locations(mtctl, tmp_path):
    text = """nodes = ["m"]

[templates.t]
category = "nope"

[groups.g]
extensions = ["40799"]

[extensions.40710]
node = "m"
phones = [{ position = 0, model = "Cisco 8841", template = "x", category = "y" }]

[users.ana]
name = "Ana"
login = "40710"
webcall_mode = "exclusive"
webcall_extensions = ["40798"]
"""
    data = json.loads(mtctl("apply", write(tmp_path, text), "--json").stdout)
    found = {(e["location"], e["line"]) for e in data["errors"]}
    assert {("templates.t.category", 4), ("groups.g.extensions[0]", 7),
            ('extensions."40710".phones[0].template', 11),
            ('extensions."40710".phones[0].category', 11),
            ("users.ana.webcall_extensions[0]", 17)} <= found, data["errors"]


def test_a_secure_phone_needs_the_sip_domain(mtctl, tmp_path):
    text = ('nodes = ["m"]\n\n[extensions.40710]\nnode = "m"\nphones = [{ position = 0, '
            'model = "VIVAit Call Business Android", secure = true }]\n')
    data = json.loads(mtctl("apply", write(tmp_path, text), "--json").stdout)
    assert [(e["rule"], e["location"], e["line"]) for e in data["errors"]] == [
        ("MT011", 'extensions."40710".phones[0]', 5)]  # the phone that needs a key
    assert "sip.domain" in data["errors"][0]["hint"]


def test_a_catalog_change_is_checked_against_the_phones_that_use_it(seeded, tmp_path):
    before = dump_store(seeded.url)
    path = write(tmp_path, '[models."VIVAit Call Web"]\nvendor = "VIVAit"\nkind = "app"\n')
    data = json.loads(seeded("apply", path, "--json").stdout)
    rules = {(e["rule"], e["location"]) for e in data["errors"]}
    assert ("MT009", "(store)") in rules, data["errors"]
    assert dump_store(seeded.url) == before


def test_users_can_swap_logins(seeded, tmp_path):
    seeded.ok("ext", "add", "40720", "--node", "madrid")
    seeded.ok("user", "add", "bob", "--name", "Bob", "--login", "40720")
    text = seeded.ok("export").stdout
    swapped = (text.replace('login = "40710"', 'login = "@"').replace('login = "40720"',
               'login = "40710"').replace('login = "@"', 'login = "40720"')
               .replace('webcall_mode = "multiterminal"\nwebcall_position = 1\n', ""))
    result = seeded("apply", write(tmp_path, swapped))
    assert result.exit_code == 0, result.output
    users = {u["username"]: u["login"] for u in json.loads(seeded.ok("user", "list", "--json")
                                                           .stdout)}
    assert users == {"ana": "40720", "bob": "40710"}
    assert seeded.ok("export").stdout == swapped


def test_moving_an_extension_moves_its_phones(seeded, tmp_path):
    text = seeded.ok("export").stdout.replace('nodes = [\n    "madrid",\n]',
                                              'nodes = [\n    "madrid",\n    "sevilla",\n]')
    text = text.replace('node = "madrid"', 'node = "sevilla"')
    result = seeded("apply", write(tmp_path, text))
    assert result.exit_code == 0, result.output
    assert {p["node"] for p in json.loads(seeded.ok("phone", "list", "--json").stdout)} == \
        {"sevilla"}
    assert seeded("check").exit_code == 0


def test_making_a_phone_secure_gives_it_a_key_and_not_secure_drops_it(seeded, tmp_path):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Linphone (no proxy)")
    text = seeded.ok("export").stdout
    secure = text.replace('{ position = 2, model = "Linphone (no proxy)" }',
                          '{ position = 2, model = "Linphone (no proxy)", secure = true }')
    seeded.ok("apply", write(tmp_path, secure))
    shown = json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)
    assert shown["secure"] and shown["has_key"] and shown["key_expires_at"]
    seeded.ok("apply", write(tmp_path, text, "plain.toml"))
    shown = json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)
    assert not shown["secure"] and not shown["has_key"] and shown["key_expires_at"] is None


def test_apply_stores_flags_as_0_or_1_and_what_a_phone_lacks_as_null(seeded, tmp_path, backend):
    """What Kamailio and every reader see: apply binds booleans and None in bulk (on SQLite
    through adapters registered for speed), and they must land as 0/1 and NULL."""
    text = seeded.ok("export").stdout.replace(
        '{ position = 1, model = "VIVAit Call Web" }',
        '{ position = 1, model = "VIVAit Call Web" }, { position = 2, model = '
        '"VIVAit Call Business Android", secure = true, publishable = true }, '
        '{ position = 3, model = "Linphone (no proxy)", enabled = false }')
    seeded.ok("apply", write(tmp_path, text))
    types = ", typeof(enabled), typeof(secure), typeof(location), typeof(ha1)" \
        if backend == "sqlite" else ""
    with create_engine(seeded.url).connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT phone.position, CAST(enabled AS INTEGER), CAST(secure AS INTEGER), "
            "CAST(publishable AS INTEGER), location, mac, ha1 IS NULL" + types +
            " FROM phone JOIN extension ON extension.id = phone.extension_id "
            "WHERE extension.number = '40710' AND phone.position >= 2 ORDER BY phone.position"
        ).all()
    assert [tuple(row[:7]) for row in rows] == [(2, 1, 1, 1, None, None, False),
                                                (3, 0, 0, 0, None, None, True)]
    if backend == "sqlite":
        assert [tuple(row[7:]) for row in rows] == [
            ("integer", "integer", "null", "text"), ("integer", "integer", "null", "null")]


def test_keys_never_appear_in_files_or_the_audit(mtctl, tmp_path):
    mtctl.ok("apply", str(EXAMPLES / "portal.toml"))
    engine = create_engine(mtctl.url)
    with engine.connect() as conn:
        digests = [d for row in conn.execute(select(phone.c.ha1, phone.c.ha1_sha256))
                   for d in row if d]
        audit = json.dumps([row.changes for row in conn.execute(select(audit_log))])
    engine.dispose()
    assert len(digests) == 2  # the secure Android phone
    exported = mtctl.ok("export").stdout + mtctl.ok("export", "--json").stdout
    for digest in digests:
        assert digest not in exported and digest not in audit


def test_reads_stdin_and_refuses_a_missing_file(mtctl, tmp_path):
    text = (EXAMPLES / "exclusive.toml").read_text(encoding="utf-8")
    result = mtctl("apply", "-", input=text)
    assert result.exit_code == 0, result.output
    assert "applied <stdin>" in result.stderr
    missing = mtctl("apply", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr


def test_apply_and_export_have_help_with_an_example(mtctl):
    for command in ("apply", "export"):
        result = mtctl(command, "--help")
        assert result.exit_code == 0 and "Example: mtctl " in result.stdout
