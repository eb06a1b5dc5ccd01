"""`mtctl export`: the store as a file `mtctl apply` accepts, byte for byte the same again."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mtctl.store.db import upgrade_store
from tests.conftest import Mtctl

ROOT = Path(__file__).resolve().parents[2]
CONFIG_SCHEMA = json.loads((ROOT / "schemas" / "mtctl-config.schema.json").read_text())


@pytest.fixture
def other(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Mtctl:
    """A second fresh store on the same backend."""
    if backend == "sqlite":
        path = tmp_path / "other.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return Mtctl(f"sqlite:///{path}")
    url = request.getfixturevalue("pg_schema")()
    upgrade_store(url)
    return Mtctl(url)


@pytest.fixture
def rich(seeded: Mtctl) -> Mtctl:
    """A store using every part of the format: settings, catalog, groups, every phone field."""
    m = seeded
    m.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p")
    m.ok("config", "set", "keys.lifetime_days", "60")
    m.ok("node", "add", "sevilla")
    m.ok("category", "add", "internal")
    m.ok("category", "add", "national")
    m.ok("model", "add", "Acme \"Soft\" Ñ", "--vendor", "Acme", "--kind", "softphone")
    m.ok("model", "add", "Acme App", "--vendor", "Acme", "--kind", "app", "--qr")
    m.ok("model", "add", "Acme Desk", "--vendor", "Acme", "--kind", "hardphone", "--profile",
         "yealink")
    m.ok("phone", "set", "40710", "0", "--mac", "00-56-2B-04-36-15")
    m.ok("template", "add", "secure-app", "--key-lifetime", "30", "--secure",
         "--category", "national")
    m.ok("template", "add", "web2", "--for-webcall")
    m.ok("ext", "add", "0123", "--node", "sevilla", "--name", "Ñandú \\ \"quoted\"",
         "--ring-timeout", "45")
    m.ok("phone", "add", "0123", "--position", "0", "--model", "Generic SIP hardphone",
         "--order", "0", "--disabled", "--category", "internal", "--location", "Hall, 2º")
    m.ok("phone", "add", "0123", "--position", "3", "--model", "Acme App",
         "--template", "secure-app", "--publishable", "--order", "2")
    m.ok("phone", "add", "0123", "--position", "5", "--model", "Acme App",
         "--template", "secure-app")
    m.ok("phone", "set", "0123", "5", "--not-secure", "--category", "")
    m.ok("phone", "add", "40710", "--position", "2", "--model",
         "VIVAit Call Business Android", "--secure", "--order", "3", "--location",
         "A long location, to make this phone's inline table longer than a line")
    for number in ("40790", "40791", "40792"):
        m.ok("ext", "add", number, "--node", "madrid")
        m.ok("phone", "add", number, "--position", "0", "--model", "VIVAit Call Web")
    m.ok("phone", "set", "40792", "0", "--template", "web2")
    m.ok("group", "add", "pool")
    m.ok("group", "add-ext", "pool", "40791", "40790")
    m.ok("group", "add", "empty")
    m.ok("ext", "add", "40720", "--node", "madrid")
    m.ok("user", "add", "bob", "--name", "Bob", "--login", "40720", "--webcall-mode",
         "exclusive", "--webcall-license", "pool", "--webcall-group", "pool")
    m.ok("ext", "add", "40730", "--node", "madrid")
    m.ok("user", "add", "carol", "--name", "Carol", "--login", "40730", "--webcall-mode",
         "exclusive", "--webcall-ext", "40792")
    m.ok("user", "add", "dave", "--name", "Dave", "--login", "0123")
    return m


def test_export_apply_export_is_byte_identical(rich: Mtctl, other: Mtctl, tmp_path: Path):
    exported = rich.ok("export").stdout
    path = tmp_path / "pbx.toml"
    path.write_text(exported, encoding="utf-8")
    result = other("apply", str(path))
    assert result.exit_code == 0, result.output
    assert other.ok("export").stdout == exported
    assert other("check").exit_code == 0
    assert "no changes" in other.ok("apply", str(path)).stderr
    assert "no changes" in rich.ok("apply", str(path), "--prune").stderr


def test_export_omits_defaults_and_keys(rich: Mtctl):
    text = rich.ok("export").stdout
    doc = tomllib.loads(text)
    assert doc["extensions"]["40790"]["phones"] == [{"position": 0, "model": "VIVAit Call Web"}]
    assert '    { position = 0, model = "VIVAit Call Web" },' in text.splitlines()
    phones = {p["position"]: p for p in doc["extensions"]["0123"]["phones"]}
    assert phones[0] == {"position": 0, "model": "Generic SIP hardphone", "order": 0,
                         "enabled": False, "category": "internal", "location": "Hall, 2º"}
    # secure and category come from the template unless they differ from it
    assert phones[3] == {"position": 3, "model": "Acme App", "order": 2,
                         "template": "secure-app", "publishable": True}
    assert phones[5] == {"position": 5, "model": "Acme App", "template": "secure-app",
                         "category": "", "secure": False}
    assert doc["extensions"]["0123"]["ring_timeout"] == 45
    assert doc["templates"] == {"secure-app": {"secure": True, "key_lifetime_days": 30,
                                               "category": "national"},
                                "web2": {"for_webcall": True}}
    assert set(doc["models"]) == {"Acme \"Soft\" Ñ", "Acme App", "Acme Desk"}  # not seeded
    assert doc["models"]["Acme Desk"] == {"vendor": "Acme", "kind": "hardphone",
                                          "profile": "yealink"}
    assert doc["extensions"]["40710"]["phones"][0]["mac"] == "00:56:2b:04:36:15"
    assert doc["users"]["bob"] == {"name": "Bob", "login": "40720", "webcall_mode": "exclusive",
                                   "webcall_license": "pool", "webcall_group": "pool"}
    assert doc["users"]["dave"] == {"name": "Dave", "login": "0123"}
    assert doc["groups"] == {"empty": {}, "pool": {"extensions": ["40791", "40790"]}}
    assert doc["settings"] == {"keys": {"lifetime_days": 60},
                               "provisioning": {"base_url": "https://prov.example.com/p"},
                               "sip": {"domain": "pbx.example.com"}}
    for word in ("ha1", "key_expires", "token", "sip_auth_user", "password"):
        assert word not in text


def test_export_orders_everything_so_diffs_stay_small(rich: Mtctl):
    doc = tomllib.loads(rich.ok("export").stdout)
    assert list(doc) == ["nodes", "categories", "settings", "models", "templates", "groups",
                         "extensions", "users"]
    assert list(doc["extensions"]) == sorted(doc["extensions"])
    assert list(doc["users"]) == sorted(doc["users"])
    for ext in doc["extensions"].values():
        positions = [p["position"] for p in ext.get("phones", [])]
        assert positions == sorted(positions)
    assert rich.ok("export").stdout == rich.ok("export").stdout


def test_export_json_is_the_same_document_and_matches_the_schema(rich: Mtctl):
    data = json.loads(rich.ok("export", "--json").stdout)
    Draft202012Validator(CONFIG_SCHEMA).validate(data)
    assert data == tomllib.loads(rich.ok("export").stdout)


def test_export_to_a_file(rich: Mtctl, tmp_path: Path):
    path = tmp_path / "pbx.toml"
    result = rich("export", "-o", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote {path}" in result.stderr
    assert path.read_text(encoding="utf-8") == rich.ok("export").stdout
    assert not list(tmp_path.glob(".*partial"))


def test_an_empty_store_exports_an_empty_file(mtctl: Mtctl):
    assert mtctl.ok("export").stdout == ""
    assert json.loads(mtctl.ok("export", "--json").stdout) == {}
