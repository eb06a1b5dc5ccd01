"""The human rendering of a ring plan: readable on an 80-column terminal, without colour."""

from __future__ import annotations

from mtctl.cli import output
from mtctl.domain.model import PhoneSpec
from mtctl.domain.ringing import REASON_TEXT, RingPlan, RingTarget

KIND_WORD = {"hardphone": "desk phone ", "softphone": "softphone ", "app": "mobile app ",
             "webcall": ""}


def describe(phone: PhoneSpec) -> str:
    """`desk phone Cisco 8841 (40710:0, Madrid)`."""
    where = f"{phone.ref}, {phone.location}" if phone.location else phone.ref
    return f"{KIND_WORD.get(phone.kind, '')}{phone.model} ({where})"


def render_plan(plan: RingPlan, target: RingTarget) -> None:
    lines = []
    if plan.user:
        mode = plan.mode or "no Web Call"
        state = "running" if plan.webcall_running else "not running"
        head = f"Calling {plan.number}: user {plan.user} ({mode})"
        if plan.mode:
            head += f", Web Call {state}"
    else:
        head = f"Calling {plan.number}: extension {target.extension.shown_name}"
    lines.append(head)
    lines.append(f"Caller sees: {plan.display_name}")
    for index, stage in enumerate(plan.stages, start=1):
        phones = ", ".join(describe(p) for p in stage.phones)
        lines.append(f"Stage {index} — order {stage.order}, rings {stage.ring_seconds} s: "
                     f"{phones}")
    if plan.skipped:
        lines.append("Not ringing:")
        lines += [f"  {describe(s.phone)}: {REASON_TEXT[s.reason]}" for s in plan.skipped]
    if plan.stages:
        count = len(plan.stages)
        lines.append(f"Outcome: rings ({count} stage{'s' if count > 1 else ''})")
    else:
        lines.append("Outcome: silent — no phone rings")
    for line in lines:
        output.out().print(line, markup=False, highlight=False)
