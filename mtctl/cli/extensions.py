"""`mtctl ext`: dialable numbers."""

from typing import Annotated

import typer

from mtctl.cli import complete, output
from mtctl.cli.common import Number, reading, whole_number, writing
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt

ext_app = typer.Typer(help="Extensions: dialable numbers with up to eight phones.",
                      no_args_is_help=True)

NameOpt = Annotated[str | None, typer.Option("--name", metavar="DISPLAY",
                                             help="Display name shown to callers.")]
TimeoutOpt = Annotated[int | None, typer.Option(
    metavar="SECONDS", help="How long each ring stage lasts (1–600).",
    parser=whole_number("--ring-timeout", 1, 600, "use 1 to 600 seconds"))]
EXTENSIONS = output.Shape("extension", "Extension", columns=(
    "number", "node", "display_name", "owner", "ring_timeout", "phones"), empty="no extensions")


@ext_app.command("add")
def add(
    ctx: typer.Context,
    number: str,
    node: Annotated[str, typer.Option(help="The PBX node it lives on.",
                                            autocompletion=complete.nodes)],
    name: NameOpt = None,
    ring_timeout: TimeoutOpt = None,
) -> None:
    """Add an extension.

    Example: mtctl ext add 40710 --node madrid --name "Reception desk"
    """
    from mtctl.store import extensions

    with writing(ctx) as (conn, actor):
        extensions.add_extension(conn, actor=actor, number=number, node_name=node,
                                 display_name=name, ring_timeout=ring_timeout)
    output.note(f"added extension {number}")


@ext_app.command("list")
def list_(ctx: typer.Context,
          node: Annotated[str | None, typer.Option(
              help="Only this node's.", autocompletion=complete.nodes)] = None,
          fmt: FormatOpt = None, fields: FieldsOpt = None, as_json: JsonOpt = False) -> None:
    """List extensions.

    Example: mtctl ext list --node madrid --json
    """
    from mtctl.store import extensions

    with reading(ctx) as conn:
        items = extensions.list_extensions(conn, node_name=node)
    output.rows(items, EXTENSIONS, output.style(fmt, fields, as_json))


@ext_app.command("show")
def show(ctx: typer.Context, number: Number, fmt: FormatOpt = None, fields: FieldsOpt = None,
         as_json: JsonOpt = False) -> None:
    """Show one extension.

    Example: mtctl ext show 40710 --json
    """
    from mtctl.store import extensions

    with reading(ctx) as conn:
        item = extensions.get_extension(conn, number)
    output.record(item, EXTENSIONS, output.style(fmt, fields, as_json))


@ext_app.command("set")
def set_(
    ctx: typer.Context,
    number: Number,
    name: NameOpt = None,
    ring_timeout: TimeoutOpt = None,
    node: Annotated[str | None, typer.Option(
        help="Move it (and its phones) to this node.", autocompletion=complete.nodes)]
    = None,
) -> None:
    """Change an extension.

    Example: mtctl ext set 40710 --ring-timeout 30
    """
    from mtctl.domain.updates import ExtensionUpdate, clearable, option
    from mtctl.store import extensions

    change = ExtensionUpdate(display_name=clearable(name), ring_timeout=option(ring_timeout),
                             node=option(node))
    with writing(ctx) as (conn, actor):
        extensions.update_extension(conn, actor=actor, number=number, change=change)
    output.note(f"updated extension {number}")


@ext_app.command("rm")
def rm(ctx: typer.Context, number: Number) -> None:
    """Remove an extension and its phones (refused while a user logs in with it).

    Example: mtctl ext rm 40799
    """
    from mtctl.store import extensions

    with writing(ctx) as (conn, actor):
        extensions.remove_extension(conn, actor=actor, number=number)
    output.note(f"removed extension {number}")


def register(app: typer.Typer) -> None:
    app.add_typer(ext_app, name="ext")
