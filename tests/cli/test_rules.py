"""Every rule MT001–MT015 refuses a write that would break it, and the store stays as it was.

A refused command changes nothing, so each test tries all the ways to break its rule on one
store: `assert_refused` compares a dump of every table (audit_log included) before and after.
"""

import json

from tests.dump import assert_refused

WEB = "VIVAit Call Web"
ANDROID = "VIVAit Call Business Android"
GENERIC = "Generic SIP hardphone"


def add_ext(mtctl, *numbers, node="madrid"):
    for number in numbers:
        mtctl.ok("ext", "add", number, "--node", node)


def phones_of(mtctl, number):
    return json.loads(mtctl.ok("phone", "list", number, "--json").stdout)


def test_mt001_an_extension_has_at_most_eight_phones(seeded):
    add_ext(seeded, "40720")
    for position in range(8):
        seeded.ok("phone", "add", "40720", "--position", str(position), "--model", GENERIC)
    assert json.loads(seeded.ok("check", "--json").stdout)["errors"] == []
    r = assert_refused(seeded, "phone", "add", "40720", "--position", "3", "--model", GENERIC,
                       exit_code=1, rule="MT001")
    assert "MT001 extension 40720 has 9 phones" in r.stderr
    assert len(phones_of(seeded, "40720")) == 8


def test_mt002_positions_are_0_to_7_and_unique_within_an_extension(seeded):
    r = assert_refused(seeded, "phone", "add", "40710", "--position", "1", "--model", GENERIC,
                       exit_code=1, rule="MT002")
    assert "phone 40710:1" in r.stderr
    for position in ["8", "-1", "100"]:
        assert_refused(seeded, "phone", "add", "40710", f"--position={position}",
                       "--model", GENERIC, exit_code=1, rule="MT002")
    seeded.ok("phone", "add", "40710", "--position", "4", "--model", GENERIC)
    for position in ["0", "8", "-1"]:
        assert_refused(seeded, "phone", "set", "40710", "4", f"--position={position}",
                       exit_code=1, rule="MT002")
    # Gaps are allowed: 0, 1 and 4 without 2 and 3.
    assert [p["position"] for p in phones_of(seeded, "40710")] == [0, 1, 4]


def test_mt003_a_cisco_phone_sits_at_position_0(seeded):
    add_ext(seeded, "40720")
    r = assert_refused(seeded, "phone", "add", "40720", "--position", "2",
                       "--model", "Cisco 8841", exit_code=1, rule="MT003")
    assert "phone 40720:2" in r.stderr
    assert_refused(seeded, "phone", "set", "40710", "0", "--position", "5",
                   exit_code=1, rule="MT003")
    # Any model of vendor Cisco, not only the catalog's.
    seeded.ok("model", "add", "Cisco 7821", "--vendor", "Cisco", "--kind", "hardphone")
    assert_refused(seeded, "phone", "add", "40720", "--position", "1", "--model", "Cisco 7821",
                   exit_code=1, rule="MT003")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", "Cisco 7821")


def test_mt004_order_is_0_or_more_and_0_never_rings(seeded):
    assert_refused(seeded, "phone", "add", "40710", "--position", "2", "--model", GENERIC,
                   "--order=-1", exit_code=1, rule="MT004")
    assert_refused(seeded, "phone", "set", "40710", "0", "--order=-1", exit_code=1, rule="MT004")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", GENERIC, "--order", "0")
    assert json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)["order"] == 0


def test_mt005_a_publishable_phone_is_secure(seeded):
    r = assert_refused(seeded, "phone", "add", "40710", "--position", "2", "--model", ANDROID,
                       "--publishable", exit_code=1, rule="MT005")
    assert "phone 40710:2" in r.stderr
    assert_refused(seeded, "phone", "set", "40710", "0", "--publishable",
                   exit_code=1, rule="MT005")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", ANDROID,
              "--secure", "--publishable")
    assert_refused(seeded, "phone", "set", "40710", "2", "--not-secure",
                   exit_code=1, rule="MT005")


def test_mt006_a_web_call_phone_is_neither_secure_nor_publishable(seeded):
    add_ext(seeded, "40720")
    r = assert_refused(seeded, "phone", "add", "40720", "--position", "0", "--model", WEB,
                       "--secure", exit_code=1, rule="MT006")
    assert "phone 40720:0" in r.stderr
    assert_refused(seeded, "phone", "set", "40710", "1", "--secure",
                   exit_code=1, rule="MT006")
    assert_refused(seeded, "phone", "set", "40710", "1", "--secure", "--publishable",
                   exit_code=1, rule="MT006")


def test_mt007_a_pool_user_is_not_multiterminal(seeded):
    add_ext(seeded, "40720")
    seeded.ok("phone", "add", "40720", "--position", "1", "--model", WEB)
    r = assert_refused(seeded, "user", "add", "bob", "--name", "Bob", "--login", "40720",
                       "--webcall-license", "pool", "--webcall-mode", "multiterminal",
                       "--webcall-position", "1", exit_code=1, rule="MT007")
    assert "user bob" in r.stderr
    assert_refused(seeded, "user", "set", "ana", "--webcall-license", "pool",
                   exit_code=1, rule="MT007")


def test_mt008_phones_stay_on_their_extensions_node(seeded):
    seeded.ok("node", "add", "barcelona")
    r = assert_refused(seeded, "phone", "add", "40710", "--position", "2", "--model", GENERIC,
                       "--node", "barcelona", exit_code=1, rule="MT008")
    assert "barcelona" in r.stderr and "phone 40710:2" in r.stderr
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", GENERIC, "--node", "madrid")
    seeded.ok("ext", "set", "40710", "--node", "barcelona")
    assert {p["node"] for p in phones_of(seeded, "40710")} == {"barcelona"}


def test_mt009_a_new_multiterminal_user_needs_its_web_call_phone(seeded):
    add_ext(seeded, "40720", "40790")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", GENERIC)
    seeded.ok("phone", "add", "40790", "--position", "0", "--model", WEB)
    bob = ("user", "add", "bob", "--name", "Bob", "--login", "40720",
           "--webcall-mode", "multiterminal")
    for extra in [("--webcall-position", "1"),   # no phone there
                  ("--webcall-position", "0"),   # a phone, but not a Web Call one
                  ()]:                           # no Web Call position at all
        r = assert_refused(seeded, *bob, *extra, exit_code=1, rule="MT009")
        assert "user bob" in r.stderr
    # Multiterminal: the Web Call extension is the login itself, not another one.
    assert_refused(seeded, "user", "set", "ana", "--webcall-ext", "40790",
                   exit_code=1, rule="MT009")


def test_mt009_the_web_call_phone_of_a_multiterminal_user_cannot_be_broken(seeded):
    for args in [("phone", "set", "40710", "1", "--order", "0"),
                 ("phone", "rm", "40710", "1"),
                 ("phone", "set", "40710", "1", "--model", GENERIC),
                 ("user", "set", "ana", "--webcall-position", "0")]:
        r = assert_refused(seeded, *args, exit_code=1, rule="MT009")
        assert "user ana" in r.stderr


def test_mt009_names_where_the_web_call_phone_is_rather_than_a_second_one(seeded):
    """Adding a Web Call phone at the new position is refused by MT016: the hint names the
    position of the one the extension has."""
    r = assert_refused(seeded, "user", "set", "ana", "--webcall-position", "3", exit_code=1,
                       rule="MT009")
    assert "40710:1" in r.stderr and "--webcall-position 1" in r.stderr
    assert "phone add" not in r.stderr


def test_mt010_an_exclusive_user_has_separate_web_call_extensions(seeded):
    add_ext(seeded, "40720", "40790", "40791")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", WEB)
    seeded.ok("phone", "add", "40791", "--position", "1", "--model", WEB)
    bob = ("user", "add", "bob", "--name", "Bob", "--login", "40720", "--webcall-mode",
           "exclusive")
    r = assert_refused(seeded, *bob, "--webcall-ext", "40720", exit_code=1, rule="MT010")
    assert "user bob" in r.stderr and "login" in r.stderr
    for extra in [("--webcall-ext", "40790"),   # no Web Call phone at all
                  ("--webcall-ext", "40791"),   # a Web Call phone, but not at position 0
                  ()]:                          # no Web Call extension
        assert_refused(seeded, *bob, *extra, exit_code=1, rule="MT010")


def test_mt010_the_web_call_extensions_of_an_exclusive_user_cannot_be_broken(seeded):
    add_ext(seeded, "40720", "40721", "40790", "40791", "40792")
    for number in ("40790", "40791"):
        seeded.ok("phone", "add", number, "--position", "0", "--model", WEB)
    seeded.ok("group", "add", "pool")
    seeded.ok("group", "add-ext", "pool", "40791")
    seeded.ok("user", "add", "bob", "--name", "Bob", "--login", "40720",
              "--webcall-mode", "exclusive", "--webcall-ext", "40790")
    seeded.ok("user", "add", "eve", "--name", "Eve", "--login", "40721", "--webcall-mode",
              "exclusive", "--webcall-license", "pool", "--webcall-group", "pool")
    for args in [("phone", "rm", "40790", "0"),
                 ("phone", "set", "40790", "0", "--position", "1"),
                 ("ext", "rm", "40790"),
                 ("phone", "rm", "40791", "0"),
                 ("group", "add-ext", "pool", "40792")]:
        assert_refused(seeded, *args, exit_code=1, rule="MT010")


def test_mt011_a_secure_phones_key_comes_only_from_the_system(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", ANDROID, "--secure")
    phone = json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)
    assert (phone["secure"], phone["has_key"]) == (True, True)
    assert phone["key_expires_at"]
    r = assert_refused(seeded, "phone", "set-password", "40710", "2", "--password-stdin",
                       input="correct horse battery\n", exit_code=1, rule="MT011")
    assert "phone 40710:2" in r.stderr


def test_mt012_a_login_is_an_existing_extension_owned_by_its_user(seeded):
    assert json.loads(seeded.ok("ext", "show", "40710", "--json").stdout)["owner"] == "ana"
    r = assert_refused(seeded, "ext", "rm", "40710", exit_code=1, rule="MT012")
    assert "user ana" in r.stderr
    r = assert_refused(seeded, "user", "add", "bob", "--name", "Bob", "--login", "40710",
                       exit_code=4, rule="MT012")
    assert "owned by user ana" in r.stderr
    r = assert_refused(seeded, "user", "add", "bob", "--name", "Bob", "--login", "49999",
                       exit_code=3, rule="MT012")
    assert "49999" in r.stderr
    add_ext(seeded, "40720")
    seeded.ok("user", "add", "bob", "--name", "Bob", "--login", "40720")
    assert_refused(seeded, "user", "set", "bob", "--login", "40710", exit_code=4, rule="MT012")
    assert_refused(seeded, "user", "set", "bob", "--login", "49999", exit_code=3, rule="MT012")


def test_mt013_a_web_call_phone_uses_a_web_call_template(seeded):
    assert json.loads(seeded.ok("phone", "show", "40710", "1", "--json").stdout)["template"] \
        == "webfon"
    add_ext(seeded, "40720")
    r = assert_refused(seeded, "phone", "add", "40720", "--position", "0", "--model", WEB,
                       "--template", "default", exit_code=1, rule="MT013")
    assert "phone 40720:0" in r.stderr
    assert_refused(seeded, "phone", "set", "40710", "1", "--template", "default",
                   exit_code=1, rule="MT013")
    seeded.ok("template", "add", "browser", "--for-webcall")
    seeded.ok("phone", "add", "40720", "--position", "0", "--model", WEB,
              "--template", "browser")


def test_mt014_extension_numbers_are_digits_and_unique(seeded):
    for number in ["40a10", "4071 0", "+34910", "٤٠٧١٠", ""]:
        r = assert_refused(seeded, "ext", "add", number, "--node", "madrid",
                           exit_code=1, rule="MT014")
        assert repr(number) in r.stderr
    r = assert_refused(seeded, "ext", "add", "40710", "--node", "madrid",
                       exit_code=4, rule="MT014")
    assert "40710" in r.stderr
    seeded.ok("ext", "add", "040710", "--node", "madrid")
    numbers = [e["number"] for e in json.loads(seeded.ok("ext", "list", "--json").stdout)]
    assert numbers == ["040710", "40710"]


def test_mt014_sip_auth_users_stay_unique(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", GENERIC)
    seeded.ok("phone", "set", "40710", "2", "--position", "3")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", GENERIC)
    auth_users = [p["sip_auth_user"] for p in phones_of(seeded, "40710")]
    assert len(auth_users) == len(set(auth_users)) == 4


def test_mt015_only_secure_phones_of_a_qr_model_are_provisionable(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", ANDROID, "--secure")
    seeded.ok("phone", "add", "40710", "--position", "3", "--model", ANDROID)
    seeded.ok("phone", "add", "40710", "--position", "4", "--model", GENERIC, "--secure")
    seeded.ok("phone", "add", "40710", "--position", "5", "--model",
              "VIVAit Call Business iOS", "--secure", "--publishable")
    expected = {0: False, 1: False, 2: True, 3: False, 4: False, 5: True}
    portal = json.loads(seeded.ok("user", "phones", "ana", "--json").stdout)
    assert {p["position"]: p["provisionable"] for p in portal} == expected
    assert {p["position"]: p["provisionable"] for p in phones_of(seeded, "40710")} == expected
    for position, provisionable in expected.items():
        shown = json.loads(seeded.ok("phone", "show", "40710", str(position), "--json").stdout)
        assert shown["provisionable"] is provisionable, shown
    # `provision` refuses every phone that is not provisionable.
    seeded.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p")
    for position, provisionable in expected.items():
        if not provisionable:
            r = assert_refused(seeded, "provision", "40710", str(position),
                               exit_code=1, rule="MT015")
            assert f"phone 40710:{position}" in r.stderr
    # A phone that stops being secure stops being provisionable.
    seeded.ok("phone", "set", "40710", "2", "--not-secure")
    shown = json.loads(seeded.ok("phone", "show", "40710", "2", "--json").stdout)
    assert (shown["provisionable"], shown["has_key"]) == (False, False)
    assert_refused(seeded, "provision", "40710", "2", exit_code=1, rule="MT015")
