"""Property tests for ring_plan: random extensions of 0–8 phones and random presence."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec
from mtctl.domain.ringing import (
    REASONS,
    Presence,
    RingTarget,
    all_phones,
    can_ever_ring,
    ring_plan,
)

LOGIN = "40710"
OWN = ("40711", "40712")
POOL = ("40720", "40721")
MODELS = {"hardphone": "Cisco 8841", "softphone": "Linphone (no proxy)",
          "app": "VIVAit Call Business Android", "webcall": "VIVAit Call Web"}
KINDS = tuple(sorted(MODELS))
WEBCALL_HEAVY = ("webcall", "webcall", "webcall", "hardphone")
SETTINGS = settings(max_examples=200, deadline=None)

Key = tuple[str, int]


def key(phone: PhoneSpec) -> Key:
    return (phone.extension, phone.position)


@st.composite
def extensions(draw: st.DrawFn, number: str, kinds: tuple[str, ...] = KINDS) -> ExtensionSpec:
    """An extension with 0–8 phones at distinct positions, any order, enabled or not."""
    positions = draw(st.lists(st.integers(0, 7), max_size=8, unique=True))
    phones = []
    for position in positions:
        kind = draw(st.sampled_from(kinds))
        phones.append(PhoneSpec(extension=number, position=position, order=draw(st.integers(0, 3)),
                                model=MODELS[kind], kind=kind, enabled=draw(st.booleans())))
    return ExtensionSpec(number=number, node="madrid", display_name=draw(
        st.sampled_from([None, f"Desk {number}"])), ring_timeout=draw(st.integers(1, 60)),
        phones=tuple(phones))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RingTarget, Presence]:
    """A called number (plain, or a user in any Web Call mode) and what is online."""
    login = draw(extensions(LOGIN))
    user = None
    mode = draw(st.sampled_from(["plain", "none", "exclusive", "exclusive", "multiterminal"]))
    if mode != "plain":
        # LOGIN among the user's own Web Call extensions breaks MT010 but must not break this.
        own = tuple(draw(st.lists(st.sampled_from(OWN + (LOGIN,)), max_size=3, unique=True)))
        pool = tuple(draw(st.lists(st.sampled_from(POOL), max_size=2, unique=True)))
        user = UserSpec(username="ana", display_name="Ana García", login=LOGIN,
                        webcall_mode=None if mode == "none" else mode,
                        webcall_extensions=own, group_extensions=pool,
                        webcall_group="pool" if pool else None)
    named = user.all_webcall_extensions if user else ()
    # Web Call extensions hold mostly Web Call phones, as MT010 wants, but not only.
    webcall = {n: login if n == LOGIN else draw(extensions(n, WEBCALL_HEAVY)) for n in named}
    target = RingTarget(number=LOGIN, extension=login, user=user, webcall_extensions=webcall)
    every = sorted({key(p) for e in (login, *webcall.values()) for p in e.phones})
    offline = draw(st.lists(st.sampled_from(every), unique=True)) if every else []
    presence = Presence(webcall_running=draw(st.booleans()),
                        webcall_extension=draw(st.sampled_from((None, *named))),
                        offline=frozenset(offline))
    return target, presence


def logged_into(target: RingTarget, presence: Presence) -> str | None:
    numbers = target.user.all_webcall_extensions if target.user else ()
    return presence.webcall_extension or (numbers[0] if numbers else None)


def candidates(target: RingTarget, presence: Presence) -> set[Key]:
    """SPEC §3 step 2, restated: every phone the plan must account for."""
    user = target.user
    found = {key(p) for p in target.extension.phones}
    if user is None or user.webcall_mode != "exclusive":
        return found
    own = [target.webcall_extensions[n] for n in user.webcall_extensions]
    found |= {key(p) for e in own for p in e.phones if p.is_webcall}
    chosen = logged_into(target, presence)
    if presence.webcall_running and chosen is not None:
        found |= {key(p) for p in target.webcall_extensions[chosen].phones if p.is_webcall}
    return found


def shuffled(target: RingTarget, rng: random.Random) -> RingTarget:
    """The same target as a database might return it: phones and extensions in any order."""
    def mix(ext: ExtensionSpec) -> ExtensionSpec:
        phones = list(ext.phones)
        rng.shuffle(phones)
        return replace(ext, phones=tuple(phones))

    numbers = list(target.webcall_extensions)
    rng.shuffle(numbers)
    return replace(target, extension=mix(target.extension),
                   webcall_extensions={n: mix(target.webcall_extensions[n]) for n in numbers})


@SETTINGS
@given(scenarios())
def test_every_candidate_phone_appears_exactly_once(scenario):
    target, presence = scenario
    plan = ring_plan(target, presence)
    mentioned = Counter(key(p) for p in all_phones(plan))
    assert set(mentioned) == candidates(target, presence)
    assert set(mentioned.values()) <= {1}


@SETTINGS
@given(scenarios())
def test_stages_ascend_and_hold_only_phones_that_can_ring(scenario):
    target, presence = scenario
    plan = ring_plan(target, presence)
    orders = [s.order for s in plan.stages]
    assert orders == sorted(set(orders))
    assert plan.outcome == ("rings" if plan.stages else "silent")
    for stage in plan.stages:
        assert stage.phones
        assert stage.ring_seconds == target.extension.ring_timeout
        assert [key(p) for p in stage.phones] == sorted(key(p) for p in stage.phones)
        for phone in stage.phones:
            assert phone.order == stage.order != 0
            assert phone.enabled
            assert presence.registered(phone)
            assert presence.webcall_running or not phone.is_webcall
    assert [key(s.phone) for s in plan.skipped] == sorted(key(s.phone) for s in plan.skipped)
    assert {s.reason for s in plan.skipped} <= set(REASONS)


@SETTINGS
@given(scenarios())
def test_exclusive_running_rings_only_web_call_and_display_name_follows_the_mode(scenario):
    target, presence = scenario
    plan = ring_plan(target, presence)
    if plan.mode == "exclusive" and presence.webcall_running:
        chosen = logged_into(target, presence)
        assert all(p.is_webcall and p.extension == chosen
                   for s in plan.stages for p in s.phones)
    shows_user = plan.mode == "exclusive" or (plan.mode == "multiterminal"
                                              and presence.webcall_running)
    expected = "Ana García" if shows_user else target.extension.display_name or LOGIN
    assert plan.display_name == expected


@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(scenario, rng):
    target, presence = scenario
    assert ring_plan(shuffled(target, rng), presence).as_dict() == \
        ring_plan(target, presence).as_dict()


@SETTINGS
@given(extensions(LOGIN))
def test_check_warning_means_every_phone_has_order_zero_or_is_disabled(extension):
    assert can_ever_ring(extension) == any(p.order and p.enabled for p in extension.phones)


@given(scenarios(), st.sampled_from((None, *OWN, *POOL, LOGIN)),
       st.sampled_from((None, *OWN, *POOL)))
def test_live_a_pool_web_call_rings_only_for_the_user_with_a_session_there(scenario, mine,
                                                                           theirs):
    from mtctl.domain.presence import live_presence

    target, presence = scenario
    every = {key(p) for e in (target.extension, *target.webcall_extensions.values())
             for p in e.phones}
    online = every - presence.offline
    sessions = {"bea": theirs} if theirs else {}
    if mine:
        sessions["ana"] = mine
    plan = ring_plan(target, live_presence(target, online, sessions))
    user = target.user
    pool_only = set(user.group_extensions) - set(user.webcall_extensions) if user else set()
    for stage in plan.stages:
        for phone in stage.phones:
            if phone.extension in pool_only:
                assert sessions.get("ana") == phone.extension, (sessions, phone.ref)
    # someone else's session never changes who rings for ana
    alone = {k: v for k, v in sessions.items() if k == "ana"}
    assert plan == ring_plan(target, live_presence(target, online, alone))
