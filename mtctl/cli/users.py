"""`mtctl user`: people, their login extension and their Web Call mode."""

import sys
from enum import StrEnum
from typing import Annotated

import typer

from mtctl.cli import complete, output
from mtctl.cli.common import Username, quick_reading, reading, whole_number, writing
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt

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
    "--webcall-ext", metavar="NUMBER", help="A Web Call extension (repeat for more).",
    autocompletion=complete.extensions)]
GroupOpt = Annotated[str | None, typer.Option(metavar="NAME",
                                              help="Web Call group (pool) to borrow from.")]
PositionOpt = Annotated[int | None, typer.Option(
    metavar="N", help="Position of the Web Call phone on the login extension (multiterminal).",
    parser=whole_number("--webcall-position", 0, 7, "use a position from 0 to 7"))]
USERS = output.Shape("user", "User", columns=(
    "username", "display_name", "login", "webcall_mode", "webcall_license",
    "webcall_extensions", "webcall_group", "webcall_position"), empty="no users")
USER_PHONES = output.Shape("user-phones", "UserPhone", columns=(
    "model", "extension", "location", "position", "order", "enabled", "provisionable"))


@user_app.command("add")
def add(
    ctx: typer.Context,
    username: str,
    name: Annotated[str, typer.Option("--name", metavar="DISPLAY", help="Display name.")],
    login: Annotated[str, typer.Option(metavar="NUMBER", autocompletion=complete.extensions,
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
def list_(ctx: typer.Context, fmt: FormatOpt = None, fields: FieldsOpt = None,
          as_json: JsonOpt = False) -> None:
    """List users.

    Example: mtctl user list --json
    """
    from mtctl.store import users

    with reading(ctx) as conn:
        items = users.list_users(conn)
    output.rows(items, USERS, output.style(fmt, fields, as_json))


@user_app.command("show")
def show(ctx: typer.Context, username: Username, fmt: FormatOpt = None, fields: FieldsOpt = None,
         as_json: JsonOpt = False) -> None:
    """Show one user.

    Example: mtctl user show ana
    """
    from mtctl.store import users

    with reading(ctx) as conn:
        item = users.get_user(conn, username)
    output.record(item, USERS, output.style(fmt, fields, as_json))


@user_app.command("set")
def set_(
    ctx: typer.Context,
    username: Username,
    name: Annotated[str | None, typer.Option("--name", metavar="DISPLAY")] = None,
    login: Annotated[str | None, typer.Option(metavar="NUMBER",
                                              autocompletion=complete.extensions)] = None,
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
    from mtctl.domain.updates import UNCHANGED, UserUpdate, clearable, option
    from mtctl.store import users

    change = UserUpdate(
        display_name=option(name), login=option(login),
        webcall_mode=None if no_webcall else option(webcall_mode and webcall_mode.value),
        webcall_license=option(webcall_license and webcall_license.value),
        webcall_group=clearable(webcall_group), webcall_position=option(webcall_position),
        webcall_extensions=UNCHANGED if webcall_ext is None
        else tuple(n for n in webcall_ext if n))
    with writing(ctx) as (conn, actor):
        users.update_user(conn, actor=actor, username=username, change=change)
    output.note(f"updated user {username}")


@user_app.command("rm")
def rm(ctx: typer.Context, username: Username) -> None:
    """Remove a user (its extensions and phones stay).

    Example: mtctl user rm ana
    """
    from mtctl.store import users

    with writing(ctx) as (conn, actor):
        users.remove_user(conn, actor=actor, username=username)
    output.note(f"removed user {username}")


@user_app.command("phones")
def phones(ctx: typer.Context, username: Username, fmt: FormatOpt = None, fields: FieldsOpt = None,
           as_json: JsonOpt = False) -> None:
    """The user-portal view of a user's phones.

    Shows model, extension, location, position, order, enabled and provisionable.

    Example: mtctl user phones ana
    """
    with quick_reading(ctx) as reader:
        items = reader.user_phones(username)
    output.rows(items, USER_PHONES, output.style(fmt, fields, as_json),
                empty=f"{username} has no phones")


@user_app.command("login-link")
def login_link(
    ctx: typer.Context,
    username: Username,
    qr: Annotated[bool, typer.Option("--qr", help="Also show the link as a QR code.")] = False,
) -> None:
    """Print a one-time link that logs USERNAME into the user portal (mtctl serve's /portal/).

    The link is the secret: it is shown only here, stored only as a hash, works once, and
    expires after portal.link_ttl_minutes (15). Needs the setting portal.base_url.

    Example: mtctl user login-link ana --qr
    """
    from mtctl.store import portal
    from mtctl.store.audit import utcnow

    with writing(ctx) as (conn, actor):
        link = portal.issue_link(conn, actor=actor, username=username, now=utcnow())
    if qr:
        import segno

        segno.make(link.url, error="m").terminal(out=sys.stdout, compact=True, border=2)
    sys.stdout.write(link.url + "\n")
    output.note(f"login link for {username}: works once, until "
                f"{link.expires_at:%Y-%m-%d %H:%M} UTC")


@user_app.command("logout-all")
def logout_all(ctx: typer.Context, username: Username) -> None:
    """End every portal session of USERNAME and revoke its unused login links.

    Example: mtctl user logout-all ana
    """
    from mtctl.store import portal

    with writing(ctx) as (conn, actor):
        sessions, links = portal.logout_all(conn, actor=actor, username=username)
    output.note(f"{username}: ended {sessions} portal session(s), revoked {links} login "
                "link(s)")


@user_app.command("set-portal-password")
def set_portal_password(
    ctx: typer.Context,
    username: Username,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
    remove: Annotated[bool, typer.Option(
        "--remove", help="Remove the password: only login links work then.")] = False,
) -> None:
    """Let USERNAME log into the portal with a password too (read from a prompt or stdin, never
    argv; kept as an argon2 hash).

    Example: printf '%s\\n' "$PW" | mtctl user set-portal-password ana --password-stdin
    """
    from mtctl.errors import UsageError
    from mtctl.store import portal
    from mtctl.store.audit import utcnow

    if remove:
        password = ""
    elif password_stdin:
        password = sys.stdin.readline(portal.MAX_PASSWORD + 2).rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Portal password", hide_input=True, confirmation_prompt=True)
    else:
        raise UsageError("no terminal to ask for the password",
                         "pipe it in with --password-stdin")
    if not remove and not password:
        raise UsageError("the password is empty", "to remove it use --remove")
    with writing(ctx) as (conn, actor):
        portal.set_password(conn, actor=actor, username=username, password=password,
                            now=utcnow())
    output.note(f"{'removed' if remove else 'set'} the portal password of {username}")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
