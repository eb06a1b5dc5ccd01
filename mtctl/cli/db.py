"""`mtctl db`: create or migrate the store."""

import typer

from mtctl.cli import output
from mtctl.cli.common import globals_of

db_app = typer.Typer(help="Create or migrate the store.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create the store, or migrate it to this mtctl's schema. Safe to run again.

    Example: mtctl --db sqlite:///pbx.db db upgrade
    """
    from mtctl.store.db import upgrade_store

    before, after = upgrade_store(globals_of(ctx).url)
    if before == after:
        output.note(f"store is up to date (schema {after})")
    elif before is None:
        output.note(f"created store (schema {after})")
    else:
        output.note(f"migrated store from schema {before} to {after}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
