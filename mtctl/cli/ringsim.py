"""`mtctl ring-sim`: who rings when a number is called, and why the others do not."""

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from mtctl.cli import complete, output
from mtctl.cli.output import FieldsOpt, Format, FormatOpt, JsonOpt

if TYPE_CHECKING:
    from mtctl.domain.ringing import RingPlan

ALL_FORMATS = (Format.ndjson, Format.plain, Format.tsv, Format.csv)  # those that stream


def _parse_offline(values: list[str]) -> frozenset[tuple[str, int]]:
    from mtctl.domain.values import parse_int
    from mtctl.errors import UsageError

    hint = "write EXT:POS, e.g. --offline 40710:2"
    parsed = set()
    for value in values:
        number, sep, pos = value.partition(":")
        if not sep or not number:
            raise UsageError(f"--offline {value[:80]!r} does not name a phone", hint)
        parsed.add((number, parse_int(pos, what="--offline position", low=0,
                                      high=2**31 - 1, hint=hint)))
    return frozenset(parsed)


def ring_sim(
    ctx: typer.Context,
    number: Annotated[str | None, typer.Argument(
        metavar="[NUMBER]", help="The number called: a login number or an extension.",
        show_default=False, autocompletion=complete.extensions)] = None,
    webcall_running: Annotated[bool, typer.Option(
        "--webcall-running", help="The called user's Web Call is running.")] = False,
    webcall_ext: Annotated[str | None, typer.Option(
        metavar="NUMBER", help="Exclusive mode: the Web Call extension the user is logged "
        "into, with --webcall-running (default: the extension of the user's Web Call session, "
        "else the first of the user's list or group that no other session holds).")] = None,
    offline: Annotated[list[str] | None, typer.Option(
        metavar="EXT:POS", help="A phone that is not registered (repeat for more).")] = None,
    live: Annotated[bool, typer.Option(
        "--live", help="Take registered phones from Kamailio's registrations in the store "
        "and Web Call running from them and Web Call sessions (see: mtctl webcall).")] = False,
    at: Annotated[str | None, typer.Option(
        "--at", metavar="TIME", help="Plan as of a past TIME (ISO, e.g. 2026-11-30T10:32Z, or "
        "a span back such as -15m): the store rebuilt from the audit trail, registrations "
        "from the recorded registration events, Web Call sessions as they were.")] = None,
    fail_if_silent: Annotated[bool, typer.Option(
        "--fail-if-silent", help="Exit 1 when no phone would ring.")] = False,
    fmt: FormatOpt = None,
    fields: FieldsOpt = None,
    as_json: JsonOpt = False,
    all_numbers: Annotated[bool, typer.Option(
        "--all", help="Every login number and plain extension, streamed: one plan per line "
        "(--format ndjson, the default here, each as --json prints it) or one row per phone "
        "(plain, tsv, csv).")] = False,
) -> None:
    """Show which phones ring, stage by stage, and why each other phone does not.

    Default: every phone registered, Web Call not running. Silent exits 0 (1 with
    --fail-if-silent). In plain, tsv and csv, one row per phone: its stage, or the reason it
    does not ring. With --all --fail-if-silent (for monitoring) every number is printed, then
    the exit code is 1 if any of them rings no phone.

    Example: mtctl ring-sim 40710 --webcall-running --offline 40710:2

    Example: mtctl ring-sim --all --fail-if-silent > plans.ndjson

    Example: mtctl ring-sim 40710 --at -15m     # as the store and registrations were then
    """
    if all_numbers:
        default = None if as_json else Format.ndjson  # --all streams, whatever stdout is
        _ring_sim_all(ctx, number, how=output.style(fmt or default, fields, as_json),
                      webcall_running=webcall_running, offline=offline or [],
                      fail_if_silent=fail_if_silent,
                      refused=[flag for flag, given in (("--webcall-ext", webcall_ext),
                                                       ("--live", live), ("--at", at))
                               if given])
        return
    how = output.style(fmt, fields, as_json)
    if number is None:
        from mtctl.errors import UsageError

        raise UsageError("no number to call", "give a NUMBER, or --all for every number")
    if at is not None:
        _ring_sim_at(ctx, number, at, fail_if_silent=fail_if_silent, how=how,
                     flags=bool(webcall_running or webcall_ext or offline or live))
        return
    if live:
        _ring_sim_live(ctx, number, fail_if_silent=fail_if_silent, how=how,
                       flags=bool(webcall_running or webcall_ext or offline))
        return
    from mtctl.cli.common import quick_reading
    from mtctl.domain.ringing import Presence, ring_plan, webcall_taken_by
    from mtctl.errors import Conflict, UsageError
    from mtctl.store.reader import check_presence, webcall_sessions

    if webcall_ext is not None and not webcall_running:
        raise UsageError(f"--webcall-ext {webcall_ext[:40]} says where Web Call runs, and "
                         "Web Call is not running", "add --webcall-running")
    presence = Presence(webcall_running=webcall_running, webcall_extension=webcall_ext,
                        offline=_parse_offline(offline or []))
    with quick_reading(ctx) as reader:
        target = reader.ring_target(number)
        check_presence(reader, target, presence)
        # what-if: --webcall-running without --webcall-ext runs on the user's session, if any,
        # else where nobody else's session is
        presence = dataclasses.replace(presence, sessions=webcall_sessions(reader, target))
    taken = webcall_taken_by(target, presence)
    if taken is not None and webcall_ext is not None:
        raise Conflict(f"{webcall_ext[:40]} is in use by {taken[1]}'s Web Call session, so "
                       "no other user's Web Call can run there", "name a free one with "
                       "--webcall-ext, or see: mtctl webcall list")
    if taken is not None:
        output.warning(f"every Web Call extension of {target.number} is in use by another "
                       f"session, so its Web Call cannot start; this plan assumes "
                       f"{taken[0]}, where {taken[1]}'s Web Call runs")
    plan = ring_plan(target, presence)
    if how.format is Format.json and how.fields is None:  # JSON needs neither Rich nor shapes
        output.print_json(plan.as_dict())
    else:
        from mtctl.cli.render_ring import print_plan

        print_plan(plan, how)
    if fail_if_silent and not plan.stages:
        output.error(f"a call to {number} rings no phone (--fail-if-silent)")
        raise typer.Exit(1)


def _ring_sim_all(ctx: typer.Context, number: str | None, *, how: output.Style,
                  webcall_running: bool, offline: list[str], fail_if_silent: bool,
                  refused: list[str]) -> None:
    from mtctl.cli.common import quick_reading, whole_store
    from mtctl.domain.ringing import Presence, ring_plan
    from mtctl.errors import NotFound, UsageError

    if number is not None:
        raise UsageError(f"--all plans every number; {number[:40]!r} is one too many",
                         "drop NUMBER, or drop --all")
    if refused:
        hints = {"--webcall-ext": "name the Web Call extension for one NUMBER instead",
                 "--live": "use --live with one NUMBER",
                 "--at": "use --at with one NUMBER (see: mtctl calls list)"}
        raise UsageError(f"--all cannot be combined with {refused[0]}", hints[refused[0]])
    if how.format not in ALL_FORMATS:
        raise UsageError(f"--all streams, and --format {how.format} prints a whole document",
                         "use --format ndjson (the default with --all), plain, tsv or csv")
    if how.format is Format.ndjson and how.fields is not None:
        raise UsageError("--fields picks columns, and --format ndjson prints whole plans",
                         "use --fields with --format plain, tsv or csv")
    presence = Presence(webcall_running=webcall_running, offline=_parse_offline(offline))
    counts = {"numbers": 0, "silent": 0}

    def counted(plans: Iterable["RingPlan"]) -> Iterator["RingPlan"]:
        for plan in plans:
            counts["numbers"] += 1
            counts["silent"] += not plan.stages
            yield plan

    with whole_store(), quick_reading(ctx) as reader:
        for phone_number, position in sorted(presence.offline):
            if not reader.phone_exists(phone_number, position):
                raise NotFound(f"--offline {phone_number}:{position}: no such phone",
                               f"see: mtctl phone list {phone_number}")
        presence = dataclasses.replace(presence, sessions=reader.sessions())
        plans = counted(ring_plan(target, presence) for target in reader.ring_targets())
        if how.format is Format.ndjson:
            from mtctl.cli.ring_json import print_plans

            print_plans(plans)
        else:
            from mtctl.cli.render_ring import RING_ROWS, plan_rows

            output.rows((row for plan in plans for row in plan_rows(plan)), RING_ROWS, how)
    if fail_if_silent and counts["silent"]:
        output.error(f"{counts['silent']} of {counts['numbers']} numbers ring no phone "
                     "(--fail-if-silent)")
        raise typer.Exit(1)


def _ring_sim_live(ctx: typer.Context, number: str, *, fail_if_silent: bool,
                   how: output.Style, flags: bool) -> None:
    from mtctl.cli.common import reading
    from mtctl.cli.render_ring import print_plan
    from mtctl.domain.presence import live_presence
    from mtctl.domain.ringing import ring_plan
    from mtctl.errors import UsageError
    from mtctl.store.live import live_registrations
    from mtctl.store.ring import ring_sessions, ring_target

    if flags:
        raise UsageError("--live takes who is online from the store",
                         "drop --webcall-running, --webcall-ext and --offline")
    with reading(ctx) as conn:
        target = ring_target(conn, number)
        registrations = live_registrations(conn)
        sessions = ring_sessions(conn, target)
    plan = ring_plan(target, live_presence(target, registrations, sessions))
    print_plan(plan, how, registrations=registrations, sessions=sessions)
    if fail_if_silent and not plan.stages:
        output.error(f"a call to {number} rings no phone (--fail-if-silent)")
        raise typer.Exit(1)


def _ring_sim_at(ctx: typer.Context, number: str, at: str, *, fail_if_silent: bool,
                 how: output.Style, flags: bool) -> None:
    from datetime import UTC, datetime

    from mtctl.cli.calls import epoch_ms, parse_when
    from mtctl.cli.common import reading
    from mtctl.cli.render_ring import print_plan
    from mtctl.errors import NotFound, UsageError
    from mtctl.store.calls import plan_at

    if flags:
        raise UsageError("--at takes who was online from the recorded registrations",
                         "drop --live, --webcall-running, --webcall-ext and --offline")
    when = parse_when(at, "--at")
    if when > datetime.now(UTC):
        raise UsageError(f"--at {when.isoformat(timespec='seconds')} is in the future: "
                         "nothing is recorded for it yet", "drop --at to plan for now")
    with reading(ctx) as conn:
        plan, _, sessions = plan_at(conn, number, epoch_ms(when))
    shown = when.isoformat(timespec="seconds")
    if plan is None:
        raise NotFound(f"nothing answered to {number!r} at {shown}",
                       f"see: mtctl audit --object 'extension {number}'")
    if how.format is output.Format.table:
        output.note(f"As of {shown} (store from the audit trail, registrations from the "
                    "recorded registration events):")
    print_plan(plan, how, sessions=sessions)
    if fail_if_silent and not plan.stages:
        output.error(f"a call to {number} at {shown} rang no phone (--fail-if-silent)")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("ring-sim")(ring_sim)
