"""`mtctl phone`: the devices of an extension."""

import sys
from typing import Annotated

import typer

from mtctl.cli import complete, output
from mtctl.cli.common import (
    position_arg,
    quick_reading,
    reading,
    stdin_secret,
    whole_number,
    writing,
)
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt

# An admin-chosen SIP password: typed into a phone's web page, so long enough, and bounded.
MIN_PASSWORD, MAX_PASSWORD = 8, 128

phone_app = typer.Typer(help="Phones: up to eight devices per extension.", no_args_is_help=True)

Ext = Annotated[str, typer.Argument(metavar="EXT", help="Extension number.",
                                    autocompletion=complete.extensions)]
Pos = Annotated[int, position_arg()]
POS_HINT = "use a position from 0 to 7"
ORDER_HINT = "use an order of 0 (never rings) or more"
PHONES = output.Shape("phone", "Phone", columns=(
    "extension", "position", "order", "enabled", "model", "template", "category", "location",
    "secure", "publishable", "key_expires_at"), empty="no phones")
PHONE_SHOWN = output.Shape("phone-show", "PhoneShown", columns=PHONES.columns)


@phone_app.command("add")
def add(
    ctx: typer.Context,
    ext: Ext,
    position: Annotated[int, typer.Option(metavar="N", help="Position 0–7 (Cisco: 0).",
                                          parser=whole_number("--position", hint=POS_HINT))],
    model: Annotated[str, typer.Option(metavar="MODEL", help="Model name (mtctl model list).")],
    order: Annotated[int, typer.Option(metavar="N", help="Ring order; 0 never rings.",
                                       parser=whole_number("--order", hint=ORDER_HINT))] = 1,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it disabled.")] = False,
    secure: Annotated[bool, typer.Option("--secure",
                                         help="System-generated key with an expiry.")] = False,
    publishable: Annotated[bool, typer.Option(
        "--publishable", help="May register from the internet (must be secure).")] = False,
    template: Annotated[str | None, typer.Option(
        metavar="T", help="Template (default: webfon for Web Call, else default).")] = None,
    category: Annotated[str | None, typer.Option(metavar="C")] = None,
    location: Annotated[str | None, typer.Option(metavar="L")] = None,
    node: Annotated[str | None, typer.Option(
        metavar="NODE", help="Must be the extension's node (the default).",
        autocompletion=complete.nodes)] = None,
    mac: Annotated[str | None, typer.Option(
        metavar="MAC", help="A desk phone's MAC (00:1a:2b:3c:4d:5e or any usual spelling), "
                            "for provisioning by MAC.")] = None,
) -> None:
    """Add a phone to an extension; a secure phone gets a key nobody knows.

    Example: mtctl phone add 40710 --position 0 --model "Cisco 8841" --location Madrid
    """
    from mtctl.store import phones

    with writing(ctx) as (conn, actor):
        phones.add_phone(conn, actor=actor, number=ext, position=position, model=model,
                         order=order, enabled=not disabled, secure=secure,
                         publishable=publishable, template_name=template,
                         category_name=category, location=location, node_name=node, mac=mac)
    output.note(f"added phone {ext}:{position}")


@phone_app.command("list")
def list_(ctx: typer.Context,
          ext: Annotated[str | None, typer.Argument(
              metavar="[EXT]", autocompletion=complete.extensions)] = None,
          fmt: FormatOpt = None, fields: FieldsOpt = None, as_json: JsonOpt = False) -> None:
    """List the phones of one extension, or of all.

    Example: mtctl phone list 40710 --json
    """
    with quick_reading(ctx) as reader:
        items = reader.list_phones(ext)
    output.rows(items, PHONES, output.style(fmt, fields, as_json))


@phone_app.command("show")
def show(ctx: typer.Context, ext: Ext, pos: Pos, fmt: FormatOpt = None,
         fields: FieldsOpt = None, as_json: JsonOpt = False) -> None:
    """Show one phone (for a desk phone: its MAC, and when and to which address its file last
    carried a fresh key).

    Example: mtctl phone show 40710 0
    """
    from mtctl.store import phones

    with reading(ctx) as conn:
        item = phones.show_phone(conn, ext, pos)
    output.record(item, PHONE_SHOWN, output.style(fmt, fields, as_json))


@phone_app.command("set")
def set_(
    ctx: typer.Context,
    ext: Ext,
    pos: Pos,
    position: Annotated[int | None, typer.Option(metavar="N", help="Move to this position.",
                                                 parser=whole_number("--position", hint=POS_HINT))]
    = None,
    order: Annotated[int | None, typer.Option(
        metavar="N", parser=whole_number("--order", hint=ORDER_HINT))] = None,
    model: Annotated[str | None, typer.Option(metavar="MODEL")] = None,
    template: Annotated[str | None, typer.Option(metavar="T")] = None,
    category: Annotated[str | None, typer.Option(metavar="C", help="'' clears.")] = None,
    location: Annotated[str | None, typer.Option(metavar="L", help="'' clears.")] = None,
    secure: Annotated[bool | None, typer.Option(
        "--secure/--not-secure", help="Secure phones get a system key; others lose it.")]
    = None,
    publishable: Annotated[bool | None, typer.Option("--publishable/--not-publishable")] = None,
    mac: Annotated[str | None, typer.Option(
        metavar="MAC", help="A desk phone's MAC, any usual spelling; '' clears.")] = None,
) -> None:
    """Change a phone.

    Example: mtctl phone set 40710 2 --order 3 --location "Home office"
    """
    from mtctl.domain.updates import PhoneUpdate, clearable, option
    from mtctl.store import phones

    change = PhoneUpdate(position=option(position), order=option(order), model=option(model),
                         template=option(template), category=clearable(category),
                         location=clearable(location), secure=option(secure),
                         publishable=option(publishable), mac=clearable(mac))
    with writing(ctx) as (conn, actor):
        phones.update_phone(conn, actor=actor, number=ext, position=pos, change=change)
    output.note(f"updated phone {ext}:{pos}")


@phone_app.command("rm")
def rm(ctx: typer.Context, ext: Ext, pos: Pos) -> None:
    """Remove a phone.

    Example: mtctl phone rm 40710 2
    """
    from mtctl.store import phones

    with writing(ctx) as (conn, actor):
        phones.remove_phone(conn, actor=actor, number=ext, position=pos)
    output.note(f"removed phone {ext}:{pos}")


def _set_enabled(ctx: typer.Context, ext: str, pos: int, enabled: bool) -> None:
    from mtctl.domain.updates import PhoneUpdate
    from mtctl.store import phones

    with writing(ctx) as (conn, actor):
        phones.update_phone(conn, actor=actor, number=ext, position=pos,
                            change=PhoneUpdate(enabled=enabled),
                            action="enable" if enabled else "disable")
    output.note(f"{'enabled' if enabled else 'disabled'} phone {ext}:{pos}")


@phone_app.command("enable")
def enable(ctx: typer.Context, ext: Ext, pos: Pos) -> None:
    """Let a phone receive calls again.

    Example: mtctl phone enable 40710 2
    """
    _set_enabled(ctx, ext, pos, True)


@phone_app.command("disable")
def disable(ctx: typer.Context, ext: Ext, pos: Pos) -> None:
    """Stop a phone from receiving calls (it keeps its order).

    Example: mtctl phone disable 40710 2
    """
    _set_enabled(ctx, ext, pos, False)


@phone_app.command("set-password")
def set_password(
    ctx: typer.Context,
    ext: Ext,
    pos: Pos,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Give a non-secure phone a SIP password, read from a hidden prompt or stdin (never argv).

    Example: printf '%s\\n' "$PW" | mtctl phone set-password 40710 0 --password-stdin
    """
    from mtctl.errors import UsageError
    from mtctl.store import phones

    if password_stdin:
        password = stdin_secret("password", MAX_PASSWORD)
    elif sys.stdin.isatty():
        password = typer.prompt("SIP password", hide_input=True,
                                confirmation_prompt=True)
    else:
        raise UsageError("no terminal to ask for the password",
                         "pipe it in with --password-stdin")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UsageError("the password is too "
                         + ("short" if len(password) < MIN_PASSWORD else "long"),
                         f"use {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    with writing(ctx) as (conn, actor):
        phones.set_password(conn, actor=actor, number=ext, position=pos, password=password)
    output.note(f"set the password of phone {ext}:{pos}")


def register(app: typer.Typer) -> None:
    app.add_typer(phone_app, name="phone")
