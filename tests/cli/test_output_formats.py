"""--format and --fields on every command family: golden plain/csv/tsv, JSON and NDJSON against
the schemas, piped output without ANSI or borders, one output module for all."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import update
from typer.main import get_command

from mtctl.cli.app import app
from mtctl.store.tables import phone
from tests.dump import dump_store, plant

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MTCTL = Path(sys.executable).with_name("mtctl")
BORDERS = set("┃━│╇─┼┏┓┗┛╋╸╺")


def validate(name: str, data: object) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        data)


@pytest.fixture
def store(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure", "--order", "3",
              "--location", "Home, office")
    seeded.ok("ext", "add", "40720", "--node", "madrid", "--name", 'Bo "B" Díaz')
    seeded.ok("ext", "add", "40790", "--node", "madrid")
    seeded.ok("phone", "add", "40790", "--position", "0", "--model", "VIVAit Call Web")
    seeded.ok("user", "add", "bob", "--name", "Bob", "--login", "40720", "--webcall-mode",
              "exclusive", "--webcall-ext", "40790")
    seeded.ok("group", "add", "pool")
    seeded.ok("category", "add", "national")
    seeded.ok("webcall", "start", "bob")
    return seeded


# (command, schema of each JSON object, how it prints: rows | record | document)
FAMILIES = [
    (("phone", "list"), "phone", "rows"),
    (("phone", "show", "40710", "2"), "phone-show", "record"),
    (("ext", "list"), "extension", "rows"),
    (("ext", "show", "40720"), "extension", "record"),
    (("user", "list"), "user", "rows"),
    (("user", "show", "bob"), "user", "record"),
    (("user", "phones", "ana"), "user-phones", "rows"),
    (("keys", "list"), "keys-list", "rows"),
    (("audit",), "audit", "rows"),
    (("webcall", "list"), "webcall-session", "rows"),
    (("config", "list"), "setting", "rows"),
    (("node", "list"), "node", "rows"),
    (("node", "show", "madrid"), "node-show", "record"),
    (("category", "list"), "category", "rows"),
    (("model", "list"), "model-row", "rows"),
    (("model", "show", "Cisco 8841"), "model", "record"),
    (("template", "list"), "template-row", "rows"),
    (("template", "show", "webfon"), "template", "record"),
    (("group", "list"), "group", "rows"),
    (("ring-sim", "40710", "--webcall-running"), "ring-sim", "document"),
    (("ring-sim", "40710", "--live"), "ring-sim-live", "document"),
    (("check",), "check", "document"),
]
IDS = [" ".join(command[:2]) for command, _, _ in FAMILIES]


@pytest.mark.parametrize(("command", "schema", "kind"), FAMILIES, ids=IDS)
def test_every_format_of_every_command_family(store, command, schema, kind):
    out = {fmt: store.ok(*command, "--format", fmt).stdout
           for fmt in ("json", "ndjson", "plain", "tsv", "csv", "table")}

    # json: the schema's objects; --json is the same text
    document = json.loads(out["json"])
    assert store.ok(*command, "--json").stdout == out["json"]
    if kind == "rows":
        assert isinstance(document, list) and document, out["json"]
        for item in document:
            validate(schema, item)
    else:
        validate(schema, document)

    # ndjson: one compact object per line
    lines = out["ndjson"].splitlines()
    assert out["ndjson"].endswith("\n") and all(lines)
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects)
    if kind == "rows":
        assert objects == document
    elif command[0] == "check":  # one finding per line, with its severity
        assert objects == [{"severity": s[:-1], **f} for s in ("errors", "warnings")
                           for f in document[s]]
        for line in objects:
            validate("check-line", line)
    else:
        assert objects == [document]

    # plain and tsv: the same tab-separated text; csv: the same cells, RFC 4180
    assert out["plain"] == out["tsv"]
    table = [line.split("\t") for line in out["plain"].splitlines()]
    assert len({len(row) for row in table}) == 1, out["plain"]
    assert out["csv"].endswith("\r\n")
    assert list(csv.reader(io.StringIO(out["csv"], newline=""))) == table
    if kind == "record":
        assert table[0] == list(document) and len(table) == 2
    elif kind == "rows":
        assert len(table) == len(document) + 1

    # nothing a terminal would act on, no borders but the table's
    for fmt, text in out.items():
        assert "\x1b" not in text, fmt
        if fmt != "table":
            assert not BORDERS & set(text), (fmt, text)
    # piped, the default is plain
    assert store.ok(*command).stdout == out["plain"]


GOLDEN = {
    ("ext", "list"): (
        "number\tnode\tdisplay_name\towner\tring_timeout\tphones\n"
        "40710\tmadrid\tDesk 40710\tana\t20\t3\n"
        '40720\tmadrid\tBo "B" Díaz\tbob\t20\t0\n'
        "40790\tmadrid\t\t\t20\t1\n",
        "number,node,display_name,owner,ring_timeout,phones\r\n"
        "40710,madrid,Desk 40710,ana,20,3\r\n"
        '40720,madrid,"Bo ""B"" Díaz",bob,20,0\r\n'
        "40790,madrid,,,20,1\r\n"),
    ("user", "list"): (
        "username\tdisplay_name\tlogin\twebcall_mode\twebcall_license\twebcall_extensions\t"
        "webcall_group\twebcall_position\n"
        "ana\tAna García\t40710\tmultiterminal\tdedicated\t\t\t1\n"
        "bob\tBob\t40720\texclusive\tdedicated\t40790\t\t\n",
        "username,display_name,login,webcall_mode,webcall_license,webcall_extensions,"
        "webcall_group,webcall_position\r\n"
        "ana,Ana García,40710,multiterminal,dedicated,,,1\r\n"
        "bob,Bob,40720,exclusive,dedicated,40790,,\r\n"),
    ("user", "phones", "ana"): (
        "model\textension\tlocation\tposition\torder\tenabled\tprovisionable\n"
        "Cisco 8841\t40710\tMadrid\t0\t1\ttrue\tfalse\n"
        "VIVAit Call Web\t40710\t\t1\t1\ttrue\tfalse\n"
        "VIVAit Call Business Android\t40710\tHome, office\t2\t3\ttrue\ttrue\n",
        "model,extension,location,position,order,enabled,provisionable\r\n"
        "Cisco 8841,40710,Madrid,0,1,true,false\r\n"
        "VIVAit Call Web,40710,,1,1,true,false\r\n"
        'VIVAit Call Business Android,40710,"Home, office",2,3,true,true\r\n'),
    ("phone", "list", "--fields", "extension,position,order,enabled,model,location,secure"): (
        "extension\tposition\torder\tenabled\tmodel\tlocation\tsecure\n"
        "40710\t0\t1\ttrue\tCisco 8841\tMadrid\tfalse\n"
        "40710\t1\t1\ttrue\tVIVAit Call Web\t\tfalse\n"
        "40710\t2\t3\ttrue\tVIVAit Call Business Android\tHome, office\ttrue\n"
        "40790\t0\t1\ttrue\tVIVAit Call Web\t\tfalse\n",
        "extension,position,order,enabled,model,location,secure\r\n"
        "40710,0,1,true,Cisco 8841,Madrid,false\r\n"
        "40710,1,1,true,VIVAit Call Web,,false\r\n"
        '40710,2,3,true,VIVAit Call Business Android,"Home, office",true\r\n'
        "40790,0,1,true,VIVAit Call Web,,false\r\n"),
    ("ext", "show", "40720"): (
        "number\tnode\tdisplay_name\tring_timeout\towner\tphones\n"
        '40720\tmadrid\tBo "B" Díaz\t20\tbob\t0\n',
        "number,node,display_name,ring_timeout,owner,phones\r\n"
        '40720,madrid,"Bo ""B"" Díaz",20,bob,0\r\n'),
    ("ring-sim", "40710", "--webcall-running"): (
        "number\tstage\torder\tring_seconds\textension\tposition\tmodel\treason\n"
        "40710\t1\t1\t20\t40710\t0\tCisco 8841\t\n"
        "40710\t1\t1\t20\t40710\t1\tVIVAit Call Web\t\n"
        "40710\t2\t3\t20\t40710\t2\tVIVAit Call Business Android\t\n",
        "number,stage,order,ring_seconds,extension,position,model,reason\r\n"
        "40710,1,1,20,40710,0,Cisco 8841,\r\n"
        "40710,1,1,20,40710,1,VIVAit Call Web,\r\n"
        "40710,2,3,20,40710,2,VIVAit Call Business Android,\r\n"),
    ("ring-sim", "40710"): (
        "number\tstage\torder\tring_seconds\textension\tposition\tmodel\treason\n"
        "40710\t1\t1\t20\t40710\t0\tCisco 8841\t\n"
        "40710\t2\t3\t20\t40710\t2\tVIVAit Call Business Android\t\n"
        "40710\t\t1\t\t40710\t1\tVIVAit Call Web\twebcall-not-running\n",
        "number,stage,order,ring_seconds,extension,position,model,reason\r\n"
        "40710,1,1,20,40710,0,Cisco 8841,\r\n"
        "40710,2,3,20,40710,2,VIVAit Call Business Android,\r\n"
        "40710,,1,,40710,1,VIVAit Call Web,webcall-not-running\r\n"),
    ("webcall", "list", "--fields", "user,extension"): (
        "user\textension\nbob\t40790\n",
        "user,extension\r\nbob,40790\r\n"),
    ("model", "list", "--fields", "name,kind"): (
        "name\tkind\nCisco 8841\thardphone\nGeneric SIP hardphone\thardphone\n"
        "Linphone (no proxy)\tsoftphone\nVIVAit Call Business Android\tapp\n"
        "VIVAit Call Business iOS\tapp\nVIVAit Call Web\twebcall\nYealink T54W\thardphone\n",
        "name,kind\r\nCisco 8841,hardphone\r\nGeneric SIP hardphone,hardphone\r\n"
        "Linphone (no proxy),softphone\r\nVIVAit Call Business Android,app\r\n"
        "VIVAit Call Business iOS,app\r\nVIVAit Call Web,webcall\r\nYealink T54W,hardphone\r\n"),
    ("group", "list"): ("name\textensions\npool\t\n", "name,extensions\r\npool,\r\n"),
}


@pytest.mark.parametrize("command", list(GOLDEN), ids=[" ".join(c[:2]) for c in GOLDEN])
def test_golden_plain_tsv_and_csv(store, command):
    plain, as_csv = GOLDEN[command]
    assert store.ok(*command, "--format", "plain").stdout == plain
    assert store.ok(*command, "--format", "tsv").stdout == plain
    assert store.ok(*command, "--format", "csv").stdout == as_csv


def test_keys_list_says_never_provisioned_in_every_format(store):
    """A secure desk phone that never fetched its file has no usable key (SPEC §9)."""
    store.ok("phone", "set", "40710", "0", "--secure", "--mac", "00:56:2b:04:36:15")
    fields = ("--fields", "extension,position,model,state")
    assert store.ok("keys", "list", *fields, "--format", "plain").stdout == (
        "extension\tposition\tmodel\tstate\n"
        "40710\t2\tVIVAit Call Business Android\tok\n"
        "40710\t0\tCisco 8841\tnever-provisioned\n")
    assert store.ok("keys", "list", *fields, "--format", "tsv").stdout == \
        store.ok("keys", "list", *fields, "--format", "plain").stdout
    assert store.ok("keys", "list", *fields, "--format", "csv").stdout == (
        "extension,position,model,state\r\n"
        "40710,2,VIVAit Call Business Android,ok\r\n"
        "40710,0,Cisco 8841,never-provisioned\r\n")
    listed = json.loads(store.ok("keys", "list", "--format", "json").stdout)
    for item in listed:
        validate("keys-list", item)
    assert [(k["position"], k["state"]) for k in listed] == [(2, "ok"),
                                                           (0, "never-provisioned")]
    lines = store.ok("keys", "list", "--format", "ndjson").stdout.splitlines()
    assert [json.loads(line) for line in lines] == listed
    assert "never-provisioned" in store.ok("keys", "list", *fields, "--format",
                                           "table").stdout


def test_check_prints_findings_on_stdout_and_the_count_on_stderr(store):
    plant(store.url, update(phone).where(phone.c.sip_auth_user == "40710-0")
          .values(publishable=True))
    r = store("check")
    assert r.exit_code == 1, r.output
    assert r.stdout == (
        "severity\trule\tobject\tmessage\thint\n"
        "error\tMT005\tphone 40710:0\tis publishable but not secure\t"
        "add --secure or drop --publishable\n"
        "warning\tsilent-extension\textension 40720\thas no phones, so nothing rings\t"
        "mtctl phone add 40720 ... or mtctl phone set 40720 POS --order 1\n")
    assert r.stderr == "1 error(s), 1 warning(s)\n"
    r = store("check", "--format", "csv", "--fields", "rule,object")
    assert r.stdout == "rule,object\r\nMT005,phone 40710:0\r\nsilent-extension,extension 40720\r\n"
    assert r.stderr == "1 error(s), 1 warning(s)\n"
    r = store("check", "--format", "json")
    assert r.exit_code == 1 and r.stderr == ""
    assert [(e["rule"], e["hint"]) for e in json.loads(r.stdout)["errors"]] == [
        ("MT005", "add --secure or drop --publishable")]
    # the table says the hint after the message, as an error line does
    r = store("check", "--format", "table")
    assert "is publishable but not secure — add --secure or drop --publishable" in " ".join(
        r.stdout.split()), r.stdout


def test_keys_rotate_dry_run_prints_the_due_phones_on_stdout_and_the_count_on_stderr(store):
    from datetime import UTC, datetime, timedelta

    store.ok("phone", "set", "40710", "0", "--secure", "--mac", "00:56:2b:04:36:15")
    expires = datetime.now(UTC) + timedelta(days=20)  # a 90-day key inside a 30-day window
    plant(store.url, update(phone).values(key_expires_at=expires,
                                          key_updated_at=expires - timedelta(days=90)))
    r = store.ok("keys", "rotate", "--dry-run", "--within", "30")
    assert r.stdout == ("extension\tposition\trenewal\n"
                        "40710\t0\ton-fetch\n"
                        "40710\t2\trotate\n")
    assert r.stderr == ("1 key(s) due, 0 failed\n"
                        "1 desk phone key(s) due on fetch: the next fetch brings a new key\n")
    document = json.loads(store.ok("keys", "rotate", "--dry-run", "--within", "30",
                                   "--json").stdout)
    validate("keys-rotate", document)
    assert [(d["extension"], d["position"]) for d in document["rotated"]] == [("40710", 2)]
    assert document["marked"] == [{"extension": "40710", "position": 0}]


def test_fields_pick_and_order_columns_and_json_keys(store):
    assert store.ok("phone", "show", "40710", "2", "--fields", "model,position").stdout == \
        "model\tposition\nVIVAit Call Business Android\t2\n"
    assert json.loads(store.ok("ext", "list", "--json", "--fields", "phones,number").stdout) \
        == [{"phones": 3, "number": "40710"}, {"phones": 0, "number": "40720"},
            {"phones": 1, "number": "40790"}]
    assert store.ok("user", "show", "ana", "--format", "ndjson", "--fields", "login").stdout \
        == '{"login":"40710"}\n'
    # any field of the JSON object, also one the table does not show
    assert store.ok("phone", "list", "40710", "--fields", "sip_auth_user,kind").stdout == (
        "sip_auth_user\tkind\n40710-0\thardphone\n40710-1\twebcall\n40710-2\tapp\n")


@pytest.mark.parametrize(("args", "says"), [
    (("phone", "list", "--fields", "extension,nope"), "no field 'nope'"),
    (("ext", "show", "40710", "--fields", "Number"), "no field 'Number'"),
    (("ext", "list", "--fields", "n\x1b"), "no field 'n\\x1b' "),  # escaped once, not twice
    (("phone", "list", "--fields", "extension,,model"), "not a list of field names"),
    (("phone", "list", "--fields", "model,model"), "not a list of field names"),
    (("user", "list", "--json", "--format", "csv"), "--json and --format csv disagree"),
    (("ring-sim", "40710", "--format", "json", "--fields", "number"), "--fields picks columns"),
    (("check", "--json", "--fields", "rule"), "--fields picks columns"),
    (("phone", "list", "--format", "yaml"), "yaml"),
])
def test_bad_format_or_fields_is_one_line_exit_2_with_nothing_on_stdout(store, args, says):
    before = dump_store(store.url)
    r = store(*args)
    assert r.exit_code == 2, r.output
    assert r.stdout == "" and says in r.stderr, r.output
    assert "Traceback" not in r.output
    assert dump_store(store.url) == before


def test_unknown_field_names_the_valid_ones(store):
    r = store("ext", "list", "--fields", "numbr")
    assert r.stderr.count("\n") == 1, r.stderr
    assert "use some of: number,node,display_name,ring_timeout,owner,phones" in r.stderr


def test_control_characters_planted_in_the_store_cannot_break_rows(store):
    plant(store.url, update(phone).where(phone.c.sip_auth_user == "40710-0")
          .values(location="Home\toffice\nfloor 2\x1b[31m"))
    fields = ("--fields", "extension,position,location")
    plain = store.ok("phone", "list", "40710", *fields).stdout
    assert plain.splitlines()[1] == "40710\t0\tHome\\toffice\\nfloor 2\\x1b[31m"
    assert len(plain.splitlines()) == 4
    as_csv = store.ok("phone", "list", "40710", *fields, "--format", "csv").stdout
    assert as_csv.split("\r\n")[1] == "40710,0,Home\\toffice\\nfloor 2\\x1b[31m"
    record = json.loads(store.ok("phone", "show", "40710", "0", "--json").stdout)
    assert record["location"] == "Home\toffice\nfloor 2\x1b[31m"  # JSON keeps the data


def test_keys_rotate_dry_run_lists_the_due_phones_in_every_format(store):
    """The dry run's due phones are a listing like any other; --format json is --json, the
    whole report; a real rotation stays silent whatever the format."""
    plant(store.url, update(phone).where(phone.c.sip_auth_user == "40710-2").values(
        key_expires_at=datetime.now(UTC) + timedelta(days=3),
        key_updated_at=datetime.now(UTC) - timedelta(days=87)))
    args = ("keys", "rotate", "--dry-run")
    assert store.ok(*args, "--format", "csv").stdout == (
        "extension,position,renewal\r\n40710,2,rotate\r\n")
    assert store.ok(*args, "--format", "tsv", "--fields", "renewal,extension").stdout == (
        "renewal\textension\nrotate\t40710\n")
    lines = [json.loads(line)
             for line in store.ok(*args, "--format", "ndjson").stdout.splitlines()]
    assert lines == [{"extension": "40710", "position": 2, "renewal": "rotate"}]
    validate("keys-due", lines[0])
    report = json.loads(store.ok(*args, "--format", "json").stdout)
    validate("keys-rotate", report)
    assert report == json.loads(store.ok(*args, "--json").stdout) and report["count"] == 1
    r = store(*args, "--fields", "renwal")
    assert r.exit_code == 2 and "use some of: extension,position,renewal" in r.stderr
    r = store.ok("keys", "rotate", "--format", "csv")
    assert (r.stdout, r.stderr) == ("", "")
    assert store.ok(*args, "--format", "csv").stdout == "extension,position,renewal\r\n"


def test_a_backslash_is_doubled_so_it_never_reads_as_an_escape(store):
    """A location spelled with a backslash and a `t` is not the location with a tab."""
    for position, location in [(0, "Home\\toffice"), (1, "Home\toffice")]:
        plant(store.url, update(phone).where(phone.c.sip_auth_user == f"40710-{position}")
              .values(location=location))
    fields = ("--fields", "position,location")
    plain = store.ok("phone", "list", "40710", *fields).stdout.splitlines()
    assert plain[1:3] == ["0\tHome\\\\toffice", "1\tHome\\toffice"]
    as_csv = store.ok("phone", "list", "40710", *fields, "--format", "csv").stdout
    assert as_csv.split("\r\n")[1:3] == ["0,Home\\\\toffice", "1,Home\\toffice"]
    back = [line.split("\t")[1].encode().decode("unicode_escape") for line in plain[1:3]]
    assert back == ["Home\\toffice", "Home\toffice"]


def test_empty_listings_in_every_format(mtctl):
    for fmt, expected in [("plain", "number\tnode\tdisplay_name\towner\tring_timeout\tphones\n"),
                          ("csv", "number,node,display_name,owner,ring_timeout,phones\r\n"),
                          ("json", "[]\n"), ("ndjson", "")]:
        r = mtctl.ok("ext", "list", "--format", fmt)
        assert (r.stdout, r.stderr) == (expected, ""), fmt
    r = mtctl.ok("ext", "list", "--format", "table")
    assert (r.stdout, r.stderr) == ("", "no extensions\n")


def test_the_default_is_a_table_on_a_terminal_and_plain_otherwise(monkeypatch):
    from mtctl.cli import output

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    assert output.style(None, None).format is output.Format.table
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert output.style(None, None).format is output.Format.plain
    assert output.style(None, None, True).format is output.Format.json


def test_piped_output_of_a_real_process_has_no_ansi_and_no_borders(store, tmp_path):
    env = {**os.environ, "MTCTL_DATABASE_URL": store.url, "FORCE_COLOR": "1",
           "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    for args in (["phone", "list"], ["ring-sim", "40710"], ["check"], ["audit"],
                 ["keys", "list"], ["user", "phones", "ana"],
                 ["keys", "rotate", "--dry-run", "--within", "36500"]):
        result = subprocess.run([str(MTCTL), *args], env=env, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and not BORDERS & set(result.stdout), args
        header = result.stdout.splitlines()[0]
        assert "\t" in header and header == header.lower(), (args, header)


def test_every_listing_and_show_takes_format_and_fields():
    """No command prints data its own way: each listing and show goes through the module."""
    root = get_command(app)
    missing = []

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        if path and path[-1] in ("list", "show", "phones", "ring-sim", "check", "audit"):
            options = {opt for p in command.params for opt in getattr(p, "opts", [])}
            if not {"--format", "--fields", "--json"} <= options:
                missing.append(" ".join(path))

    walk(root, [])
    assert missing == []


def test_every_shape_names_a_typed_row_and_known_columns():
    """Each command's Shape points at a TypedDict of mtctl/shapes.py (by name, so that start-up
    does not import it) and shows only fields that object has."""
    import importlib
    import pkgutil
    import typing

    import mtctl.cli
    from mtctl import shapes
    from mtctl.cli.output import Shape

    found = []
    for module in pkgutil.iter_modules(mtctl.cli.__path__):
        loaded = importlib.import_module(f"mtctl.cli.{module.name}")
        found += [v for v in vars(loaded).values() if isinstance(v, Shape)]
    found += [s for entry in importlib.import_module("mtctl.cli.catalog").CATALOG
              for s in (entry.listed, entry.shown) if s is not None]
    assert len(found) >= 15
    for shape in found:
        row = getattr(shapes, shape.row)
        assert typing.is_typeddict(row), shape
        assert set(shape.shown) <= set(shape.fields), shape


def test_start_up_does_not_import_the_shapes_for_json_or_plain_listings(store):
    for args in (["--help"], ["phone", "list", "--json"], ["ring-sim", "40710", "--json"],
                 ["phone", "list"], ["ext", "list", "--format", "csv"]):
        env = {**os.environ, "MTCTL_DATABASE_URL": store.url}
        result = subprocess.run([sys.executable, "-X", "importtime", str(MTCTL), *args],
                                env=env, capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == 0, result.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
        assert "mtctl.shapes" not in imported, args


def test_on_a_real_terminal_the_default_is_the_table(store):
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "MTCTL_DATABASE_URL": store.url, "COLUMNS": "200", "NO_COLOR": "1"}
    try:
        process = subprocess.Popen([str(MTCTL), "ext", "list"], env=env, stdout=follower,
                                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(60) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    shown = b"".join(chunks).decode()
    assert "display name" in shown and BORDERS & set(shown), shown  # titles and rules
    assert "\t" not in shown


@pytest.mark.parametrize("fmt", ["plain", "csv", "ndjson"])
def test_long_listings_are_written_in_blocks_with_the_same_bytes(fmt, monkeypatch):
    """Where stdout is unbuffered (python -u, PYTHONUNBUFFERED) every write is a system call:
    a long listing goes out a thousand lines to a write, and its bytes are those of one line
    at a time; the lines before a failure are still printed."""
    from mtctl.cli import output

    shape = output.Shape("extension", "Extension", columns=("number", "display_name"))
    items = [{"number": str(40000 + i), "display_name": f'Desk "{i}", A\tB'}
             for i in range(2 * output.LINES_PER_WRITE + 1)]
    writes: list[str] = []

    class Out:
        def write(self, text: str) -> None:
            writes.append(text)

    monkeypatch.setattr(sys, "stdout", Out())
    output.rows(items, shape, output.style(output.Format(fmt), None, False))
    one_by_one = io.StringIO()
    if fmt == "csv":
        writer = csv.writer(one_by_one, lineterminator="\r\n")
        writer.writerow(["number", "display_name"])
        writer.writerows([i["number"], i["display_name"].replace("\tB", "\\tB")]
                         for i in items)
    elif fmt == "plain":
        one_by_one.write("number\tdisplay_name\n")
        one_by_one.writelines(f"{i['number']}\t{i['display_name']}\n".replace("\tB", "\\tB")
                              for i in items)
    else:
        one_by_one.writelines(json.dumps(i, ensure_ascii=False, separators=(",", ":")) + "\n"
                              for i in items)
    assert "".join(writes) == one_by_one.getvalue()
    assert len(writes) == 3

    def failing():
        yield from items[:5]
        raise RuntimeError("driver error")

    writes.clear()
    with pytest.raises(RuntimeError):
        output.rows(failing(), shape, output.style(output.Format(fmt), None, False))
    assert "".join(writes).count("\n") == 5 + (fmt != "ndjson")
