"""`mtctl calls`: the calls the proxy routed, and each one next to what SPEC §3 planned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from mtctl.cli import output
from mtctl.cli.common import JsonOpt, opened, reading, whole_number

calls_app = typer.Typer(help="Real calls: list, show, explain against the plan, prune.\n\n"
                             "Example: mtctl calls explain 3c2a9f@10.0.0.5",
                        no_args_is_help=True)

SPANS = {"d": ("days", 36_500), "h": ("hours", 876_000), "m": ("minutes", 52_560_000),
         "s": ("seconds", 2**31 - 1)}
TIME_HINT = ("use an ISO time (2026-11-30T10:32:00Z; UTC unless it names a zone) or a span "
             "back from now such as 2h, 15m, -15m, 7d")


def parse_when(value: str, what: str, *, now: datetime | None = None) -> datetime:
    """An ISO date/time (UTC unless it says otherwise), or a span back from now: 2h, -15m."""
    from mtctl.domain.values import parse_int
    from mtctl.errors import UsageError

    span = value[1:] if value.startswith("-") else value
    if span[-1:] in SPANS and span[:-1].isascii() and span[:-1].isdigit():
        unit, most = SPANS[span[-1]]
        amount = parse_int(span[:-1], what=what, low=0, high=most, hint=TIME_HINT)
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise UsageError(f"{what} {value[:80]!r} is not a time", TIME_HINT) from None


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


CALL_ID = Annotated[str, typer.Argument(metavar="CALL_ID",
                                        help="The call's SIP Call-ID (see: mtctl calls list).")]


@calls_app.command("list")
def list_calls(
    ctx: typer.Context,
    number: Annotated[str | None, typer.Argument(
        metavar="[NUMBER]", help="Only calls to this number.")] = None,
    since: Annotated[str, typer.Option(
        metavar="WHEN", help="ISO time or span back from now (2h, 7d).")] = "1d",
    limit: Annotated[int, typer.Option(
        metavar="N", help="At most N calls, newest first.",
        parser=whole_number("--limit", 1, 100_000))] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """List the calls the proxy routed, newest first, with their outcome.

    Example: mtctl calls list 40710 --since 2h
    """
    from mtctl.store.calls import list_calls as query

    since_ms = epoch_ms(parse_when(since, "--since"))
    with reading(ctx) as conn:
        found = query(conn, number=number, since_ms=since_ms, limit=limit)
    items = [c.as_dict() for c in found]
    output.rows(items, ["started_at", "call_id", "caller", "called", "node", "summary"],
                as_json=as_json, empty="no calls", titles={"summary": "outcome"})


@calls_app.command("show")
def show_call(ctx: typer.Context, call_id: CALL_ID, as_json: JsonOpt = False) -> None:
    """Show one call and every branch the proxy sent (stage, phone, response).

    Example: mtctl calls show 3c2a9f@10.0.0.5 --json
    """
    from mtctl.store.calls import get_call

    with reading(ctx) as conn:
        call = get_call(conn, call_id)
    item = call.as_dict(branches=True)
    if as_json:
        output.print_json(item)
        return
    branches = item.pop("branches")
    answered = item["answered_by"]
    item["answered_by"] = f"{answered['extension']}:{answered['position']}" if answered else None
    output.record(item, as_json=False)
    output.out().print("")
    for branch in branches:
        branch["phone"] = f"{branch['extension']}:{branch['position']}"
        branch["response"] = (f"{branch['final_code']} {branch['final_reason'] or ''}".strip()
                              if branch["final_code"] is not None else "")
    output.rows(branches, ["stage", "order", "phone", "invited_at", "ended_at", "response",
                           "answered"], as_json=False, empty="no branch was sent")


@calls_app.command("explain")
def explain_call(ctx: typer.Context, call_id: CALL_ID, as_json: JsonOpt = False) -> None:
    """Explain a past call phone by phone: planned, what happened, evidence, divergences.

    The plan is SPEC §3's with the store and the registrations as they were at the call's
    time; a difference between plan and reality is flagged as a divergence.

    Example: mtctl calls explain 3c2a9f@10.0.0.5
    """
    from mtctl.store.calls import explain_call as explain

    with reading(ctx) as conn:
        explanation = explain(conn, call_id)
    if as_json:
        output.print_json(explanation.as_dict())
        return
    _render_explanation(explanation.as_dict())


def _render_explanation(item: dict[str, Any]) -> None:
    call = item["call"]
    out = output.out()
    from mtctl.domain.values import escape

    out.print(escape(f"Call {call['call_id']} from {call['caller'] or '?'} to {call['called']} "
                     f"at {call['started_at']} (node {call['node'] or '-'}): "
                     f"{call['summary']}"), markup=False)
    plan = item["plan"]
    if plan is not None:
        who = f" ({plan['user']}, {plan['mode']})" if plan["user"] else ""
        out.print(escape(f"Plan at that time{who}: {plan['outcome']}, caller sees "
                         f"\"{plan['display_name']}\""), markup=False)
    for note in item["notes"]:
        out.print(escape(note), markup=False)
    rows = []
    for p in item["phones"]:
        rows.append({
            "phone": f"{p['extension']}:{p['position']}", "model": p["model"],
            "planned": p["planned"], "what happened": p["verdict"],
            "evidence": "; ".join(_evidence(e) for e in p["evidence"]),
            "divergence": p["divergence"] or "",
        })
    out.print("")
    output.rows(rows, ["phone", "model", "planned", "what happened", "evidence",
                       "divergence"], as_json=False, empty="the plan names no phone")
    if item["divergences"]:
        output.warning(f"{len(item['divergences'])} divergence(s) between plan and reality: "
                       + "; ".join(item["divergences"]))
    else:
        output.note("no divergence: the proxy did what the plan says")


def _evidence(e: dict[str, Any]) -> str:
    ref = f"audit #{e['id']}" if e["kind"] == "audit" else e["kind"]
    if e["kind"] == "registration" and e["id"] is not None:
        ref = f"registration event #{e['id']}"
    when = f" at {e['at']}" if e["at"] else ""
    return f"{ref}{when}: {e['detail']}"


@calls_app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: Annotated[int | None, typer.Option(
        metavar="DAYS", help="Keep this many days (default: setting calls.retention_days).",
        parser=whole_number("--older-than", 1, 3_650))] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Say how many rows went.")] = False,
) -> None:
    """Delete call records and registration events older than the retention (for cron).

    Batches of one transaction each: safe to kill and to run twice at once. Silent on success.

    Example: mtctl calls prune      # from cron, daily
    """
    from mtctl.store.calls import prune_calls
    from mtctl.store.config import int_value

    total = 0
    with opened(ctx) as store:
        if older_than is None:
            with store.read() as conn:
                older_than = int_value(conn, "calls.retention_days")
        before_ms = epoch_ms(datetime.now(UTC) - timedelta(days=older_than))
        while True:
            with store.write() as conn:
                deleted = prune_calls(conn, before_ms=before_ms)
            total += deleted
            if not deleted:
                break
    if verbose:
        output.note(f"pruned {total} row(s) older than {older_than} days")


def register(app: typer.Typer) -> None:
    app.add_typer(calls_app, name="calls")
