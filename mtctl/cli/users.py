"""`mtctl user`: people, their login extension and their Web Call mode."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from mtctl.cli import output
from mtctl.cli.common import JsonOpt, reading, whole_number, writing

user_app = typer.Typer(help="Users: owners of extensions, with their Web Call mode.",
                       no_args_is_help=True)


class Mode(StrEnum):
    exclusive = "exclusive"
    multiterminal = "multiterminal"


class License(StrEnum):
    dedicated = "dedicated"
    pool = "pool"


ModeOpt = Annotated[Mode | None, typer.Option(
    help="exclusive: only Web Call rings while it runs; multiterminal: Web Call is one more "
         "phone.")]
LicenseOpt = Annotated[License | None, typer.Option(
    help="dedicated, or pool (a pool user cannot be multiterminal).")]
ExtsOpt = Annotated[list[str] | None, typer.Option(
    "--webcall-ext", metavar="NUMBER", help="A Web Call extension (repeat for more).")]
GroupOpt = Annotated[str | None, typer.Option(metavar="NAME",
                                              help="Web Call group (pool) to borrow from.")]
PositionOpt = Annotated[int | None, typer.Option(
    metavar="N", help="Position of the Web Call phone on the login extension (multiterminal).",
    parser=whole_number("--webcall-position", 0, 7, "use a position from 0 to 7"))]
COLUMNS = ["username", "display_name", "login", "webcall_mode", "webcall_license",
           "webcall_extensions", "webcall_group", "webcall_position"]


@user_app.command("add")
def add(
    ctx: typer.Context,
    username: str,
    name: Annotated[str, typer.Option("--name", metavar="DISPLAY", help="Display name.")],
    login: Annotated[str, typer.Option(metavar="NUMBER",
                                       help="Login extension; the user becomes its owner.")],
    webcall_mode: ModeOpt = None,
    webcall_license: LicenseOpt = None,
    webcall_ext: ExtsOpt = None,
    webcall_group: GroupOpt = None,
    webcall_position: PositionOpt = None,
) -> None:
    """Add a user, owner of its login extension. Without --webcall-mode it has no Web Call.

    Example: mtctl user add bo --name Bo --login 40710 --webcall-mode exclusive --webcall-ext 40711
    """
    from mtctl.store import users

    with writing(ctx) as (conn, actor):
        users.add_user(conn, actor=actor, username=username, display_name=name, login=login,
                       webcall_mode=webcall_mode.value if webcall_mode else None,
                       webcall_license=webcall_license.value if webcall_license else None,
                       webcall_extensions=webcall_ext, webcall_group=webcall_group,
                       webcall_position=webcall_position)
    output.note(f"added user {username}")


@user_app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users.

    Example: mtctl user list --json
    """
    from mtctl.store import users

    with reading(ctx) as conn:
        items = users.list_users(conn)
    output.rows(items, COLUMNS, as_json=as_json, empty="no users")


@user_app.command("show")
def show(ctx: typer.Context, username: str, as_json: JsonOpt = False) -> None:
    """Show one user.

    Example: mtctl user show ana
    """
    from mtctl.store import users

    with reading(ctx) as conn:
        item = users.get_user(conn, username)
    output.record(item, as_json=as_json)


@user_app.command("set")
def set_(
    ctx: typer.Context,
    username: str,
    name: Annotated[str | None, typer.Option("--name", metavar="DISPLAY")] = None,
    login: Annotated[str | None, typer.Option(metavar="NUMBER")] = None,
    webcall_mode: ModeOpt = None,
    no_webcall: Annotated[bool, typer.Option("--no-webcall",
                                             help="Remove the user's Web Call.")] = False,
    webcall_license: LicenseOpt = None,
    webcall_ext: Annotated[list[str] | None, typer.Option(
        "--webcall-ext", metavar="NUMBER",
        help="Replace the Web Call extensions (repeat; '' clears).")] = None,
    webcall_group: Annotated[str | None, typer.Option(
        metavar="NAME", help="Web Call group ('' clears).")] = None,
    webcall_position: PositionOpt = None,
) -> None:
    """Change a user.

    Example: mtctl user set ana --webcall-mode exclusive --webcall-ext 40790
    """
    from mtctl.store import users

    changes: dict[str, Any] = {}
    if no_webcall:
        changes["webcall_mode"] = None
    elif webcall_mode is not None:
        changes["webcall_mode"] = webcall_mode.value
    if webcall_license is not None:
        changes["webcall_license"] = webcall_license.value
    if webcall_group is not None:
        changes["webcall_group"] = webcall_group or None
    if webcall_position is not None:
        changes["webcall_position"] = webcall_position
    if webcall_ext is not None:
        changes["webcall_extensions"] = [n for n in webcall_ext if n]
    with writing(ctx) as (conn, actor):
        users.update_user(conn, actor=actor, username=username, display_name=name, login=login,
                          **changes)
    output.note(f"updated user {username}")


@user_app.command("rm")
def rm(ctx: typer.Context, username: str) -> None:
    """Remove a user (its extensions and phones stay).

    Example: mtctl user rm ana
    """
    from mtctl.store import users

    with writing(ctx) as (conn, actor):
        users.remove_user(conn, actor=actor, username=username)
    output.note(f"removed user {username}")


@user_app.command("phones")
def phones(ctx: typer.Context, username: str, as_json: JsonOpt = False) -> None:
    """The user-portal view of a user's phones.

    Shows model, extension, location, position, order, enabled and provisionable.

    Example: mtctl user phones ana
    """
    from mtctl.store import users

    with reading(ctx) as conn:
        items = users.user_phones(conn, username)
    output.rows(items, ["model", "extension", "location", "position", "order", "enabled",
                        "provisionable"], as_json=as_json, empty=f"{username} has no phones")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
