"""Who rings (SPEC §3), on plain values: the seed's walkthroughs and each rule, no store."""

from __future__ import annotations

import pytest

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec
from mtctl.domain.ringing import (
    Presence,
    RingPlan,
    RingTarget,
    can_ever_ring,
    ring_plan,
    webcall_taken_by,
)

RUNNING = Presence(webcall_running=True)

KINDS = {
    "Cisco 8841": "hardphone",
    "Linphone (no proxy)": "softphone",
    "VIVAit Call Business iOS": "app",
    "VIVAit Call Business Android": "app",
    "VIVAit Call Web": "webcall",
}


def phone(ext: str, position: int, model: str = "Cisco 8841", *, order: int = 1,
          enabled: bool = True, location: str | None = None) -> PhoneSpec:
    kind = KINDS[model]
    return PhoneSpec(extension=ext, position=position, order=order, model=model, kind=kind,
                     vendor="Cisco" if model.startswith("Cisco") else "VIVAit",
                     enabled=enabled, location=location, node="madrid",
                     template="webfon" if kind == "webcall" else "default",
                     template_for_webcall=kind == "webcall")


def ext(number: str, *phones: PhoneSpec, name: str | None = None,
        ring_timeout: int = 20) -> ExtensionSpec:
    return ExtensionSpec(number=number, node="madrid", display_name=name,
                         ring_timeout=ring_timeout, phones=phones)


def target(login: ExtensionSpec, user: UserSpec | None = None,
           *webcall: ExtensionSpec) -> RingTarget:
    return RingTarget(number=login.number, extension=login, user=user,
                      webcall_extensions={e.number: e for e in webcall})


def exclusive() -> RingTarget:
    """Seed, "Web Call modo exclusivo": desk phone on 40710:0, Web Call on 40711:0."""
    login = ext("40710", phone("40710", 0, location="Madrid"), name="Desk 40710")
    webcall = ext("40711", phone("40711", 0, "VIVAit Call Web"), name="Web Call 40711")
    ana = UserSpec(username="ana", display_name="Ana García", login="40710",
                   webcall_mode="exclusive", webcall_license="dedicated",
                   webcall_extensions=("40711",))
    return target(login, ana, webcall)


def multiterminal(webcall_order: int = 1) -> RingTarget:
    """Seed, "Web Call modo multiterminal": desk phone on 40710:0, Web Call on 40710:1."""
    login = ext("40710", phone("40710", 0, location="Madrid"),
                phone("40710", 1, "VIVAit Call Web", order=webcall_order), name="Desk 40710")
    ana = UserSpec(username="ana", display_name="Ana García", login="40710",
                   webcall_mode="multiterminal", webcall_license="dedicated",
                   webcall_extensions=("40710",), webcall_position=1)
    return target(login, ana, login)


def portal() -> RingTarget:
    """Seed, user-portal table: Linphone 0/order 0/off, iOS 1/order 0/off, Android 2/order 3/on."""
    login = ext("40710",
                phone("40710", 0, "Linphone (no proxy)", order=0, enabled=False),
                phone("40710", 1, "VIVAit Call Business iOS", order=0, enabled=False),
                phone("40710", 2, "VIVAit Call Business Android", order=3),
                name="Ana 40710")
    ana = UserSpec(username="ana", display_name="Ana García", login="40710")
    return target(login, ana)


def stages(plan: RingPlan) -> list[tuple[int, list[str]]]:
    return [(s.order, [p.ref for p in s.phones]) for s in plan.stages]


def skipped(plan: RingPlan) -> list[tuple[str, str]]:
    return [(s.phone.ref, s.reason) for s in plan.skipped]


# The seed's walkthroughs ---------------------------------------------------------------------

def test_exclusive_without_web_call_rings_the_desk_phone_and_shows_the_user():
    plan = ring_plan(exclusive())
    assert stages(plan) == [(1, ["40710:0"])]
    assert skipped(plan) == [("40711:0", "webcall-not-running")]
    assert plan.display_name == "Ana García"
    assert (plan.user, plan.mode, plan.outcome) == ("ana", "exclusive", "rings")
    assert plan.webcall_extension is None


def test_exclusive_with_web_call_rings_only_web_call_and_shows_the_user():
    plan = ring_plan(exclusive(), RUNNING)
    assert stages(plan) == [(1, ["40711:0"])]
    assert skipped(plan) == [("40710:0", "exclusive-webcall-active")]
    assert plan.display_name == "Ana García"
    assert plan.webcall_extension == "40711"


def test_multiterminal_with_web_call_rings_desk_and_web_call_together_when_same_order():
    plan = ring_plan(multiterminal(), RUNNING)
    assert stages(plan) == [(1, ["40710:0", "40710:1"])]
    assert skipped(plan) == []
    assert plan.display_name == "Ana García"


def test_multiterminal_with_web_call_rings_by_order():
    plan = ring_plan(multiterminal(webcall_order=2), RUNNING)
    assert stages(plan) == [(1, ["40710:0"]), (2, ["40710:1"])]
    assert plan.display_name == "Ana García"


def test_multiterminal_without_web_call_rings_the_desk_phone_and_shows_the_extension():
    plan = ring_plan(multiterminal())
    assert stages(plan) == [(1, ["40710:0"])]
    assert skipped(plan) == [("40710:1", "webcall-not-running")]
    assert plan.display_name == "Desk 40710"


@pytest.mark.parametrize("presence", [Presence(), RUNNING], ids=["not-running", "running"])
def test_user_portal_table_rings_only_the_android(presence):
    plan = ring_plan(portal(), presence)
    assert stages(plan) == [(3, ["40710:2"])]
    assert skipped(plan) == [("40710:0", "order-zero"), ("40710:1", "order-zero")]
    assert plan.display_name == "Ana 40710"
    assert plan.mode is None


def test_spec_section_7_example_is_reproduced_exactly():
    login = ext("40710", phone("40710", 0), phone("40710", 1, "VIVAit Call Web"),
                phone("40710", 2, "VIVAit Call Business Android", order=3),
                phone("40710", 3, "Linphone (no proxy)", order=0), name="Desk 40710")
    ana = UserSpec(username="ana", display_name="Ana García", login="40710",
                   webcall_mode="multiterminal", webcall_position=1)
    assert ring_plan(target(login, ana), RUNNING).as_dict() == {
        "number": "40710",
        "user": "ana",
        "mode": "multiterminal",
        "webcall_running": True,
        "display_name": "Ana García",
        "outcome": "rings",
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


# Each rule of SPEC §3 ------------------------------------------------------------------------

def test_filter_records_the_first_reason_that_applies():
    login = ext("40710",
                phone("40710", 0, order=0, enabled=False),
                phone("40710", 1, "VIVAit Call Web", enabled=False),
                phone("40710", 2, "VIVAit Call Web"),
                phone("40710", 3, "VIVAit Call Business Android"),
                phone("40710", 4, "VIVAit Call Business iOS"))
    plan = ring_plan(target(login), Presence(offline=frozenset({("40710", 2), ("40710", 3)})))
    assert skipped(plan) == [("40710:0", "order-zero"), ("40710:1", "disabled"),
                             ("40710:2", "webcall-not-running"),
                             ("40710:3", "not-registered")]
    assert stages(plan) == [(1, ["40710:4"])]


def test_offline_phone_is_not_registered_and_silence_is_an_outcome():
    plan = ring_plan(multiterminal(), Presence(offline=frozenset({("40710", 0)})))
    assert stages(plan) == []
    assert skipped(plan) == [("40710:0", "not-registered"), ("40710:1", "webcall-not-running")]
    assert plan.outcome == "silent"


def test_plain_extension_shows_its_own_name_or_number():
    named = ring_plan(target(ext("40711", phone("40711", 0), name="Reception")))
    assert (named.user, named.mode, named.display_name) == (None, None, "Reception")
    unnamed = ring_plan(target(ext("040711", phone("040711", 0))))
    assert unnamed.display_name == "040711"
    assert unnamed.as_dict()["number"] == "040711"


def test_user_without_web_call_shows_the_extension_name():
    plan = ring_plan(portal(), RUNNING)
    assert plan.display_name == "Ana 40710"


def test_stages_ring_for_the_extension_ring_timeout_lowest_order_first():
    login = ext("40710", phone("40710", 0, order=5),
                phone("40710", 2, "VIVAit Call Business Android", order=2),
                phone("40710", 1, "VIVAit Call Business iOS", order=2), ring_timeout=35)
    plan = ring_plan(target(login))
    assert stages(plan) == [(2, ["40710:1", "40710:2"]), (5, ["40710:0"])]
    assert {s.ring_seconds for s in plan.stages} == {35}


def pool_user(*own: str, group: tuple[str, ...] = ("40720", "40721"),
              mode: str = "exclusive") -> RingTarget:
    login = ext("40710", phone("40710", 0), name="Desk 40710")
    numbers = (*own, *group)
    webcall = [ext(n, phone(n, 0, "VIVAit Call Web")) for n in numbers]
    user = UserSpec(username="bea", display_name="Bea Ruiz", login="40710",
                    webcall_mode=mode, webcall_license="pool", webcall_extensions=own,
                    webcall_group="pool" if group else None, group_extensions=group)
    return target(login, user, *webcall)


def test_exclusive_pool_user_logs_into_the_first_group_extension_by_default():
    plan = ring_plan(pool_user(), RUNNING)
    assert stages(plan) == [(1, ["40720:0"])]
    assert skipped(plan) == [("40710:0", "exclusive-webcall-active")]
    assert plan.webcall_extension == "40720"


def test_exclusive_pool_user_logged_into_a_named_extension():
    plan = ring_plan(pool_user(), Presence(webcall_running=True, webcall_extension="40721"))
    assert stages(plan) == [(1, ["40721:0"])]
    assert plan.webcall_extension == "40721"


def test_web_call_running_without_a_named_extension_runs_on_the_users_session():
    on_session = Presence(webcall_running=True, sessions={"bea": "40721"})
    plan = ring_plan(pool_user(), on_session)
    assert (stages(plan), plan.webcall_extension) == ([(1, ["40721:0"])], "40721")
    # another user's session, or one on an extension that is not bea's, changes nothing
    for sessions in ({"ana": "40721"}, {"bea": "40799"}):
        plan = ring_plan(pool_user(), Presence(webcall_running=True, sessions=sessions))
        assert plan.webcall_extension == "40720"
    # a named extension wins over the session (what-if)
    plan = ring_plan(pool_user(), Presence(webcall_running=True, webcall_extension="40720",
                                           sessions={"bea": "40721"}))
    assert plan.webcall_extension == "40720"
    # a session alone does not make Web Call run
    assert ring_plan(pool_user(), Presence(sessions={"bea": "40721"})).webcall_running is False


def test_web_call_running_without_a_named_extension_skips_extensions_others_hold():
    plan = ring_plan(pool_user(), Presence(webcall_running=True, sessions={"ana": "40720"}))
    assert (stages(plan), plan.webcall_extension) == ([(1, ["40721:0"])], "40721")
    assert webcall_taken_by(pool_user(), Presence(webcall_running=True,
                                                  sessions={"ana": "40720"})) is None
    full = Presence(webcall_running=True, sessions={"ana": "40720", "cai": "40721"})
    assert webcall_taken_by(pool_user(), full) == ("40720", "ana")
    named = Presence(webcall_running=True, webcall_extension="40721", sessions={"cai": "40721"})
    assert webcall_taken_by(pool_user(), named) == ("40721", "cai")
    assert webcall_taken_by(pool_user(), Presence(sessions={"cai": "40720"})) is None


def test_exclusive_own_extensions_come_before_the_group_and_pool_is_never_listed():
    target_ = pool_user("40711", "40712")
    assert stages(ring_plan(target_, RUNNING)) == [(1, ["40711:0"])]
    assert skipped(ring_plan(target_, RUNNING)) == [
        ("40710:0", "exclusive-webcall-active"), ("40712:0", "webcall-not-running")]
    assert skipped(ring_plan(target_)) == [("40711:0", "webcall-not-running"),
                                          ("40712:0", "webcall-not-running")]


def test_exclusive_web_call_phone_offline_while_running_is_silent():
    plan = ring_plan(exclusive(), Presence(webcall_running=True,
                                           offline=frozenset({("40711", 0)})))
    assert stages(plan) == []
    assert skipped(plan) == [("40710:0", "exclusive-webcall-active"),
                             ("40711:0", "not-registered")]
    assert plan.outcome == "silent"


def test_exclusive_web_call_extension_equal_to_login_lists_each_phone_once():
    # Breaks MT010, which check reports; the ring function must still stay consistent.
    login = ext("40710", phone("40710", 0), phone("40710", 1, "VIVAit Call Web"))
    user = UserSpec(username="ana", display_name="Ana García", login="40710",
                    webcall_mode="exclusive", webcall_extensions=("40710", "40710"))
    running = ring_plan(target(login, user, login), RUNNING)
    assert stages(running) == [(1, ["40710:1"])]
    assert skipped(running) == [("40710:0", "exclusive-webcall-active")]
    idle = ring_plan(target(login, user, login))
    assert stages(idle) == [(1, ["40710:0"])]
    assert skipped(idle) == [("40710:1", "webcall-not-running")]


def test_can_ever_ring_is_the_ring_function_with_everything_online():
    assert can_ever_ring(multiterminal().extension)
    assert not can_ever_ring(ext("40710", phone("40710", 0, order=0),
                                 phone("40710", 1, "VIVAit Call Web", enabled=False)))
    assert not can_ever_ring(ext("40710"))
    assert can_ever_ring(exclusive().webcall_extensions["40711"])
