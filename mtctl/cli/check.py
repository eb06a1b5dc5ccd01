"""`mtctl check`: validate the whole store."""

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, cast

import typer

from mtctl.cli import output
from mtctl.cli.common import reading, whole_store
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt

if TYPE_CHECKING:
    from mtctl.shapes import CheckLine, CheckReport, Finding, Severity

FINDINGS = output.Shape("check-line", "CheckLine",
                        columns=("severity", "rule", "object", "message", "hint"),
                        empty="no problems found")
# A table shows the hint after the message, as errors do (`<what> — <how to fix>`): a fifth
# column would leave message and hint a dozen characters wide on an 80-column terminal.
TABLE = output.Shape("check-line", "CheckLine", columns=("severity", "rule", "object", "message"),
                     titles={"message": "message — hint"}, empty=FINDINGS.empty)


def check(ctx: typer.Context, fmt: FormatOpt = None, fields: FieldsOpt = None,
          as_json: JsonOpt = False) -> None:
    """Check every rule (MT001–MT016) over the whole store; exit 1 when any error is found.

    Findings go to stdout (one per row), the count of errors and warnings to stderr.

    Example: mtctl check --format json
    """
    from datetime import timedelta

    from mtctl.store import config
    from mtctl.store.audit import utcnow
    from mtctl.store.check import check_store

    how = output.style(fmt, fields, as_json)
    found: CheckReport = {"errors": [], "warnings": []}

    def findings() -> Iterator["CheckLine"]:
        with whole_store(), reading(ctx) as conn:
            within = timedelta(days=config.int_value(conn, "keys.rotate_within_days"))
            for severity, item in check_store(conn, now=utcnow(), rotate_within=within):
                finding: Finding = {"rule": item.rule, "object": item.object,
                                    "message": item.message, "hint": item.hint}
                found["errors" if severity == "error" else "warnings"].append(finding)
                yield {"severity": cast("Severity", severity), **finding}

    # JSON is one document, so every finding is read first; the other formats stream them.
    lines: Iterable[CheckLine] = (list(findings()) if how.format is output.Format.json
                                  else findings())
    output.report(found, lines, FINDINGS, how, lines="rows",
                  human=lambda: output.rows(map(_with_hint, lines), TABLE, how))
    errors, warnings = len(found["errors"]), len(found["warnings"])
    if how.format is not output.Format.json:
        output.note(f"{errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


def _with_hint(line: "CheckLine") -> "CheckLine":
    return {**line, "message": f"{line['message']} — {line['hint']}"} if line["hint"] else line


def register(app: typer.Typer) -> None:
    app.command("check")(check)
