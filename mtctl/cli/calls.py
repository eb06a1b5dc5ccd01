"""`mtctl calls`: the calls the proxy routed, and each one next to what SPEC §3 planned."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from mtctl.cli import output
from mtctl.cli.common import JsonOpt, opened, reading, whole_number
from mtctl.cli.output import FieldsOpt, FormatOpt

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


# The single-proxy export (no --node) serves every node and records its calls with node ''
# (the schemas' contract); people read who routed them.
SINGLE_PROXY = "single proxy"
ROUTED_BY = {"node": lambda node: node or SINGLE_PROXY}
CALLS = output.Shape("call", "Call", columns=("started_at", "call_id", "caller", "called", "node",
                                            "summary"), titles={"summary": "outcome"},
                     cells=ROUTED_BY, empty="no calls")
CALL = output.Shape("call", "Call", cells=ROUTED_BY)  # `calls show`: outcome and summary by name
BRANCHES = output.Shape("call-branch", "CallBranch", columns=(
    "stage", "order", "extension", "position", "invited_at", "ended_at", "final_code",
    "final_reason", "answered"), empty="no branch was sent")
VERDICTS = output.Shape("call-verdict", "VerdictRow", columns=(
    "extension", "position", "model", "planned", "verdict", "evidence", "divergence"),
    titles={"verdict": "what happened"}, empty="the plan names no phone")

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
    fmt: FormatOpt = None,
    fields: FieldsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the calls the proxy routed, newest first, with their outcome.

    Example: mtctl calls list 40710 --since 2h
    """
    from mtctl.store.calls import list_calls as query

    how = output.style(fmt, fields, as_json)
    since_ms = epoch_ms(parse_when(since, "--since"))
    with reading(ctx) as conn:
        found = query(conn, number=number, since_ms=since_ms, limit=limit)
    output.rows([c.as_dict() for c in found], CALLS, how)


@calls_app.command("show")
def show_call(ctx: typer.Context, call_id: CALL_ID, fmt: FormatOpt = None,
              fields: FieldsOpt = None, as_json: JsonOpt = False) -> None:
    """Show one call and every branch the proxy sent (stage, phone, response).

    In plain, tsv and csv, one row per branch.

    Example: mtctl calls show 3c2a9f@10.0.0.5 --json
    """
    from mtctl.store.calls import get_call

    how = output.style(fmt, fields, as_json)
    with reading(ctx) as conn:
        call = get_call(conn, call_id)
    item = call.as_dict(branches=True)
    branches = [{"call_id": call.call_id, **b} for b in item["branches"]]
    output.report(item, branches, BRANCHES, how, human=lambda: _render_call(item, branches))


def _render_call(item: dict[str, Any], branches: list[dict[str, Any]]) -> None:
    answered = item["answered_by"]
    head = {k: v for k, v in item.items() if k != "branches"}
    head["answered_by"] = f"{answered['extension']}:{answered['position']}" if answered else None
    output.record(head, CALL, output.Style(output.Format.table))
    output.out().print("")
    output.rows(branches, BRANCHES, output.Style(output.Format.table))


@calls_app.command("explain")
def explain_call(ctx: typer.Context, call_id: CALL_ID, fmt: FormatOpt = None,
                 fields: FieldsOpt = None, as_json: JsonOpt = False) -> None:
    """Explain a past call phone by phone: planned, what happened, evidence, divergences.

    The plan is SPEC §3's with the store and the registrations as they were at the call's
    time; a difference between plan and reality is flagged as a divergence.

    Example: mtctl calls explain 3c2a9f@10.0.0.5
    """
    from mtctl.store.calls import explain_call as explain

    how = output.style(fmt, fields, as_json)
    with reading(ctx) as conn:
        explanation = explain(conn, call_id)
    item = explanation.as_dict()
    rows = [{"call_id": call_id, **p, "evidence": "; ".join(_evidence(e) for e in p["evidence"])}
            for p in item["phones"]]
    output.report(item, rows, VERDICTS, how, human=lambda: _render_explanation(item, rows))
    if item["divergences"] and how.format is not output.Format.table:
        output.warning(f"{len(item['divergences'])} divergence(s) between plan and reality")


def _render_explanation(item: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    call = item["call"]
    out = output.out()
    from mtctl.domain.values import escape

    out.print(escape(f"Call {call['call_id']} from {call['caller'] or '?'} to {call['called']} "
                     f"at {call['started_at']} "
                     f"({'node ' + call['node'] if call['node'] else SINGLE_PROXY}): "
                     f"{call['summary']}"), markup=False)
    plan = item["plan"]
    if plan is not None:
        who = f" ({plan['user']}, {plan['mode']})" if plan["user"] else ""
        out.print(escape(f"Plan at that time{who}: {plan['outcome']}, caller sees "
                         f"\"{plan['display_name']}\""), markup=False)
    for note in item["notes"]:
        out.print(escape(note), markup=False)
    out.print("")
    output.rows(rows, VERDICTS, output.Style(output.Format.table))
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
