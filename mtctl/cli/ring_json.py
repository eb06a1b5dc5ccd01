"""`ring-sim --all`'s NDJSON: each plan's line written straight from the plan.

A line is byte for byte what `output.print_ndjson([plan.as_dict()])` prints (a property test
compares them on random plans), without building the dict and walking it through the
generic encoder: 100,000 plans are most of what `ring-sim --all` spends its time on.
"""

from __future__ import annotations

from collections.abc import Iterable
from json.encoder import encode_basestring  # ensure_ascii=False's string spelling

from mtctl.cli.output import raw_escaped, write_lines
from mtctl.domain.ringing import RingPlan


def plan_line(plan: RingPlan) -> str:
    """The plan as one compact JSON object (SPEC §7), without the newline."""
    text = encode_basestring
    stages = ",".join(
        f'{{"order":{stage.order},"ring_seconds":{stage.ring_seconds},"phones":['
        + ",".join(f'{{"extension":{text(p.extension)},"position":{p.position},'
                   f'"model":{text(p.model)}}}' for p in stage.phones)
        + "]}"
        for stage in plan.stages)
    skipped = ",".join(
        f'{{"extension":{text(s.phone.extension)},"position":{s.phone.position},'
        f'"reason":{text(s.reason)}}}' for s in plan.skipped)
    return (f'{{"number":{text(plan.number)},"user":{_maybe(plan.user)},'
            f'"mode":{_maybe(plan.mode)},'
            f'"webcall_running":{"true" if plan.webcall_running else "false"},'
            f'"display_name":{text(plan.display_name)},"outcome":{text(plan.outcome)},'
            f'"stages":[{stages}],"skipped":[{skipped}]}}')


def _maybe(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def print_plans(plans: Iterable[RingPlan]) -> None:
    """One line per plan on stdout, written a thousand lines at a time (streams)."""
    write_lines((plan_line(plan) + "\n" for plan in plans), escape=raw_escaped)
