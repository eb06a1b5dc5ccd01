"""`mtctl check`: validate the whole store."""

from __future__ import annotations

import typer

from mtctl.cli import output
from mtctl.cli.common import JsonOpt, reading


def check(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check every rule (MT001–MT015) over the whole store; exit 1 when any error is found.

    Example: mtctl check --json
    """
    from datetime import timedelta

    from mtctl.store import config
    from mtctl.store.audit import utcnow
    from mtctl.store.check import check_store

    found: dict[str, list[dict[str, str]]] = {"errors": [], "warnings": []}
    with reading(ctx) as conn:
        within = timedelta(days=config.int_value(conn, "keys.rotate_within_days"))
        for severity, item in check_store(conn, now=utcnow(), rotate_within=within):
            found[severity + "s"].append(item.as_dict())
            if not as_json:
                line = f"{item.rule} {item.object} {item.message}"
                (output.error if severity == "error" else output.warning)(line)
    errors, warnings = len(found["errors"]), len(found["warnings"])
    if as_json:
        output.print_json(found)
    else:
        output.note(f"{errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
