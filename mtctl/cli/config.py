"""`mtctl config`: settings kept in the store (sip.domain, provisioning.base_url, ...)."""

from typing import Annotated

import typer

from mtctl.cli import output
from mtctl.cli.common import reading, stdin_secret, writing
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt

config_app = typer.Typer(help="Settings kept in the store.", no_args_is_help=True)
SETTINGS = output.Shape("setting", "Setting", columns=("key", "value", "help"))


@config_app.command("set")
def set_(ctx: typer.Context, key: str, value: str) -> None:
    """Set a setting; unknown keys and bad values are refused.

    Example: mtctl config set sip.domain pbx.example.com
    """
    from mtctl.store import config

    with writing(ctx) as (conn, actor):
        clean = config.set_value(conn, actor=actor, name=key, value=value)
    output.note(f"{key} = {clean}")


@config_app.command("set-secret")
def set_secret(
    ctx: typer.Context,
    key: str,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the secret from standard input.")] = False,
) -> None:
    """Set a secret (provisioning.device_password), read from a hidden prompt or stdin, never
    from the command line; only its passlib argon2 hash is kept.

    Example: mtctl config set-secret provisioning.device_password --password-stdin < pw.txt
    """
    import sys

    from mtctl.errors import UsageError
    from mtctl.store import devices
    from mtctl.store.audit import utcnow

    if key not in devices.SECRETS:
        raise UsageError(f"unknown secret {key[:64]!r}",
                         "known secrets: " + ", ".join(devices.SECRETS))
    if password_stdin:
        value = stdin_secret("secret", devices.MAX_SECRET)
    elif sys.stdin.isatty():
        value = typer.prompt(key, hide_input=True, confirmation_prompt=True)
    else:
        raise UsageError("no terminal to ask for the secret", "pipe it in with --password-stdin")
    with writing(ctx) as (conn, actor):
        devices.set_secret(conn, actor=actor, name=key, value=value, now=utcnow())
    output.note(f"set {key} (kept as a hash)")


@config_app.command("unset")
def unset(ctx: typer.Context, key: str) -> None:
    """Remove a setting, so its default applies again.

    Example: mtctl config unset sip.proxy
    """
    from mtctl.store import config

    with writing(ctx) as (conn, actor):
        config.unset_value(conn, actor=actor, name=key)


@config_app.command("get")
def get(ctx: typer.Context, key: str) -> None:
    """Print one setting's value (exit 3 when it has none).

    Example: mtctl config get sip.domain
    """
    from mtctl.errors import NotFound
    from mtctl.store import config

    with reading(ctx) as conn:
        value = config.get_value(conn, key)
    if value is None:
        raise NotFound(f"{key} is not set", f"run: mtctl config set {key} VALUE")
    from mtctl.domain.values import escape

    typer.echo(escape(value))


@config_app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, fields: FieldsOpt = None,
          as_json: JsonOpt = False) -> None:
    """List every setting with its value and what it is for.

    Example: mtctl config list --json
    """
    from mtctl.store import config

    with reading(ctx) as conn:
        items = config.list_values(conn)
    output.rows(items, SETTINGS, output.style(fmt, fields, as_json))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
