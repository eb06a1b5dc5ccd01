"""`mtctl webcall`: Web Call sessions, the record of who is logged into which Web Call extension."""

from typing import Annotated

import typer

from mtctl.cli import complete, output
from mtctl.cli.common import JsonOpt, reading, writing
from mtctl.cli.output import FieldsOpt, FormatOpt

webcall_app = typer.Typer(help="Web Call sessions: which user's Web Call runs on which "
                          "extension (who rings on pool extensions).", no_args_is_help=True)
User = Annotated[str, typer.Argument(metavar="USER", autocompletion=complete.usernames)]
SESSIONS = output.Shape("webcall-session", "WebcallSession", columns=("user", "extension", "since"),
                         empty="no Web Call sessions")


@webcall_app.command("start")
def start(
    ctx: typer.Context,
    username: User,
    ext: Annotated[str | None, typer.Option(
        "--ext", metavar="NUMBER", autocompletion=complete.extensions,
        help="The Web Call extension (default: the user's only own "
        "one, the login extension in multiterminal mode, or the first free one of the "
        "user's group).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a user's Web Call session: calls to the user ring that Web Call while its phone is
    registered. At most one session per user and per extension (exit 4).

    Example: mtctl webcall start ana --ext 901
    """
    from mtctl.store.audit import utcnow
    from mtctl.store.webcall import start_session

    with writing(ctx) as (conn, actor):
        session = start_session(conn, actor=actor, username=username, number=ext,
                                now=utcnow())
    if as_json:
        output.print_json(session)
    else:
        output.note(f"started {username}'s Web Call session on {session['extension']}")


@webcall_app.command("stop")
def stop(ctx: typer.Context, username: User) -> None:
    """Close a user's Web Call session.

    Example: mtctl webcall stop ana
    """
    from mtctl.store.webcall import stop_session

    with writing(ctx) as (conn, actor):
        session = stop_session(conn, actor=actor, username=username)
    output.note(f"stopped {username}'s Web Call session on {session['extension']}")


@webcall_app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, fields: FieldsOpt = None,
          as_json: JsonOpt = False) -> None:
    """List open Web Call sessions.

    Example: mtctl webcall list --json
    """
    from mtctl.store.webcall import list_sessions

    with reading(ctx) as conn:
        items = list_sessions(conn)
    output.rows(items, SESSIONS, output.style(fmt, fields, as_json))


def register(app: typer.Typer) -> None:
    app.add_typer(webcall_app, name="webcall")
