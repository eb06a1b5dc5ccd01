"""A ring plan printed: for people, readable on an 80-column terminal without colour; for
scripts, as JSON or as one row per phone (through the output module)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.cells import cell_len

from mtctl.cli import output
from mtctl.domain.model import PhoneSpec
from mtctl.domain.ringing import (
    DISABLED,
    EXCLUSIVE_WEBCALL_ACTIVE,
    NOT_REGISTERED,
    ORDER_ZERO,
    WEBCALL_NOT_RUNNING,
    RingPlan,
    Skipped,
    all_phones,
)

if TYPE_CHECKING:
    from mtctl.shapes import RingRow
    from mtctl.store.live import Registration

RING_ROWS = output.Shape("ring-sim-row", "RingRow",
                         empty="no phone is a candidate")

KIND_WORD = {"hardphone": "desk phone ", "softphone": "softphone ", "app": "mobile app ",
             "webcall": ""}
REASON_TEXT = {
    ORDER_ZERO: "order 0, so it never rings",
    DISABLED: "disabled, so it takes no calls",
    WEBCALL_NOT_RUNNING: "Web Call is not running",
    NOT_REGISTERED: "not registered (offline)",
    EXCLUSIVE_WEBCALL_ACTIVE: "Web Call is running in exclusive mode, so only Web Call rings",
}
INDENT = "    "
MIN_WIDTH = 40
PIPE_WIDTH = 80


def describe(phone: PhoneSpec) -> str:
    """`desk phone Cisco 8841 (40710:0, Madrid)`."""
    where = f"{phone.ref}, {phone.location}" if phone.location else phone.ref
    return f"{KIND_WORD.get(phone.kind, '')}{phone.model} ({where})"


def reason_text(plan: RingPlan, skip: Skipped) -> str:
    """Why a phone does not ring, in plain words."""
    if skip.reason == WEBCALL_NOT_RUNNING and plan.webcall_extension:
        return f"Web Call is logged into {plan.webcall_extension}, not here"
    return REASON_TEXT.get(skip.reason, skip.reason)


def text_width() -> int:
    """The terminal's width; in a pipe, $COLUMNS or 80."""
    console = output.out()
    if console.is_terminal:
        width = console.width
    else:
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() else PIPE_WIDTH
    return max(width, MIN_WIDTH)


def wrap_items(head: str, items: list[str], width: int) -> list[str]:
    """HEAD followed by ITEMS separated by commas, broken between items with a hanging indent."""
    pieces = [f"{item}," for item in items[:-1]] + items[-1:]
    lines: list[str] = []
    line = head
    for piece in pieces:
        joined = f"{line} {piece}"
        if cell_len(joined) <= width or not line.strip():
            line = joined
        else:
            lines.append(line)
            line = INDENT + piece
    lines.append(line)
    return [part for long in lines for part in wrap(long, width)]


def wrap(line: str, width: int) -> list[str]:
    """One line as is when it fits, else word-wrapped with a hanging indent."""
    if cell_len(line) <= width:
        return [line]
    return textwrap.wrap(line, width, subsequent_indent=INDENT, break_long_words=False,
                         break_on_hyphens=False)


def registration_lines(plan: RingPlan, registrations: Mapping[tuple[str, int], Registration],
                       *, width: int) -> list[str]:
    """Each phone the plan mentions with its last live registration (ring-sim --live)."""
    lines = ["Registrations (live, from the store's location table):"]
    for phone in sorted(all_phones(plan), key=lambda p: (p.extension, p.position)):
        reg = registrations.get((phone.extension, phone.position))
        if reg is None:
            state = "not registered"
        else:
            when = reg.last_modified.strftime("%Y-%m-%d %H:%M:%S UTC")
            at = f" at node {reg.node}" if reg.node else ""
            state = f"registered{at} {when}, {reg.user_agent or 'no user agent'}"
        lines += wrap(f"  {describe(phone)}: {state}", width)
    return lines


def registrations_json(plan: RingPlan, registrations: Mapping[tuple[str, int], Registration]
                       ) -> list[dict[str, object]]:
    """The live registrations of the phones the plan mentions (ring-sim --live --json)."""
    found = []
    for phone in sorted(all_phones(plan), key=lambda p: (p.extension, p.position)):
        reg = registrations.get((phone.extension, phone.position))
        if reg is not None:
            found.append({"extension": phone.extension, "position": phone.position,
                          "node": reg.node,
                          "since": reg.last_modified.isoformat(timespec="seconds"),
                          "user_agent": reg.user_agent})
    return found


def plan_lines(plan: RingPlan, *, width: int) -> list[str]:
    """The plan as lines of at most WIDTH columns (unless one word is longer)."""
    if plan.user is None:
        head = f"Calling {plan.number}: a plain extension (no user logs in with it)"
    elif plan.mode is None:
        head = f"Calling {plan.number}: user {plan.user} (no Web Call)"
    else:
        state = "running" if plan.webcall_running else "not running"
        if plan.webcall_extension:
            state += f" on {plan.webcall_extension}"
        head = f"Calling {plan.number}: user {plan.user} ({plan.mode}), Web Call {state}"
    lines = wrap(head, width) + wrap(f"Caller sees: {plan.display_name}", width)
    for index, stage in enumerate(plan.stages, start=1):
        lines += wrap_items(f"Stage {index} — order {stage.order}, rings {stage.ring_seconds} s:",
                            [describe(p) for p in stage.phones], width)
    if plan.skipped:
        lines.append("Not ringing:")
        for skip in plan.skipped:
            lines += wrap(f"  {describe(skip.phone)}: {reason_text(plan, skip)}", width)
    if plan.stages:
        count = len(plan.stages)
        lines.append(f"Outcome: rings ({count} stage{'s' if count > 1 else ''})")
    else:
        lines.append("Outcome: silent — no phone rings")
    return lines


def session_line(plan: RingPlan, sessions: Mapping[str, str], *, width: int) -> list[str]:
    """The called user's Web Call session (ring-sim --live), for users with Web Call."""
    if plan.user is None or plan.mode is None:
        return []
    number = sessions.get(plan.user)
    if number:
        state = f"on {number}"
    elif plan.mode == "multiterminal":
        state = "none (not needed in multiterminal mode: Web Call runs while its phone is " \
            "registered)"
    else:
        state = "none (a pool extension's Web Call counts only with the user's session: " \
            "mtctl webcall start)"
    return wrap(f"Web Call session of {plan.user}: {state}", width)


def render_plan(plan: RingPlan,
                registrations: Mapping[tuple[str, int], Registration] | None = None,
                sessions: Mapping[str, str] | None = None) -> None:
    """Print the plan for people on stdout (with live registrations and sessions when given)."""
    width = text_width()
    lines = plan_lines(plan, width=width)
    if registrations is not None:
        lines += registration_lines(plan, registrations, width=width)
    if sessions is not None:
        lines += session_line(plan, sessions, width=width)
    from mtctl.domain.values import escape

    for line in lines:  # names and user agents are shown, never acted on by the terminal
        output.out().print(escape(line), markup=False, highlight=False, emoji=False)


def plan_rows(plan: RingPlan) -> list[RingRow]:
    """Every phone of the plan as a row: the ringing ones stage by stage, then the others."""
    rows: list[RingRow] = [
        {"number": plan.number, "stage": index, "order": stage.order,
         "ring_seconds": stage.ring_seconds, "extension": phone.extension,
         "position": phone.position, "model": phone.model, "reason": None}
        for index, stage in enumerate(plan.stages, start=1) for phone in stage.phones]
    rows += [{"number": plan.number, "stage": None, "order": skip.phone.order,
              "ring_seconds": None, "extension": skip.phone.extension,
              "position": skip.phone.position, "model": skip.phone.model,
              "reason": skip.reason}  # type: ignore[typeddict-item]
             for skip in plan.skipped]
    return rows


def print_plan(plan: RingPlan, how: output.Style,
               registrations: Mapping[tuple[str, int], Registration] | None = None,
               sessions: Mapping[str, str] | None = None) -> None:
    """The plan in the format asked for: a table is the text of render_plan()."""
    document: dict[str, object] = dict(plan.as_dict())
    if registrations is not None:  # --live: shapes.LiveRingPlan
        document["registrations"] = registrations_json(plan, registrations)
        document["webcall_session"] = (sessions or {}).get(plan.user) if plan.user else None
    output.report(document, plan_rows(plan), RING_ROWS, how,
                  human=lambda: render_plan(plan, registrations, sessions))
