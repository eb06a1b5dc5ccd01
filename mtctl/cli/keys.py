"""`mtctl keys`: list keys and rotate the due ones (for cron)."""

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mtctl.cli import output
from mtctl.cli.common import INT_MAX, JsonOpt, globals_of, opened, reading, whole_number
from mtctl.cli.output import FieldsOpt, FormatOpt

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from rich.progress import Progress, TaskID

    from mtctl.shapes import DueKey
    from mtctl.store.keys import RotationReport

DAYS_MAX = 36_500  # a hundred years: keys live at most that long
DAYS_HINT = f"use a number of days from 0 to {DAYS_MAX}"
keys_app = typer.Typer(help="SIP keys of secure phones: list and rotate.", no_args_is_help=True)
KEYS = output.Shape("keys-list", "Key", columns=(
    "extension", "position", "model", "sip_auth_user", "key_expires_at", "state"),
    empty="no keys")
DUE = output.Shape("keys-due", "DueKey", empty="no key is due")  # --dry-run's rows


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    expiring_within: Annotated[int | None, typer.Option(
        metavar="DAYS", help="Only keys that expire within DAYS, or have expired, are "
        "missing or were never fetched by their desk phone.",
        parser=whole_number("--expiring-within", 0, DAYS_MAX, DAYS_HINT))] = None,
    fmt: FormatOpt = None,
    fields: FieldsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List phones with keys, soonest expiry first (never a digest).

    Example: mtctl keys list --expiring-within 14 --json
    """
    from datetime import timedelta

    from mtctl.store import config
    from mtctl.store.audit import utcnow
    from mtctl.store.keys import list_keys

    with reading(ctx) as conn:
        within = timedelta(days=config.int_value(conn, "keys.rotate_within_days"))
        items = list_keys(conn, now=utcnow(), within=within,
                          expiring_within=None if expiring_within is None
                          else timedelta(days=expiring_within))
    output.rows(items, KEYS, output.style(fmt, fields, as_json))


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    within: Annotated[int | None, typer.Option(
        metavar="DAYS", help="Rotate keys expiring within DAYS (default: setting "
        "keys.rotate_within_days, 7).",
        parser=whole_number("--within", 0, DAYS_MAX, DAYS_HINT))] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Change nothing: list the due phones on stdout, the count on "
        "stderr.")] = False,
    limit: Annotated[int | None, typer.Option(metavar="N", help="Rotate at most N keys.",
                                              parser=whole_number("--limit", 1, INT_MAX))]
    = None,
    batch_size: Annotated[int, typer.Option(
        metavar="N", help="Keys per committed transaction.",
        parser=whole_number("--batch-size", 1, 100_000))] = 1000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Say what was rotated.")] = False,
    fmt: FormatOpt = None,
    fields: FieldsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace secure keys that expire soon or have expired. Silent on success; for cron.

    Desk phones provisioned by MAC (cisco-mpp, yealink) get a fresh key at every fetch of their
    file: their due keys are only marked, and their next fetch replaces them.

    --dry-run lists the due phones on stdout (renewal `rotate`, or `on-fetch` for desk phones)
    in the --format asked for, and the count on stderr; --verbose says on stderr what a
    rotation did. --json (--format json) prints the whole report instead, dry run or not.

    Example: mtctl keys rotate --within 7
    """
    from datetime import timedelta

    from mtctl.errors import UsageError
    from mtctl.store import config
    from mtctl.store.devices import mark_due_keys
    from mtctl.store.keys import rotate_due_keys

    how = output.style(fmt, fields, as_json)
    as_json = how.format == output.Format.json
    if (within is not None and within < 0) or (limit is not None and limit <= 0) \
            or batch_size <= 0:
        raise UsageError("--within, --limit and --batch-size must be positive",
                         "e.g. --within 7 --limit 500")
    with opened(ctx) as store:  # one transaction per batch: rotation commits as it goes
        if within is None:
            with store.read() as conn:
                within = config.int_value(conn, "keys.rotate_within_days")
        with _progress() as advance:
            report = rotate_due_keys(store, actor=globals_of(ctx).who, now=_clock(),
                                     within=timedelta(days=within), limit=limit,
                                     dry_run=dry_run, batch_size=batch_size,
                                     collect=as_json or verbose or dry_run,
                                     progress=advance)
            marked = mark_due_keys(store, actor=globals_of(ctx).who, now=_clock()(),
                                   within=timedelta(days=within), dry_run=dry_run)
    if as_json:
        output.print_json(report.as_dict() | {"marked": marked})
    elif dry_run or verbose:
        _tell(report, marked, dry_run=dry_run, how=how)
    for failure in report.failed:
        where = (f"phone {failure['extension']}:{failure['position']}"
                 if failure["extension"] else "a batch")
        output.error(f"rotating {where} failed: {failure['error']}")
    if report.failed:
        raise typer.Exit(1)


def _tell(report: "RotationReport", marked: "list[dict[str, Any]]", *, dry_run: bool,
          how: output.Style) -> None:
    """Without --json: a dry run's due phones on stdout (the data asked for), and on stderr the
    counts and what a --verbose rotation did."""
    if dry_run:
        output.rows(_due(report.rotated, marked), DUE, how)
        output.note(f"{report.count} key(s) due, {len(report.failed)} failed")
        if marked:
            output.note(f"{len(marked)} desk phone key(s) due on fetch: the next fetch brings "
                        "a new key")
    else:
        for item in report.rotated:
            output.note(f"rotated: phone {item['extension']}:{item['position']}")
        output.note(f"{report.count} key(s) rotated, {len(report.failed)} failed")
        for item in marked:
            output.note(f"marked due: phone {item['extension']}:{item['position']} (its next "
                        "fetch brings a new key)")
    if report.waiting:
        output.note(f"{report.waiting} due key(s) wait for their previous key's grace period to "
                    "end, so that no device is locked out")


def _due(rotated: "list[dict[str, Any]]", marked: "list[dict[str, Any]]") -> "list[DueKey]":
    """The due phones of a dry run, by extension and position."""
    rows: list[DueKey] = [{"extension": item["extension"], "position": item["position"],
                           "renewal": "rotate"} for item in rotated]
    rows += [{"extension": item["extension"], "position": item["position"],
              "renewal": "on-fetch"} for item in marked]
    return sorted(rows, key=lambda row: (row["extension"], row["position"]))


TEST_CLOCK = "MTCTL_TEST_NOW"


def _clock() -> "Callable[[], datetime]":
    """Rotation's clock: UTC now, or for tests only the fixed time in $MTCTL_TEST_NOW."""
    import os

    from mtctl.store.audit import utcnow

    pinned = os.environ.get(TEST_CLOCK)
    if not pinned:
        return utcnow
    from datetime import datetime

    from mtctl.errors import UsageError

    try:
        at = datetime.fromisoformat(pinned)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise UsageError(f"{TEST_CLOCK} is not an ISO 8601 time with a UTC offset",
                         f"unset {TEST_CLOCK}: it is for tests only")
    return lambda: at


class _progress:
    """A Rich progress bar on a terminal; nothing at all otherwise."""

    bar: "Progress | None"
    task: "TaskID"

    def __enter__(self) -> "Callable[[int], None]":
        self.bar = None
        if sys.stderr.isatty():
            from rich.progress import Progress

            self.bar = Progress(console=output.err(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("rotating keys", total=None)
        return self._advance

    def _advance(self, count: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, count)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
