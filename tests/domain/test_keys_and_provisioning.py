"""Key digests and provisioning payloads as pure values."""

from __future__ import annotations

import dataclasses
import hashlib
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from mtctl.domain import keys, provisioning


def test_ha1_is_md5_of_user_realm_password_and_sha256_alike():
    ha1, ha1_sha256 = keys.digests("40710-2", "pbx.example.com", "s3cret")
    assert ha1 == hashlib.md5(b"40710-2:pbx.example.com:s3cret").hexdigest()
    assert ha1_sha256 == hashlib.sha256(b"40710-2:pbx.example.com:s3cret").hexdigest()


def test_passwords_are_random_and_carry_at_least_128_bits():
    passwords = {keys.new_password() for _ in range(500)} | set(keys.new_passwords(500))
    assert len(passwords) == 1000
    # URL-safe base64 carries 6 bits a character.
    assert min(len(p) for p in passwords) * 6 >= 128


def test_a_system_key_expires_after_its_lifetime_and_holds_no_password():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    key = keys.system_key("40710-2", "pbx.example.com", now=now, lifetime_days=30)
    assert key.expires_at == now + timedelta(days=30)
    assert {f.name for f in dataclasses.fields(key)} == {"ha1", "ha1_sha256", "expires_at"}


def test_tokens_carry_256_bits_and_only_their_hash_is_kept():
    token = provisioning.new_token()
    assert len(token) * 6 >= 256 and provisioning.looks_like_token(token)
    assert provisioning.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert not provisioning.looks_like_token("../etc/passwd")


def test_linphone_xml_escapes_names_and_overwrites_every_entry():
    account = provisioning.Account(auth_user="40710-2", ha1="a" * 32, realm="pbx.example.com",
                                   domain="pbx.example.com", proxy="sip:pbx.example.com",
                                   display_name='Ana "<&>" García')
    root = ET.fromstring(provisioning.linphone_xml(account))
    entries = {e.get("name"): e for e in root.iter(f"{{{provisioning.LPCONFIG_NS}}}entry")}
    assert entries["reg_identity"].text == '"Ana \\"<&>\\" García" <sip:40710-2@pbx.example.com>'
    assert entries["reg_proxy"].text == "<sip:pbx.example.com>"
    assert entries["ha1"].text == "a" * 32
    assert all(e.get("overwrite") == "true" for e in entries.values())
    assert "passwd" not in entries


def test_digests_are_the_htdigest_ones_over_utf8():
    """HA1 is what Apache's htdigest (here passlib's) computes, also for non-ASCII realms."""
    from passlib.hash import htdigest

    from mtctl.domain.keys import digests

    for user, realm, password in [("40710-0", "pbx.example.com", "s3cret"),
                                  ("40710-2-2", "pbx.ñandú.es", "pässwörd+/=")]:
        ha1, ha1_sha256 = digests(user, realm, password)
        assert ha1 == htdigest.hash(password, user=user, realm=realm)
        assert ha1_sha256 == hashlib.sha256(f"{user}:{realm}:{password}".encode()).hexdigest()
