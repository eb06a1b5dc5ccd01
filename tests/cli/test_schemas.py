"""The --json outputs are a contract: real outputs validate against schemas/*.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def validate(name: str, data) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        data)


@pytest.fixture
def store(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure", "--order", "3")
    seeded.ok("phone", "add", "40710", "--position", "3", "--model", "Linphone (no proxy)",
              "--order", "0", "--disabled", "--location", "Laptop")
    seeded.ok("ext", "add", "40720", "--node", "madrid")
    seeded.ok("ext", "add", "40790", "--node", "madrid")
    seeded.ok("phone", "add", "40790", "--position", "0", "--model", "VIVAit Call Web")
    seeded.ok("user", "add", "bob", "--name", "Bob", "--login", "40720", "--webcall-mode",
              "exclusive", "--webcall-ext", "40790")
    return seeded


LISTINGS = [
    ("phone", ["phone", "list"]),
    ("extension", ["ext", "list"]),
    ("user", ["user", "list"]),
    ("user-phones", ["user", "phones", "ana"]),
    ("keys-list", ["keys", "list"]),
    ("audit", ["audit"]),
]


@pytest.mark.parametrize(("schema", "command"), LISTINGS, ids=[s for s, _ in LISTINGS])
def test_listings_are_arrays_of_schema_objects(store, schema, command):
    items = json.loads(store.ok(*command, "--json").stdout)
    assert isinstance(items, list) and items
    for item in items:
        validate(schema, item)


@pytest.mark.parametrize(("schema", "command"), [
    ("phone-show", ["phone", "show", "40710", "2"]),
    ("extension", ["ext", "show", "40710"]),
    ("user", ["user", "show", "bob"]),
])
def test_show_prints_one_schema_object(store, schema, command):
    validate(schema, json.loads(store.ok(*command, "--json").stdout))


def test_check_output_matches_its_schema_with_errors_and_warnings(store, db_url):
    from sqlalchemy import create_engine, update

    from mtctl.store.tables import phone

    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(phone).where(phone.c.sip_auth_user == "40710-0")
                     .values(publishable=True))
    engine.dispose()
    result = store("check", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    validate("check", report)
    assert report["errors"] and report["warnings"]  # MT005; 40720 has no phones


def test_keys_rotate_output_matches_its_schema(store):
    for args in (["--dry-run"], ["--within", "3650"], []):
        validate("keys-rotate", json.loads(store.ok("keys", "rotate", *args, "--json").stdout))


def test_empty_listings_are_empty_arrays(mtctl):
    for command in (["phone", "list"], ["ext", "list"], ["user", "list"], ["keys", "list"],
                    ["group", "list"], ["node", "list"]):
        assert json.loads(mtctl.ok(*command, "--json").stdout) == []
