"""`mtctl provision`: pair a mobile app by QR code; `mtctl serve`: the provisioning endpoint."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

import typer
from typer.core import TyperGroup

from mtctl.cli import complete, output
from mtctl.cli.common import JsonOpt, check_host, globals_of, position_arg, whole_number, writing

if TYPE_CHECKING:
    from datetime import datetime

    from segno import QRCode


class _PairByDefault(TyperGroup):
    """`provision EXT POS` means `provision pair EXT POS`; `provision revoke EXT POS` is a verb."""

    default_verb = "pair"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [self.default_verb, *args]
        return super().parse_args(ctx, args)


provision_app = typer.Typer(
    cls=_PairByDefault, no_args_is_help=False, add_completion=False,
    subcommand_metavar="[pair] EXT POS | revoke EXT POS",
    help="Pair a secure app phone by QR code (pair is the default verb), or revoke its code."
         "\n\nExample: mtctl provision 40710 2 --png ana-android.png")


@provision_app.command("pair")
def provision(
    ctx: typer.Context,
    ext: Annotated[str, typer.Argument(metavar="EXT", help="The phone's extension.",
                                       autocompletion=complete.extensions)],
    pos: Annotated[int, position_arg()],
    png: Annotated[Path | None, typer.Option(metavar="FILE", help="Also write a PNG.")] = None,
    svg: Annotated[Path | None, typer.Option(metavar="FILE", help="Also write an SVG.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a QR code that pairs a secure app phone (also: mtctl provision EXT POS).

    A new code replaces any earlier one. The code carries the only copy of the token.

    Example: mtctl provision 40710 2 --png ana-android.png
    """
    import segno

    from mtctl.store.audit import utcnow
    from mtctl.store.tokens import issue_token

    with writing(ctx) as (conn, actor):
        _token, url, redeem_by = issue_token(conn, actor=actor, number=ext, position=pos,
                                             now=utcnow())
        qr = segno.make(url, error="m")
        # Files are written inside the transaction: a file that cannot be written issues no token.
        # The code is a bearer token for the phone's key: owner-only (0600) and whole, or nothing.
        for path, kind in ((png, "png"), (svg, "svg")):
            if path is not None:
                _save_private(qr, path, kind)
    if as_json:
        output.print_json({"extension": ext, "position": pos,
                           "redeem_by": redeem_by.isoformat(timespec="seconds"),
                           "png": str(png) if png else None, "svg": str(svg) if svg else None})
        return
    if png is None and svg is None:
        qr.terminal(out=cast(TextIO, output.out().file), compact=True, border=2)
    output.note(f"phone {ext}:{pos}: scan within {_hours(redeem_by)} "
                f"(until {redeem_by:%Y-%m-%d %H:%M} UTC); an earlier code no longer works")


def _save_private(qr: "QRCode", path: Path, kind: str) -> None:
    """The QR code as a PNG or SVG file that only its owner can read, written atomically."""
    import io

    from mtctl.files import atomic_write

    buffer = io.BytesIO()
    qr.save(buffer, kind=kind, scale=8, border=4)
    atomic_write(path, buffer.getvalue(), private=True)


def _hours(until: "datetime") -> str:
    from mtctl.store.audit import utcnow

    hours = max(0, round((until - utcnow()).total_seconds() / 3600))
    return f"{hours} h"


@provision_app.command("revoke")
def revoke(
    ctx: typer.Context,
    ext: Annotated[str, typer.Argument(metavar="EXT", help="The phone's extension.",
                                       autocompletion=complete.extensions)],
    pos: Annotated[int, position_arg()],
) -> None:
    """Cancel the phone's provisioning code: it can no longer be redeemed.

    Example: mtctl provision revoke 40710 2
    """
    from mtctl.store.tokens import revoke_token

    with writing(ctx) as (conn, actor):
        revoke_token(conn, actor=actor, number=ext, position=pos)
    output.note(f"revoked the provisioning token of phone {ext}:{pos}")


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on (0: any free "
                                      "port).", parser=whole_number("--port", 0, 65535))] = 8080,
    no_portal: Annotated[bool, typer.Option(
        "--no-portal", help="Do not serve the user portal at /portal/.")] = False,
) -> None:
    """Serve provisioning XML at /<token>, desk phone files at /d/<MAC>.xml and /d/<mac>.cfg,
    /healthz and the user portal at /portal/ (needs the "serve" extra).

    Example: mtctl serve --host 0.0.0.0 --port 8080
    """
    import logging

    from mtctl.errors import UsageError

    check_host(host)
    try:
        import uvicorn

        from mtctl.serve_http import BoundedHead
        from mtctl.web import create_app

        if not no_portal:
            import jinja2  # noqa: F401 (the portal's templates)
    except ImportError as exc:
        raise UsageError("the provisioning server is not installed",
                         "pip install 'mtctl[serve]'") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(globals_of(ctx).url, portal=not no_portal)
    # uvicorn's access log would print request paths, and a path is a token: keep it off.
    # httptools with each request's line and headers bounded (431 past 32 KiB)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", http=BoundedHead)


def register(app: typer.Typer) -> None:
    app.add_typer(provision_app, name="provision")
    app.command("serve")(serve)
