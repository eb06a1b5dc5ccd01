"""ring-sim --all's NDJSON writer prints, byte for byte, what the generic JSON output prints
for `plan.as_dict()`: on random plans with any text (controls, non-ASCII, quotes), and on
the plans of random scenarios."""

from __future__ import annotations

import io
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtctl.cli import output, ring_json
from mtctl.domain.model import PhoneSpec
from mtctl.domain.ringing import REASONS, RingPlan, Skipped, Stage, ring_plan
from tests.domain.test_ringing_properties import scenarios

SETTINGS = settings(max_examples=300, deadline=None)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
INTS = st.integers(-(2**40), 2**40)


@st.composite
def phones(draw: st.DrawFn) -> PhoneSpec:
    return PhoneSpec(extension=draw(TEXT), position=draw(INTS), order=draw(INTS),
                     model=draw(TEXT), kind=draw(st.sampled_from(["app", "webcall"])))


@st.composite
def plans(draw: st.DrawFn) -> RingPlan:
    stages = draw(st.lists(st.builds(Stage, INTS, INTS, st.lists(phones(), max_size=3)
                                     .map(tuple)), max_size=3))
    skipped = draw(st.lists(st.builds(Skipped, phones(), st.sampled_from(REASONS) | TEXT),
                            max_size=3))
    return RingPlan(number=draw(TEXT), user=draw(st.none() | TEXT),
                    mode=draw(st.none() | TEXT), webcall_running=draw(st.booleans()),
                    display_name=draw(TEXT), stages=tuple(stages), skipped=tuple(skipped),
                    webcall_extension=draw(st.none() | TEXT))


def generic(many: list[RingPlan], monkeypatch: pytest.MonkeyPatch) -> str:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    output.print_ndjson(plan.as_dict() for plan in many)
    return out.getvalue()


def written(many: list[RingPlan], monkeypatch: pytest.MonkeyPatch) -> str:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    ring_json.print_plans(iter(many))
    return out.getvalue()


@SETTINGS
@given(st.lists(plans(), max_size=4))
def test_lines_equal_the_generic_json(many: list[RingPlan]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert written(many, monkeypatch) == generic(many, monkeypatch)


@SETTINGS
@given(st.lists(scenarios(), max_size=4))
def test_lines_of_ring_plans_equal_the_generic_json(many) -> None:
    found = [ring_plan(target, presence) for target, presence in many]
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert written(found, monkeypatch) == generic(found, monkeypatch)


def test_lines_are_written_in_chunks_and_none_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = RingPlan("40710", None, None, False, "Desk\x85", (), ())
    writes: list[str] = []

    class Out:
        def write(self, text: str) -> None:
            writes.append(text)

    monkeypatch.setattr(sys, "stdout", Out())
    ring_json.print_plans([plan] * (output.LINES_PER_WRITE + 1))
    assert [w.count("\n") for w in writes] == [output.LINES_PER_WRITE, 1]
    assert "\\u0085" in writes[0] and "\x85" not in writes[0]

    def failing():
        yield plan
        raise RuntimeError("driver error")

    writes.clear()
    with pytest.raises(RuntimeError):
        ring_json.print_plans(failing())
    assert writes == [ring_json.plan_line(plan).replace("\x85", "\\u0085") + "\n"]
