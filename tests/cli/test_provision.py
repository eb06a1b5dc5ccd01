"""QR provisioning (SPEC §5): tokens, QR codes, revocation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, select

from mtctl.domain import provisioning
from mtctl.store.tables import provisioning_token
from tests.dump import assert_one_line_error

TOKEN = "T" * 43


@pytest.fixture
def app_phone(seeded):
    seeded.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p/")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure", "--order", "3")
    return seeded


def _decode(png_path) -> list[str]:
    import zxingcpp
    from PIL import Image

    return [barcode.text for barcode in zxingcpp.read_barcodes(Image.open(png_path))]


def test_the_png_qr_code_decodes_to_exactly_the_provisioning_url(app_phone, tmp_path,
                                                                monkeypatch):
    monkeypatch.setattr(provisioning, "new_token", lambda: TOKEN)
    png = tmp_path / "qr.png"
    result = app_phone.ok("provision", "40710", "2", "--png", str(png))
    assert _decode(png) == [f"https://prov.example.com/p/{TOKEN}"]
    assert TOKEN not in result.output


def test_the_terminal_qr_code_is_compact_and_the_token_is_stored_only_hashed(app_phone,
                                                                             db_url,
                                                                             monkeypatch):
    monkeypatch.setattr(provisioning, "new_token", lambda: TOKEN)
    result = app_phone.ok("provision", "40710", "2")
    lines = result.stdout.splitlines()
    assert 20 <= len(lines) <= 40 and all(len(line) <= 60 for line in lines)
    assert set("".join(lines)) <= set("█▀▄ ")
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(select(provisioning_token)).one()
    engine.dispose()
    assert stored.token_hash == provisioning.token_hash(TOKEN)
    assert TOKEN not in json.dumps([str(v) for v in stored])


def test_svg_output_is_written(app_phone, tmp_path):
    svg = tmp_path / "qr.svg"
    app_phone.ok("provision", "40710", "2", "--svg", str(svg), "--json")
    assert svg.read_text().lstrip().startswith("<?xml")


def test_only_secure_qr_provisionable_phones_can_be_provisioned(app_phone):
    result = app_phone("provision", "40710", "0")
    assert result.exit_code == 1, result.output
    assert "MT015" in result.stderr


def test_provisioning_needs_the_base_url(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure")
    result = seeded("provision", "40710", "2")
    assert result.exit_code == 2, result.output
    assert "config set provisioning.base_url" in result.stderr


def test_a_new_provisioning_replaces_the_token_and_revoke_removes_it(app_phone, db_url):
    app_phone.ok("provision", "40710", "2", "--json")
    app_phone.ok("provision", "40710", "2", "--json")
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert len(conn.execute(select(provisioning_token)).all()) == 1
    app_phone.ok("provision", "revoke", "40710", "2")
    with engine.connect() as conn:
        assert conn.execute(select(provisioning_token)).all() == []
    engine.dispose()
    again = app_phone("provision", "revoke", "40710", "2")
    assert again.exit_code == 3, again.output


def test_provisioning_an_unknown_phone_is_not_found(app_phone):
    result = app_phone("provision", "40710", "6")
    assert result.exit_code == 3, result.output
    assert "mtctl phone list 40710" in result.stderr


def test_pair_is_the_default_verb_and_revoke_takes_exactly_a_phone(app_phone):
    shown = app_phone.ok("provision", "pair", "40710", "2", "--json")
    assert '"position": 2' in shown.stdout
    options_first = app_phone.ok("provision", "--json", "40710", "2")
    assert '"extension": "40710"' in options_first.stdout
    for args in (("revoke", "40710"), ("revoke", "40710", "2", "3"), ()):
        result = app_phone("provision", *args)
        assert result.exit_code == 2, result.output
        assert_one_line_error(result)
        assert "missing argument" in result.stderr or "unexpected extra" in result.stderr
    app_phone.ok("provision", "revoke", "40710", "2")
