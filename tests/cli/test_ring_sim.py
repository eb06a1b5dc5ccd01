"""`mtctl ring-sim`: exit codes, human output and JSON validated against its schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.dump import assert_one_line_error

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "ring-sim.schema.json")
                    .read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)


def test_schema_is_a_valid_json_schema_that_holds_the_contract_tight(seeded):
    Draft202012Validator.check_schema(SCHEMA)
    plan = ring(seeded, "40710")
    broken = [
        {**plan, "number": 40710},                       # extensions are strings
        {**plan, "extra": 1},                            # no key beyond SPEC §7
        {**plan, "outcome": "busy"},
        {**plan, "skipped": [{**plan["skipped"][0], "reason": "asleep"}]},
        {k: v for k, v in plan.items() if k != "user"},  # null, never missing
    ]
    for document in broken:
        assert not VALIDATOR.is_valid(document), document


def ring(mtctl, *args: str) -> dict:
    """Run ring-sim --json, insist on exit 0 and a document the schema accepts."""
    result = mtctl("ring-sim", *args, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    VALIDATOR.validate(plan)
    return plan


def stages(plan: dict) -> list[tuple[int, list[str]]]:
    return [(s["order"], [f"{p['extension']}:{p['position']}" for p in s["phones"]])
            for s in plan["stages"]]


def skipped(plan: dict) -> list[tuple[str, str]]:
    return [(f"{s['extension']}:{s['position']}", s["reason"]) for s in plan["skipped"]]


@pytest.fixture
def exclusive(mtctl):
    """The seed's exclusive walkthrough, and pool user bea on 40730 with a two-extension group."""
    mtctl.ok("node", "add", "madrid")
    mtctl.ok("ext", "add", "40710", "--node", "madrid", "--name", "Desk 40710")
    mtctl.ok("phone", "add", "40710", "--position", "0", "--model", "Cisco 8841")
    for number in ("40711", "40720", "40721"):
        mtctl.ok("ext", "add", number, "--node", "madrid")
        mtctl.ok("phone", "add", number, "--position", "0", "--model", "VIVAit Call Web")
    mtctl.ok("user", "add", "ana", "--name", "Ana García", "--login", "40710",
             "--webcall-mode", "exclusive", "--webcall-ext", "40711")
    mtctl.ok("group", "add", "pool")
    mtctl.ok("group", "add-ext", "pool", "40720", "40721")
    mtctl.ok("ext", "add", "40730", "--node", "madrid", "--name", "Desk 40730")
    mtctl.ok("phone", "add", "40730", "--position", "0", "--model", "Generic SIP hardphone")
    mtctl.ok("user", "add", "bea", "--name", "Bea Ruiz", "--login", "40730",
             "--webcall-mode", "exclusive", "--webcall-license", "pool",
             "--webcall-group", "pool")
    return mtctl


# The seed, through the store and the CLI ------------------------------------------------------

def test_multiterminal_without_web_call_rings_the_desk_phone(seeded):
    plan = ring(seeded, "40710")
    assert stages(plan) == [(1, ["40710:0"])]
    assert skipped(plan) == [("40710:1", "webcall-not-running")]
    assert (plan["user"], plan["mode"], plan["display_name"]) == ("ana", "multiterminal",
                                                                  "Desk 40710")
    assert (plan["webcall_running"], plan["outcome"]) == (False, "rings")


def test_multiterminal_with_web_call_rings_both_and_shows_the_user(seeded):
    plan = ring(seeded, "40710", "--webcall-running")
    assert stages(plan) == [(1, ["40710:0", "40710:1"])]
    assert skipped(plan) == []
    assert plan["display_name"] == "Ana García"
    assert plan["webcall_running"] is True


def test_spec_section_7_example_comes_out_exactly(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--order", "3", "--secure")
    seeded.ok("phone", "add", "40710", "--position", "3", "--model", "Linphone (no proxy)",
              "--order", "0")
    assert ring(seeded, "40710", "--webcall-running") == {
        "number": "40710", "user": "ana", "mode": "multiterminal", "webcall_running": True,
        "display_name": "Ana García", "outcome": "rings",
        "stages": [
            {"order": 1, "ring_seconds": 20,
             "phones": [{"extension": "40710", "position": 0, "model": "Cisco 8841"},
                        {"extension": "40710", "position": 1, "model": "VIVAit Call Web"}]},
            {"order": 3, "ring_seconds": 20,
             "phones": [{"extension": "40710", "position": 2,
                         "model": "VIVAit Call Business Android"}]},
        ],
        "skipped": [{"extension": "40710", "position": 3, "reason": "order-zero"}],
    }


def test_exclusive_rings_desk_or_web_call_and_always_shows_the_user(exclusive):
    idle = ring(exclusive, "40710")
    assert stages(idle) == [(1, ["40710:0"])]
    assert skipped(idle) == [("40711:0", "webcall-not-running")]
    running = ring(exclusive, "40710", "--webcall-running")
    assert stages(running) == [(1, ["40711:0"])]
    assert skipped(running) == [("40710:0", "exclusive-webcall-active")]
    assert idle["display_name"] == running["display_name"] == "Ana García"


def test_pool_user_logs_into_the_first_group_extension_unless_told(exclusive):
    assert stages(ring(exclusive, "40730", "--webcall-running")) == [(1, ["40720:0"])]
    told = ring(exclusive, "40730", "--webcall-running", "--webcall-ext", "40721")
    assert stages(told) == [(1, ["40721:0"])]
    assert skipped(told) == [("40730:0", "exclusive-webcall-active")]
    # Pool extensions are shared, so they are not listed while Web Call is not running.
    assert skipped(ring(exclusive, "40730")) == []


def test_web_call_extension_called_directly_is_a_plain_extension(exclusive):
    plan = ring(exclusive, "40711", "--webcall-running")
    assert (plan["user"], plan["mode"], plan["display_name"]) == (None, None, "40711")
    assert stages(plan) == [(1, ["40711:0"])]


# Presence, timeouts and the outcome -----------------------------------------------------------

def test_offline_phone_is_not_registered(seeded):
    plan = ring(seeded, "40710", "--webcall-running", "--offline", "40710:1")
    assert stages(plan) == [(1, ["40710:0"])]
    assert skipped(plan) == [("40710:1", "not-registered")]


def test_silent_is_an_outcome_not_an_error(seeded):
    plan = ring(seeded, "40710", "--offline", "40710:0")
    assert (plan["outcome"], plan["stages"]) == ("silent", [])
    assert skipped(plan) == [("40710:0", "not-registered"), ("40710:1", "webcall-not-running")]


def test_fail_if_silent_exits_1_for_monitoring(seeded):
    silent = seeded("ring-sim", "40710", "--offline", "40710:0", "--fail-if-silent", "--json")
    assert silent.exit_code == 1, silent.output
    VALIDATOR.validate(json.loads(silent.stdout))
    assert "rings no phone" in silent.stderr
    ringing = seeded("ring-sim", "40710", "--fail-if-silent")
    assert ringing.exit_code == 0, ringing.output


def test_stages_ring_for_the_extension_ring_timeout(seeded):
    seeded.ok("ext", "set", "40710", "--ring-timeout", "35")
    seeded.ok("phone", "set", "40710", "1", "--order", "2")
    plan = ring(seeded, "40710", "--webcall-running")
    assert [(s["order"], s["ring_seconds"]) for s in plan["stages"]] == [(1, 35), (2, 35)]


def test_disabled_phone_is_skipped_as_disabled(seeded):
    seeded.ok("phone", "disable", "40710", "0")
    plan = ring(seeded, "40710", "--webcall-running")
    assert stages(plan) == [(1, ["40710:1"])]
    assert skipped(plan) == [("40710:0", "disabled")]


def test_extension_numbers_stay_strings_with_leading_zeros(mtctl):
    mtctl.ok("node", "add", "madrid")
    mtctl.ok("ext", "add", "0710", "--node", "madrid")
    mtctl.ok("phone", "add", "0710", "--position", "0", "--model", "Generic SIP hardphone")
    plan = ring(mtctl, "0710")
    assert plan["number"] == "0710"
    assert plan["stages"][0]["phones"][0]["extension"] == "0710"


# Errors ---------------------------------------------------------------------------------------

def test_unknown_number_exits_3_with_a_hint(seeded):
    result = seeded("ring-sim", "49999")
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert "49999" in result.stderr and "mtctl ext list" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("ref", ["40710:5", "49999:0"])
def test_offline_naming_a_phone_that_does_not_exist_exits_3(seeded, ref):
    result = seeded("ring-sim", "40710", "--offline", ref)
    assert result.exit_code == 3, result.output
    assert f"--offline {ref}" in result.stderr


@pytest.mark.parametrize("value", ["40710", "40710:", ":1", "40710:x", "40710:-1"])
def test_offline_that_is_not_ext_pos_is_a_usage_error(seeded, value):
    result = seeded("ring-sim", "40710", f"--offline={value}")
    assert result.exit_code == 2, result.output
    assert "EXT:POS" in result.stderr


def test_webcall_ext_must_be_one_of_the_users(exclusive):
    result = exclusive("ring-sim", "40730", "--webcall-running", "--webcall-ext", "40711")
    assert result.exit_code == 3, result.output
    assert "40720, 40721" in result.stderr


def test_webcall_ext_without_webcall_running_is_a_usage_error(exclusive):
    """Naming where Web Call runs while saying it does not run is refused, not ignored."""
    result = exclusive("ring-sim", "40730", "--webcall-ext", "40721")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result)
    assert "--webcall-running" in result.stderr


def test_web_call_running_assumes_a_pool_extension_no_one_else_holds(exclusive):
    """What `webcall start` would choose: never the browser another user is logged into."""
    exclusive.ok("ext", "add", "40740", "--node", "madrid")
    exclusive.ok("user", "add", "cai", "--name", "Cai", "--login", "40740",
                 "--webcall-mode", "exclusive", "--webcall-group", "pool")
    exclusive.ok("webcall", "start", "cai", "--ext", "40720")
    plan = ring(exclusive, "40730", "--webcall-running")
    assert stages(plan) == [(1, ["40721:0"])]
    assert "Web Call running on 40721" in human(exclusive, "40730", "--webcall-running")
    started = json.loads(exclusive.ok("webcall", "start", "bea", "--json").stdout)
    assert started["extension"] == "40721"
    assert ring(exclusive, "40730", "--webcall-running") == plan


def test_web_call_on_an_extension_another_user_holds_is_a_conflict(exclusive):
    exclusive.ok("ext", "add", "40740", "--node", "madrid")
    exclusive.ok("user", "add", "cai", "--name", "Cai", "--login", "40740",
                 "--webcall-mode", "exclusive", "--webcall-group", "pool")
    exclusive.ok("webcall", "start", "cai", "--ext", "40720")
    result = exclusive("ring-sim", "40730", "--webcall-running", "--webcall-ext", "40720")
    assert result.exit_code == 4, result.output
    assert_one_line_error(result)
    assert "40720 is in use by cai's Web Call session" in result.stderr
    exclusive.ok("ext", "add", "40750", "--node", "madrid")
    exclusive.ok("user", "add", "dan", "--name", "Dan", "--login", "40750",
                 "--webcall-mode", "exclusive", "--webcall-group", "pool")
    exclusive.ok("webcall", "start", "dan", "--ext", "40721")
    full = exclusive("ring-sim", "40730", "--webcall-running", "--json")  # the whole pool
    assert full.exit_code == 0, full.output
    assert "every Web Call extension of 40730 is in use" in full.stderr
    assert "40720, where cai's Web Call runs" in " ".join(full.stderr.split())


def test_moving_the_multiterminal_web_call_phone_carries_the_users_web_call_position(seeded):
    """The user's Web Call position names that phone: moving it is one command, not a rule
    that neither `phone set` nor `user set` can satisfy alone."""
    seeded.ok("webcall", "start", "ana")
    seeded.ok("phone", "set", "40710", "1", "--position", "5")
    user = json.loads(seeded.ok("user", "show", "ana", "--json").stdout)
    assert user["webcall_position"] == 5
    assert stages(ring(seeded, "40710", "--webcall-running")) == [(1, ["40710:0", "40710:5"])]
    assert json.loads(seeded.ok("webcall", "list", "--json").stdout)[0]["extension"] == "40710"
    audit = json.loads(seeded.ok("audit", "--json").stdout)
    assert [(r["action"], r["object"], r["changes"]) for r in audit[-2:]] == [
        ("set", "phone 40710:1", {"position": [1, 5]}),
        ("set", "user ana", {"webcall_position": [1, 5]})]
    assert json.loads(seeded.ok("check", "--json").stdout)["errors"] == []


# Human output ---------------------------------------------------------------------------------

def human(mtctl, *args: str, columns: int = 80) -> str:
    result = mtctl("ring-sim", *args, "--format", "table",
                   env={"NO_COLOR": "1", "COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout
    return result.stdout


def test_human_output_names_each_phone_by_stage_and_each_reason(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--order", "3", "--secure")
    seeded.ok("phone", "add", "40710", "--position", "3", "--model", "Linphone (no proxy)",
              "--order", "0")
    text = human(seeded, "40710", "--webcall-running", "--offline", "40710:2", columns=200)
    assert text.splitlines() == [
        "Calling 40710: user ana (multiterminal), Web Call running",
        "Caller sees: Ana García",
        "Stage 1 — order 1, rings 20 s: desk phone Cisco 8841 (40710:0, Madrid), "
        "VIVAit Call Web (40710:1)",
        "Not ringing:",
        "  mobile app VIVAit Call Business Android (40710:2): not registered (offline)",
        "  softphone Linphone (no proxy) (40710:3): order 0, so it never rings",
        "Outcome: rings (1 stage)",
    ]


def test_human_output_fits_80_columns(exclusive):
    exclusive.ok("phone", "set", "40710", "0", "--location", "Madrid, planta 3, puesto 12")
    for args in (("40710",), ("40710", "--webcall-running")):
        text = human(exclusive, *args)
        assert max(len(line) for line in text.splitlines()) <= 80, text
    text = human(exclusive, "40710", "--webcall-running")
    assert text.splitlines() == [
        "Calling 40710: user ana (exclusive), Web Call running on 40711",
        "Caller sees: Ana García",
        "Stage 1 — order 1, rings 20 s: VIVAit Call Web (40711:0)",
        "Not ringing:",
        "  desk phone Cisco 8841 (40710:0, Madrid, planta 3, puesto 12): Web Call is",
        "    running in exclusive mode, so only Web Call rings",
        "Outcome: rings (1 stage)",
    ]


def test_long_stage_wraps_between_phones_with_a_hanging_indent(seeded):
    text = human(seeded, "40710", "--webcall-running")
    assert text.splitlines()[2:4] == [
        "Stage 1 — order 1, rings 20 s: desk phone Cisco 8841 (40710:0, Madrid),",
        "    VIVAit Call Web (40710:1)",
    ]


def test_human_output_of_a_silent_plain_extension(mtctl):
    mtctl.ok("node", "add", "madrid")
    mtctl.ok("ext", "add", "40750", "--node", "madrid", "--name", "Lobby")
    mtctl.ok("phone", "add", "40750", "--position", "0", "--model", "Generic SIP hardphone",
             "--disabled")
    assert human(mtctl, "40750").splitlines() == [
        "Calling 40750: a plain extension (no user logs in with it)",
        "Caller sees: Lobby",
        "Not ringing:",
        "  desk phone Generic SIP hardphone (40750:0): disabled, so it takes no calls",
        "Outcome: silent — no phone rings",
    ]


def test_web_call_logged_in_elsewhere_is_said_in_plain_words(exclusive):
    exclusive.ok("user", "set", "ana", "--webcall-ext", "40711", "--webcall-ext", "40720")
    text = human(exclusive, "40710", "--webcall-running", "--webcall-ext", "40720")
    assert "  VIVAit Call Web (40711:0): Web Call is logged into 40720, not here" in text


# check uses the same function -----------------------------------------------------------------

def test_check_warns_about_an_extension_ring_sim_finds_silent(seeded, monkeypatch):
    from mtctl.domain import ringing

    seeded.ok("phone", "set", "40710", "0", "--order", "0")
    seeded.ok("phone", "disable", "40710", "1")
    assert ring(seeded, "40710", "--webcall-running")["outcome"] == "silent"
    calls = []
    original = ringing.ring_plan

    def spy(*args, **kwargs):
        plan = original(*args, **kwargs)
        calls.append(plan)
        return plan

    monkeypatch.setattr(ringing, "ring_plan", spy)
    result = seeded("check", "--json")
    warnings = json.loads(result.stdout)["warnings"]
    assert [w["object"] for w in warnings if w["rule"] == "silent-extension"] == [
        "extension 40710"]
    assert [plan.number for plan in calls] == ["40710"]
