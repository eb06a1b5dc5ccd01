"""`mtctl audit`: who changed what, and when."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from mtctl.cli import output
from mtctl.cli.common import reading, whole_number
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt


def _since(value: str | None) -> datetime | None:
    """Accept an ISO date/time (UTC unless it says otherwise) or a span such as 7d, 12h, 30m."""
    from mtctl.errors import UsageError

    if value is None:
        return None
    from mtctl.domain.values import parse_int

    units = {"d": ("days", 36_500), "h": ("hours", 876_000), "m": ("minutes", 52_560_000)}
    hint = "use 2026-11-01, 2026-11-01T08:00 or a span like 7d, 12h (up to 100 years)"
    if value[-1:] in units and value[:-1].isascii() and value[:-1].isdigit():
        unit, most = units[value[-1]]
        span = parse_int(value[:-1], what="--since", low=0, high=most, hint=hint)
        return datetime.now(UTC) - timedelta(**{unit: span})
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo:
            parsed.astimezone(UTC)  # an offset past year 1 or 9999 overflows here, not later
    except (ValueError, OverflowError):
        raise UsageError(f"--since {value[:80]!r} is not a time", hint) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _changes(changes: dict[str, list[object]]) -> str:
    """`order: 1 → 3; location: None → 'Home'` (a value added or removed shows alone)."""
    return "; ".join(f"{name}: {' → '.join(map(repr, values))}"
                     for name, values in changes.items())


AUDIT = output.Shape("audit", "AuditRecord", columns=("at", "actor", "action", "object", "changes"),
                     cells={"changes": _changes}, empty="no audit records")


def audit(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(metavar="WHEN",
                                              help="ISO time or span (7d, 12h, 30m).")] = None,
    obj: Annotated[str | None, typer.Option(
        "--object", metavar="OBJECT", help="e.g. 'phone 40710:1' or 'extension 40710'.")]
    = None,
    limit: Annotated[int | None, typer.Option(
        metavar="N", help="Only the N most recent records (still listed oldest first).",
        parser=whole_number("--limit", 1, 2**31 - 1))]
    = None,
    fmt: FormatOpt = None,
    fields: FieldsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the audit trail, oldest first.

    Example: mtctl audit --since 7d --object "phone 40710:1"
    """
    from mtctl.store.audit import OBJECT_MAX, list_audit

    if obj is not None:
        from mtctl.domain.values import check_text
        from mtctl.errors import UsageError

        check_text("--object", obj)
        if len(obj) > OBJECT_MAX:
            raise UsageError(f"--object is {len(obj)} characters long, more than {OBJECT_MAX}",
                             "name one object, e.g. 'phone 40710:1' or 'extension 40710'")

    with reading(ctx) as conn:
        items = list_audit(conn, since=_since(since), obj=obj, limit=limit)
    output.rows(items, AUDIT, output.style(fmt, fields, as_json))


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
