"""Desk phones by MAC: model profiles and phone MACs through the CLI."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, update

from mtctl.store.tables import phone as phone_table
from tests.dump import assert_refused, plant


def phone(mtctl, ext="40710", pos="0"):
    return json.loads(mtctl.ok("phone", "show", ext, pos, "--json").stdout)


@pytest.mark.parametrize("spelling", ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e",
                                      "001a2b3c4d5e"])
def test_a_mac_in_any_usual_spelling_is_kept_as_twelve_lowercase_hex_digits(seeded, spelling):
    seeded.ok("phone", "set", "40710", "0", "--mac", spelling)
    assert phone(seeded)["mac"] == "001a2b3c4d5e"
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Yealink T54W",
              "--mac", "80:5e:c0:12:34:56")
    assert phone(seeded, pos="2")["mac"] == "805ec0123456"


def test_a_mac_is_unique_and_can_be_cleared(seeded):
    seeded.ok("phone", "set", "40710", "0", "--mac", "00:1a:2b:3c:4d:5e")
    r = assert_refused(seeded, "phone", "add", "40710", "--position", "2", "--model",
                       "Yealink T54W", "--mac", "001A2B3C4D5E", exit_code=4)
    assert "phone 40710:0" in r.stderr
    seeded.ok("phone", "set", "40710", "0", "--mac", "")
    assert phone(seeded)["mac"] is None
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Yealink T54W",
              "--mac", "001A2B3C4D5E")


@pytest.mark.parametrize("bad", ["00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5g", "zz",
                                 "00:1a:2b:3c:4d:5e\n"])
def test_a_bad_mac_is_a_usage_error_that_changes_nothing(seeded, bad):
    r = assert_refused(seeded, "phone", "set", "40710", "0", "--mac", bad, exit_code=2)
    assert "MAC" in r.stderr


def test_model_add_takes_a_provisioning_profile(seeded):
    seeded.ok("model", "add", "SPA 525", "--vendor", "Cisco", "--kind", "hardphone",
              "--profile", "cisco-mpp")
    models = {m["name"]: m["profile"] for m in
              json.loads(seeded.ok("model", "list", "--json").stdout)}
    assert models["SPA 525"] == "cisco-mpp"
    assert models["Cisco 8841"] == "cisco-mpp" and models["Yealink T54W"] == "yealink"
    r = seeded("model", "add", "X", "--vendor", "X", "--kind", "hardphone", "--profile",
               "polycom")
    assert r.exit_code == 2 and "'cisco-mpp', 'yealink'" in r.stderr


def apply_file(mtctl, tmp_path, text, *args):
    path = tmp_path / "pbx.toml"
    path.write_text(text, encoding="utf-8")
    return mtctl("apply", str(path), *args)


def test_macs_and_profiles_go_through_export_and_apply(seeded, tmp_path):
    seeded.ok("model", "add", "Acme Desk", "--vendor", "Acme", "--kind", "hardphone",
              "--profile", "cisco-mpp")
    seeded.ok("phone", "set", "40710", "0", "--mac", "001A2B3C4D5E")
    exported = seeded.ok("export").stdout
    assert 'mac = "00:1a:2b:3c:4d:5e"' in exported
    assert 'profile = "cisco-mpp"' in exported
    text = exported.replace("00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5F")  # any usual spelling
    r = apply_file(seeded, tmp_path, text)
    assert r.exit_code == 0, r.output
    assert phone(seeded)["mac"] == "001a2b3c4d5f"
    assert "no changes" in apply_file(seeded, tmp_path, text, "--dry-run").output


def test_apply_refuses_a_mac_twice_or_one_another_phone_keeps(seeded, tmp_path):
    seeded.ok("ext", "add", "40711", "--node", "madrid")
    seeded.ok("phone", "add", "40711", "--position", "0", "--model", "Yealink T54W",
              "--mac", "80:5e:c0:12:34:56")
    twice = """
[extensions.40720]
node = "madrid"
phones = [
    { position = 0, model = "Yealink T54W", mac = "00:1a:2b:3c:4d:5e" },
    { position = 1, model = "Yealink T54W", mac = "001a2b3c4d5e" },
]
"""
    kept = """
[extensions.40720]
node = "madrid"
phones = [{ position = 0, model = "Yealink T54W", mac = "80-5E-C0-12-34-56" }]
"""
    bad = """
[extensions.40720]
node = "madrid"
phones = [{ position = 0, model = "Yealink T54W", mac = "80-5E-C0-12-34" }]
"""
    for text, words in ((twice, "is also phone 40720:0's"), (kept, "is also phone 40711:0's"),
                        (bad, "bad MAC address")):
        from tests.dump import dump_store

        before = dump_store(seeded.url)
        r = apply_file(seeded, tmp_path, text)
        assert r.exit_code == 1, r.output
        assert words in r.output and ".mac" in r.output
        assert dump_store(seeded.url) == before
    # the phone that had the MAC gives it up in the same file: fine
    moved = kept + """
[extensions.40711]
node = "madrid"
phones = [{ position = 0, model = "Yealink T54W" }]
"""
    r = apply_file(seeded, tmp_path, moved)
    assert r.exit_code == 0, r.output
    assert phone(seeded, "40720", "0")["mac"] == "805ec0123456"
    assert phone(seeded, "40711", "0")["mac"] is None


def test_apply_treats_a_new_mac_or_a_new_key_as_a_phone_that_must_fetch_again(seeded,
                                                                              tmp_path):
    def never() -> set[str]:
        found = json.loads(seeded("check", "--json").stdout)["warnings"]
        return {w["object"] for w in found if w["rule"] == "never-provisioned"}

    def keys() -> dict[str, tuple]:
        engine = create_engine(seeded.url)
        with engine.connect() as conn:
            rows = conn.execute(select(phone_table.c.sip_auth_user, phone_table.c.ha1,
                                       phone_table.c.prev_ha1)).all()
        engine.dispose()
        return {row[0]: (row[1], row[2]) for row in rows}

    seeded.ok("phone", "set", "40710", "0", "--secure", "--mac", "00:56:2b:04:36:15")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Yealink T54W",
              "--secure", "--mac", "80:5e:c0:12:34:56")
    plant(seeded.url, update(phone_table).values(  # as a fetch of each phone's file leaves it
        key_delivered_at=datetime.now(UTC), key_delivered_to="192.0.2.7", prev_ha1="0" * 32,
        prev_ha1_sha256="0" * 64, prev_key_valid_until=datetime(2099, 1, 1, tzinfo=UTC)))
    assert never() == set()
    before = keys()
    exported = seeded.ok("export").stdout
    yealink = 'secure = true\nmac = "80:5e:c0:12:34:56"'
    assert yealink in exported
    r = apply_file(seeded, tmp_path, exported.replace("00:56:2b:04:36:15", "00:56:2b:04:36:16")
                   .replace(yealink, yealink.replace("true", "false")))
    assert r.exit_code == 0, r.output
    after = keys()
    assert after["40710-0"][0] not in (None, before["40710-0"][0])
    assert after["40710-0"][1] is None  # the old device's previous key is gone too
    shown = json.loads(seeded.ok("phone", "show", "40710", "0", "--json").stdout)
    assert (shown["key_delivered_at"], shown["key_delivered_to"]) == (None, None)
    assert never() == {"phone 40710:0"}
    assert "key_expires_at" in json.loads(seeded.ok("audit", "--json").stdout)[-2]["changes"]
    r = apply_file(seeded, tmp_path, exported.replace("00:56:2b:04:36:15", "00:56:2b:04:36:16"))
    assert r.exit_code == 0, r.output
    assert never() == {"phone 40710:0", "phone 40710:2"}


def test_times_are_utc_whatever_the_postgresql_sessions_time_zone(seeded, monkeypatch):
    """A PostgreSQL server's `timezone` is often the machine's local zone (Debian's initdb
    takes it): every time mtctl prints is still UTC."""
    if not seeded.url.startswith("postgresql"):
        pytest.skip("SQLite stores times as UTC text")
    monkeypatch.setenv("PGTZ", "Europe/Madrid")
    seeded.ok("phone", "set", "40710", "0", "--secure", "--mac", "00:56:2b:04:36:15")
    plant(seeded.url, update(phone_table).values(key_delivered_at=datetime.now(UTC)))
    shown = json.loads(seeded.ok("phone", "show", "40710", "0", "--json").stdout)
    listed = json.loads(seeded.ok("phone", "list", "40710", "--json").stdout)[0]
    keys = json.loads(seeded.ok("keys", "list", "--json").stdout)[0]
    audit = json.loads(seeded.ok("audit", "--json").stdout)[-1]
    times = [shown["key_expires_at"], shown["key_delivered_at"], listed["key_delivered_at"],
             keys["key_expires_at"], keys["key_updated_at"], audit["at"]]
    assert all(t.endswith("+00:00") for t in times), times
