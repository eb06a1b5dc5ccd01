"""Secrets (SPEC §4): a clear password is never stored, logged or printed; digests never printed."""

import hashlib
import json

import pytest

from tests.conftest import Mtctl
from tests.dump import dump_store

PASSWORD = "Kn0wn-SIP-pass-7731"  # noqa: S105 (a test password)
ANDROID = "VIVAit Call Business Android"


def everything_stored(url: str) -> str:
    """Every value of every row of every table, as one searchable string."""
    return json.dumps(dump_store(url), default=str, ensure_ascii=False)


def stored_digests(url: str) -> list[str]:
    """The HA1 digests (MD5 and SHA-256) of every phone that has a key."""
    from mtctl.store.tables import phone

    columns = [c.name for c in phone.columns]
    rows = dump_store(url)["phone"]
    found = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        found += [values[name] for name in ("ha1", "ha1_sha256") if values[name]]
    return found


@pytest.fixture
def with_password(seeded):
    r = seeded("phone", "set-password", "40710", "0", "--password-stdin",
               input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert PASSWORD not in r.output
    assert r.stderr.strip() == "set the password of phone 40710:0"
    return seeded


def test_set_password_stores_only_digests_of_the_password(with_password):
    stored = everything_stored(with_password.url)
    assert PASSWORD not in stored
    phone = json.loads(with_password.ok("phone", "show", "40710", "0", "--json").stdout)
    a1 = f"{phone['sip_auth_user']}:pbx.example.com:{PASSWORD}".encode()
    ha1, ha1_sha256 = hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest()  # noqa: S324
    assert stored_digests(with_password.url) == [ha1, ha1_sha256]
    assert phone["has_key"] is True
    assert phone["key_expires_at"] is None, "an admin-chosen password does not expire"


def test_set_password_is_audited_without_the_password(with_password):
    rows = json.loads(with_password.ok("audit", "--object", "phone 40710:0", "--json").stdout)
    assert rows[-1]["action"] == "set-password"
    assert rows[-1]["actor"] == "tester"
    assert rows[-1]["changes"] == {}
    text = with_password.ok("audit", "--json").stdout + with_password.ok("audit").stdout
    assert PASSWORD not in text


def test_a_password_cannot_be_given_on_the_command_line(seeded):
    r = seeded("phone", "set-password", "40710", "0", "--password", PASSWORD)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert PASSWORD not in everything_stored(seeded.url)


def test_a_too_short_password_is_refused_without_echoing_it(seeded):
    r = seeded("phone", "set-password", "40710", "0", "--password-stdin", input="s3cr\n")
    assert r.exit_code == 2, r.output
    assert "s3cr" not in r.output


def test_a_refused_password_is_not_echoed(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", ANDROID, "--secure")
    r = seeded("phone", "set-password", "40710", "2", "--password-stdin",
               input=PASSWORD + "\n")
    assert r.exit_code == 1, r.output
    assert "MT011" in r.stderr
    assert PASSWORD not in r.output
    assert PASSWORD not in everything_stored(seeded.url)


READERS = [
    ("phone", "show", "40710", "0", "--json"),
    ("phone", "show", "40710", "0"),
    ("phone", "show", "40710", "2", "--json"),
    ("phone", "list", "--json"),
    ("phone", "list"),
    ("user", "phones", "ana", "--json"),
    ("audit", "--json"),
    ("audit",),
    ("check", "--json"),
    ("keys", "list", "--json"),
]


def test_digests_are_never_printed(with_password):
    with_password.ok("phone", "add", "40710", "--position", "2", "--model", ANDROID, "--secure")
    with_password.ok("phone", "set", "40710", "2", "--order", "3")
    digests = stored_digests(with_password.url)
    assert len(digests) == 4, "both phones have an MD5 and a SHA-256 digest"
    for args in READERS:
        r = with_password.ok(*args)
        for digest in digests:
            assert digest not in r.output, f"mtctl {' '.join(args)} printed a digest"
        assert "ha1" not in r.stdout, f"mtctl {' '.join(args)} shows a digest field"


def test_a_password_in_the_store_url_is_never_printed():
    for url in ["postgresql+psycopg://nobody:Hunter2-secret@127.0.0.1:1/none",
                "postgresql+psycopg://nobody:Hunter2-secret@127.0.0.1:notaport/none"]:
        r = Mtctl(url)("ext", "list")
        assert r.exit_code == 5, r.output
        assert "Hunter2-secret" not in r.output


def test_a_secret_given_to_config_set_is_refused_pointing_at_set_secret(seeded: Mtctl) -> None:
    """`config set provisioning.device_password VALUE` (the value already in argv) said only
    "unknown setting": the hint now names the command that keeps it off the command line,
    and the value is neither stored nor echoed."""
    before = dump_store(seeded.url)
    for args in (("config", "set", "provisioning.device_password", PASSWORD),
                 ("config", "get", "provisioning.device_password")):
        result = seeded(*args)
        assert result.exit_code == 2, result.output
        assert "mtctl config set-secret provisioning.device_password --password-stdin" in \
            result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert PASSWORD not in result.output
    assert dump_store(seeded.url) == before
