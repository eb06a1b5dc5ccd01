"""Every value a user gives is bounded and checked the same way by the CLI and by config files:
numbers past their range, settings that would break later commands, and control characters
in text are refused with one line and exit 2 (exit 1 with the file's location for apply),
and a store that already holds such values gets a clear error or a check finding, never a
traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from mtctl.store.tables import (
    app_user,
    category,
    extension,
    node,
    phone,
    phone_model,
    setting,
    template,
)
from tests.dump import assert_one_line_error, assert_refused, dump_store, plant

HUGE = "99999999999999999999"  # past SQLite's 64-bit integers
GENERIC = "Generic SIP hardphone"


@pytest.fixture
def store(seeded):
    """The seed's example plus a secure app phone at 40710:2."""
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure")
    return seeded


@pytest.mark.parametrize("args", [
    ("phone", "show", "40710", HUGE),
    ("phone", "rm", "40710", HUGE),
    ("phone", "enable", "40710", HUGE),
    ("phone", "disable", "40710", HUGE),
    ("phone", "set", "40710", HUGE, "--order", "2"),
    ("phone", "set", "40710", "0", "--order", HUGE),
    ("phone", "set", "40710", "0", "--position", HUGE),
    ("phone", "add", "40710", "--position", HUGE, "--model", GENERIC),
    ("phone", "show", "40710", "²"),  # str.isdigit() says yes, int() says no
    ("phone", "show", "40710", "٣"),  # int() would read an Arabic-Indic 3
    ("provision", "40710", HUGE),
    ("provision", "40710", "²"),
    ("provision", "revoke", "40710", HUGE),
    ("ring-sim", "40710", "--offline", f"40710:{HUGE}"),
    ("ring-sim", "40710", "--offline", "40710:²"),
    ("audit", "--limit", HUGE),
    ("audit", "--since", "99999999h"),
    ("audit", "--since", f"{HUGE}d"),
    ("audit", "--since", "0001-01-01T00:00+01:00"),
    ("keys", "rotate", "--within", "3000000"),
    ("keys", "rotate", "--limit", HUGE),
    ("keys", "rotate", "--batch-size", HUGE),
    ("keys", "list", "--expiring-within", "3000000"),
    ("ext", "set", "40710", "--ring-timeout", HUGE),
    ("user", "set", "ana", "--webcall-position", HUGE),
    ("template", "add", "t", "--key-lifetime", "2000000000"),
    ("apply", "pbx.toml", "--max-size", "36501"),  # would allocate 36 GiB to read the file
])
def test_numbers_past_their_range_are_one_line_exit_2(store, args):
    r = assert_refused(store, *args, exit_code=2)
    assert "out of range" in r.stderr or "not a whole number" in r.stderr \
        or "not a time" in r.stderr, r.stderr


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("keys.rotate_within_days", "3000000", "from 0 to 36499"),
    ("keys.grace_days", "3000000", "from 0 to 3650"),
    ("keys.lifetime_days", "99999999999", "from 1 to 36500"),
    ("keys.lifetime_days", "0", "from 1 to 36500"),
    ("provisioning.token_ttl_hours", "9999999999999", "from 1 to 8760"),
    ("provisioning.token_ttl_hours", "²", "from 1 to 8760"),
    ("keys.grace_days", "-1", "from 0 to 3650"),
    ("keys.rotate_within_days", "90", "not shorter than the key lifetime"),
    ("keys.lifetime_days", "7", "not shorter than the key lifetime"),
])
def test_settings_out_of_range_are_refused_and_later_commands_keep_working(
        store, key, value, expected):
    r = assert_refused(store, "config", "set", "--", key, value, exit_code=2)
    assert expected in r.stderr and key in r.stderr, r.stderr
    for args in [("check",), ("keys", "list"), ("keys", "rotate"), ("provision", "40710", "2")]:
        if args[0] == "provision":
            store.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p")
        store.ok(*args)


def test_the_widest_settings_are_accepted_and_every_command_runs_with_them(store):
    store.ok("config", "set", "keys.lifetime_days", "36500")
    store.ok("config", "set", "keys.rotate_within_days", "36499")
    store.ok("config", "set", "keys.grace_days", "3650")
    store.ok("config", "set", "provisioning.token_ttl_hours", "8760")
    store.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p")
    store.ok("template", "add", "forever", "--key-lifetime", "36500", "--secure")
    store.ok("phone", "add", "40710", "--position", "3", "--model",
             "VIVAit Call Business iOS", "--template", "forever")
    for args in [("check",), ("keys", "list", "--expiring-within", "36500"),
                 ("keys", "rotate", "--within", "36500"), ("provision", "40710", "3"),
                 ("audit", "--since", "36500d")]:
        store.ok(*args)


def test_a_template_lifetime_within_the_rotation_window_is_refused(store):
    r = assert_refused(store, "template", "add", "short", "--key-lifetime", "7", exit_code=2)
    assert "template 'short'" in r.stderr and "keys.rotate_within_days = 7" in r.stderr
    store.ok("template", "add", "short", "--key-lifetime", "8")
    r = assert_refused(store, "config", "set", "keys.rotate_within_days", "8", exit_code=2)
    assert "template 'short'" in r.stderr, r.stderr


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pbx.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("toml", "where"), [
    ("[settings]\nkeys.lifetime_days = 2147483647\n", "settings.keys.lifetime_days"),
    ("[settings]\nkeys.lifetime_days = 36501\n", "settings.keys.lifetime_days"),
    ("[settings]\nkeys.grace_days = 3651\n", "settings.keys.grace_days"),
    ("[settings]\nprovisioning.token_ttl_hours = 8761\n",
     "settings.provisioning.token_ttl_hours"),
    ("[settings]\nkeys.rotate_within_days = 90\n", "settings.keys.rotate_within_days"),
    ("[settings]\nkeys.lifetime_days = 5\n", "settings.keys.rotate_within_days"),
    ("[templates.short]\nkey_lifetime_days = 7\n", "templates.short.key_lifetime_days"),
    ("[templates.long]\nkey_lifetime_days = 2000000000\n", "templates.long.key_lifetime_days"),
])
def test_a_config_file_gets_the_same_ranges_as_the_cli(store, tmp_path, toml, where):
    path = write(tmp_path, toml)
    before = dump_store(store.url)
    for args in [("apply", path, "--dry-run"), ("apply", path)]:
        r = store(*args)
        assert r.exit_code == 1, (args, r.output)
        assert "Traceback" not in r.output
        assert "pbx.toml:" in r.stderr and where in r.stderr, r.stderr
    assert dump_store(store.url) == before


def test_a_config_file_may_move_window_and_lifetime_together(store, tmp_path):
    path = write(tmp_path, "[settings]\nkeys.lifetime_days = 400\n"
                 "keys.rotate_within_days = 200\n")
    store.ok("apply", path)
    assert store.ok("config", "get", "keys.rotate_within_days").stdout.strip() == "200"
    store.ok("keys", "rotate")


@pytest.mark.parametrize(("key", "value"), [
    ("keys.rotate_within_days", "3000000"),
    ("keys.grace_days", "3000000"),
    ("keys.lifetime_days", "99999999999"),
    ("provisioning.token_ttl_hours", "9999999999999"),
    ("keys.lifetime_days", "ninety"),
])
def test_a_store_holding_a_setting_out_of_range_names_it_instead_of_crashing(store, key, value):
    store.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p")
    plant(store.url, insert(setting).values(key=key, value=value))
    for args in [("check",), ("keys", "list"), ("keys", "rotate"),
                 ("phone", "add", "40710", "--position", "3", "--model",
                  "VIVAit Call Business iOS", "--secure"),
                 ("provision", "40710", "2")]:
        before = dump_store(store.url)
        r = store(*args)
        assert "Traceback" not in r.output, (args, r.output)
        if r.exit_code == 0:  # a command that does not read this setting
            continue
        assert dump_store(store.url) == before, args
        if r.exit_code == 1:  # check reports it as a finding
            assert args == ("check",) and f"error\tbad-setting\tsetting {key}\tholds" in r.stdout
            continue
        assert r.exit_code == 2, (args, r.output)
        assert_one_line_error(r)
        assert f"setting {key}" in r.stderr and f"mtctl config set {key}" in r.stderr, r.stderr
    store.ok("config", "unset", key)
    store.ok("check")


def test_a_store_holding_a_window_as_long_as_the_lifetime_says_so(store):
    plant(store.url, insert(setting).values(key="keys.rotate_within_days", value="90"))
    for args in [("check",), ("keys", "list"), ("keys", "rotate")]:
        r = assert_refused(store, *args, exit_code=2)
        assert "keys.rotate_within_days (90) is not shorter" in r.stderr, r.stderr


def test_a_store_holding_a_template_lifetime_out_of_range_is_reported(store):
    store.ok("template", "add", "long", "--key-lifetime", "30", "--secure")
    plant(store.url, update(template).where(template.c.name == "long")
          .values(key_lifetime_days=2_000_000_000))
    found = json.loads(store("check", "--json").stdout)
    assert {"rule": "bad-setting", "object": "template long",
            "message": "key lifetime 2000000000 days is out of range (1 to 36500)",
            "hint": "export, fix key_lifetime_days, apply"} \
        in found["errors"]
    r = assert_refused(store, "phone", "add", "40710", "--position", "3", "--model",
                       "VIVAit Call Business iOS", "--template", "long", exit_code=2)
    assert "template 'long' holds a key lifetime of 2000000000 days" in r.stderr


CONTROLS = ["a\nb", "a\rb", "a\tb", "a\x1b[31mb", "a\x7fb", "a\x85b", "a\x9bb", "a\x00b",
            "a\u2028b", "a\u202eb"]


def _writes(text: str) -> list[tuple[str, ...]]:
    """Every command that stores a text value, with TEXT in that value."""
    return [
        ("node", "add", text),
        ("category", "add", text),
        ("model", "add", text, "--vendor", "X", "--kind", "softphone"),
        ("model", "add", "M", "--vendor", text, "--kind", "softphone"),
        ("template", "add", text),
        ("group", "add", text),
        ("ext", "add", "40750", "--node", "madrid", "--name", text),
        ("ext", "set", "40710", "--name", text),
        ("user", "add", text, "--name", "Bo", "--login", "40720"),
        ("user", "add", "bo", "--name", text, "--login", "40720"),
        ("user", "set", "ana", "--name", text),
        ("phone", "add", "40710", "--position", "3", "--model", GENERIC, "--location", text),
        ("phone", "set", "40710", "0", "--location", text),
        ("config", "set", "sip.proxy", f"sip:{text}"),
        ("config", "set", "provisioning.base_url", f"https://p.example.com/{text}"),
        ("--actor", text, "node", "add", "lisbon"),
    ]


@pytest.mark.parametrize("text", CONTROLS, ids=repr)
def test_control_characters_are_refused_at_every_write_and_the_field_is_named(store, text):
    store.ok("ext", "add", "40720", "--node", "madrid")
    for args in _writes(text):
        if args[0] == "--actor":  # the fixture passes its own --actor; a later one wins
            before = dump_store(store.url)
            r = store(*args)
            assert r.exit_code == 2 and "--actor contains" in r.stderr, r.output
            assert dump_store(store.url) == before
            continue
        r = assert_refused(store, *args, exit_code=2)
        assert ("contains" in r.stderr or "without control characters" in r.stderr), r.stderr
        assert "\x1b" not in r.stderr and "\n" not in r.stderr.strip(), repr(r.stderr)


@pytest.mark.parametrize(("toml", "where"), [
    ('nodes = ["a\\nb"]\n', "nodes[0]"),
    ('categories = ["a\\u001bb"]\n', "categories[0]"),
    ('[models."a\\u0085b"]\nkind = "app"\n', "models"),
    ('[models.m]\nkind = "app"\nvendor = "a\\u007fb"\n', "models.m.vendor"),
    ('[templates."a\\tb"]\n', "templates"),
    ('[groups."a\\rb"]\n', "groups"),
    ('[extensions.40710]\nnode = "madrid"\nname = "Desk\\n40710"\n', 'extensions."40710".name'),
    ('[extensions.40710]\nnode = "madrid"\nphones = [{position = 0, model = "Cisco 8841", '
     'location = "a\\u009bb"}]\n', 'extensions."40710".phones[0].location'),
    ('[users."a\\nb"]\nname = "A"\nlogin = "40710"\n', "users"),
    ('[users.ana]\nname = "Ana\\nGarcía"\nlogin = "40710"\n', "users.ana.name"),
    ('[settings]\nsip.proxy = "sip:a\\u001bb"\n', "settings.sip.proxy"),
    ('[extensions.40710]\nnode = "madrid"\nname = "Desk\\u2029"\n', 'extensions."40710".name'),
    ('[users.ana]\nname = "\\u202eAna"\nlogin = "40710"\n', "users.ana.name"),
])
def test_a_config_file_refuses_control_characters_in_the_same_fields(store, tmp_path, toml,
                                                                     where):
    path = write(tmp_path, toml)
    before = dump_store(store.url)
    r = store("apply", path)
    assert r.exit_code == 1, r.output
    assert where in r.stderr and "control character" in r.stderr, r.stderr
    assert dump_store(store.url) == before


def test_a_store_holding_control_characters_is_checked_and_listed_escaped(store):
    plant(store.url,
          insert(node).values(name="evil\x1b[2Jnode"),
          update(extension).where(extension.c.number == "40710")
          .values(display_name="Desk\n40710"),
          update(app_user).where(app_user.c.username == "ana")
          .values(display_name="Ana\x1b]0;pwned\x07"),
          update(phone).where(phone.c.sip_auth_user == "40710-0").values(location="a\x9bb"),
          insert(category).values(name="del\x7fete"),
          insert(category).values(name="rtl\u202eoverride"),
          update(phone_model).where(phone_model.c.name == "Generic SIP hardphone")
          .values(vendor="tab\there"))
    found = json.loads(store("check", "--json").stdout)
    bad = sorted((e["rule"], e["object"], e["message"]) for e in found["errors"]
                 if e["rule"] == "bad-text")
    assert bad == [
        ("bad-text", "category del\\x7fete", "name contains a delete (DEL)"),
        ("bad-text", "category rtl\\u202eoverride", "name contains the control character "
         "U+202E"),
        ("bad-text", "extension 40710", "display name contains a newline"),
        ("bad-text", "model Generic SIP hardphone", "vendor contains a tab"),
        ("bad-text", "node evil\\x1b[2Jnode", "name contains an escape (ESC)"),
        ("bad-text", "phone 40710:0", "location contains the control character U+009B"),
        ("bad-text", "user ana", "display name contains an escape (ESC)"),
    ]
    r = store("check")
    assert r.exit_code == 1 and "\x1b" not in r.stderr, repr(r.stderr)
    for args in [("node", "list"), ("ext", "list"), ("ext", "show", "40710"), ("user", "list"),
                 ("user", "show", "ana"), ("phone", "list"), ("user", "phones", "ana"),
                 ("ring-sim", "40710", "--webcall-running"), ("ring-sim", "40710"),
                 ("audit",)]:
        r = store.ok(*args)
        for raw in ("\x1b", "\x07", "\x9b", "Desk\n"):
            assert raw not in r.output, (args, r.output)
    assert "Desk\\n40710" in store.ok("ext", "show", "40710").stdout
    listed = store.ok("phone", "list", "40710", "--json").stdout
    assert "\x9b" not in listed and "\\u009b" in listed, repr(listed)
    assert {p["location"] for p in json.loads(listed)} >= {"a\x9bb"}  # the data is intact
    assert "Ana\\x1b]0;pwned\\x07" in store.ok("ring-sim", "40710", "--webcall-running",
                                               "--format", "table").stdout


@pytest.mark.parametrize(("key", "value"), [("keys.grace_days", "3000000"),
                                            ("keys.lifetime_days", "99999999999")])
def test_cron_rotation_of_a_due_key_names_a_setting_out_of_range(store, key, value):
    from datetime import UTC, datetime, timedelta

    plant(store.url,
          update(phone).where(phone.c.sip_auth_user == "40710-2")
          .values(key_expires_at=datetime.now(UTC) - timedelta(days=1)),
          insert(setting).values(key=key, value=value))
    r = assert_refused(store, "keys", "rotate", exit_code=2)
    assert f"setting {key} holds '{value}'" in r.stderr, r.stderr
    store.ok("config", "unset", key)
    store.ok("keys", "rotate")
    assert store.ok("keys", "rotate", "--dry-run").stderr.startswith("0 key(s) due")


def test_check_reports_a_planted_template_lifetime_within_the_rotation_window(store):
    store.ok("template", "add", "short", "--key-lifetime", "30", "--secure")
    plant(store.url, update(template).where(template.c.name == "short")
          .values(key_lifetime_days=5))
    r = store("check")
    assert r.exit_code == 1, r.output
    assert "error\tbad-setting\ttemplate short\ttemplate 'short' has a key lifetime " \
        "of 5 days, not longer than the rotation window" in r.stdout, r.stdout


def test_text_that_is_not_utf8_is_refused_at_every_write(store):
    import os
    import subprocess
    import sys

    store.ok("ext", "add", "40720", "--node", "madrid")
    for args in _writes("a\udcffb"):  # how Python holds the argv bytes a\xffb
        if args[0] == "--actor":
            continue
        r = assert_refused(store, *args, exit_code=2)
        assert "UTF-8" in r.stderr, r.stderr  # refused with the argument, or as the field
    before = dump_store(store.url)
    env = {k: v for k, v in os.environ.items() if k != "MTCTL_DATABASE_URL"}
    done = subprocess.run([sys.executable, "-m", "mtctl", "--db", store.url, "node", "add",
                           b"a\xffb"], capture_output=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr and done.stderr.count(b"\n") == 1, done.stderr
    assert dump_store(store.url) == before


def test_cron_rotation_skips_a_phone_whose_stored_template_lifetime_is_out_of_range(store):
    from datetime import UTC, datetime, timedelta

    store.ok("template", "add", "long", "--key-lifetime", "30", "--secure")
    store.ok("phone", "add", "40710", "--position", "3", "--model",
             "VIVAit Call Business iOS", "--template", "long")
    past = datetime.now(UTC) - timedelta(days=1)
    plant(store.url,
          update(template).where(template.c.name == "long")
          .values(key_lifetime_days=2_000_000_000),
          update(phone).where(phone.c.sip_auth_user.in_(["40710-2", "40710-3"]))
          .values(key_expires_at=past))
    r = store("keys", "rotate")
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert r.stderr.strip() == ("mtctl: error: rotating phone 40710:3 failed: its template's "
                                "key lifetime (2000000000 days) is out of range; see: mtctl "
                                "check"), r.stderr
    states = {k["position"]: k["state"] for k in json.loads(
        store.ok("keys", "list", "--json").stdout)}
    assert states[2] != "expired" and states[3] == "expired", states
