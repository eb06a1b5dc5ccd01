"""`mtctl ring-sim`: who rings when a number is called, and why the others do not."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from mtctl.cli import output
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt


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
    number: Annotated[str, typer.Argument(
        metavar="NUMBER", help="The number called: a login number or an extension.")],
    webcall_running: Annotated[bool, typer.Option(
        "--webcall-running", help="The called user's Web Call is running.")] = False,
    webcall_ext: Annotated[str | None, typer.Option(
        metavar="NUMBER", help="Exclusive mode: the Web Call extension the user is logged "
        "into (default: the first of the user's list or group).")] = None,
    offline: Annotated[list[str] | None, typer.Option(
        metavar="EXT:POS", help="A phone that is not registered (repeat for more).")] = None,
    live: Annotated[bool, typer.Option(
        "--live", help="Take registered phones from Kamailio's registrations in the store "
        "and Web Call running from them and Web Call sessions (see: mtctl webcall).")] = False,
    fail_if_silent: Annotated[bool, typer.Option(
        "--fail-if-silent", help="Exit 1 when no phone would ring.")] = False,
    fmt: FormatOpt = None,
    fields: FieldsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show which phones ring, stage by stage, and why each other phone does not.

    Default: every phone registered, Web Call not running. Silent exits 0 (1 with --fail-if-silent).
    In plain, tsv and csv, one row per phone: its stage, or the reason it does not ring.

    Example: mtctl ring-sim 40710 --webcall-running --offline 40710:2
    """
    how = output.style(fmt, fields, as_json)
    if live:
        _ring_sim_live(ctx, number, fail_if_silent=fail_if_silent, how=how,
                       flags=bool(webcall_running or webcall_ext or offline))
        return
    from mtctl.cli.common import reading
    from mtctl.cli.render_ring import print_plan
    from mtctl.domain.ringing import Presence, ring_plan
    from mtctl.store.ring import check_presence, ring_sessions, ring_target

    presence = Presence(webcall_running=webcall_running, webcall_extension=webcall_ext,
                        offline=_parse_offline(offline or []))
    with reading(ctx) as conn:
        target = ring_target(conn, number)
        check_presence(conn, target, presence)
        # what-if: --webcall-running without --webcall-ext runs on the user's session, if any
        presence = dataclasses.replace(presence, sessions=ring_sessions(conn, target))
    plan = ring_plan(target, presence)
    print_plan(plan, how)
    if fail_if_silent and not plan.stages:
        output.error(f"a call to {number} rings no phone (--fail-if-silent)")
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


def register(app: typer.Typer) -> None:
    app.command("ring-sim")(ring_sim)
