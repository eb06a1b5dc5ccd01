"""The mtctl command: global options, command groups, and the one place errors become exit codes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mtctl import __version__
from mtctl.cli import audit as audit_cmd
from mtctl.cli import (
    catalog,
    check,
    config,
    db,
    extensions,
    keys,
    phones,
    provision,
    ringsim,
    users,
    webcall,
)
from mtctl.cli import config_file as config_file_cmd
from mtctl.cli.common import Globals
from mtctl.errors import MtctlError


class MtctlGroup(TyperGroup):
    """Maps every MtctlError to its message on stderr and its exit code (SPEC §6)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # `export kamailio` is its own command beside `export` (TOML): see mtctl/cli/kamailio.py.
        from mtctl.cli.kamailio import routed

        return routed(self, ctx, args) or super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        from mtctl.cli import output

        try:
            return super().invoke(ctx)
        except MtctlError as exc:
            output.error(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            output.error("interrupted — nothing of the current change was written")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=MtctlGroup,
    name="mtctl",
    help="Administer Multiterminal PBX extensions: phones, who rings, secure SIP keys.\n\n"
         "Example: mtctl --db sqlite:///pbx.db ext list",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mtctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db_url: Annotated[str | None, typer.Option(
        "--db", metavar="URL", envvar="MTCTL_DATABASE_URL", show_envvar=True,
        help="Store URL (default: a SQLite file in your data directory).")] = None,
    actor: Annotated[str | None, typer.Option(
        help="Name recorded in the audit trail (default: your OS user).")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    """Administer Multiterminal PBX extensions."""
    ctx.obj = Globals(db=db_url, actor=actor)


for sub in (db, config, catalog, extensions, users, phones, keys, provision, webcall):
    sub.register(app)
ringsim.register(app)
check.register(app)
audit_cmd.register(app)
config_file_cmd.register(app)


def main() -> None:
    """Console entry point."""
    app()
