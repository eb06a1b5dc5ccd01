"""`mtctl export kamailio`: a Kamailio configuration that routes calls from this store."""

from pathlib import Path
from typing import Annotated

import typer

from mtctl.cli import output

DEFAULT_LISTEN = "udp:127.0.0.1:5060"


def export_kamailio(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="Directory to write kamailio.cfg and README.md into.")
    ] = Path("kamailio"),
    listen: Annotated[str, typer.Option(
        metavar="PROTO:HOST:PORT", help="Where Kamailio listens.")] = DEFAULT_LISTEN,
) -> None:
    """Write a Kamailio 5.6 configuration that reads this store directly (and how to run it).

    Calls ring as `mtctl ring-sim NUMBER --live` shows; mtctl changes apply on the next call.

    Example: mtctl export kamailio --out /etc/kamailio/mtctl --listen udp:192.0.2.10:5060
    """
    from mtctl.cli.common import globals_of, reading
    from mtctl.formats.kamailio import kamailio_cfg, kamailio_db, kamailio_readme

    url = globals_of(ctx).url
    db = kamailio_db(url, cwd=Path.cwd())
    cfg = kamailio_cfg(db, listen=listen)
    with reading(ctx):  # the store must exist and be at the schema that has the views
        pass
    cfg_path = (out / "kamailio.cfg").absolute()
    _write(out, "kamailio.cfg", cfg, mode=0o600)  # it holds the store URL and its password
    _write(out, "README.md", kamailio_readme(db, listen=listen, cfg_path=cfg_path), mode=0o644)
    output.note(f"wrote {cfg_path} and README.md — run: kamailio -DD -E -f {cfg_path}")


def _write(directory: Path, name: str, text: str, *, mode: int) -> None:
    from mtctl.errors import UsageError
    from mtctl.files import PRIVATE, atomic_write

    hint = "choose a writable directory with --out"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {directory / name}: {exc.strerror}", hint) from exc
    # Created 0600 when private, atomically; a failure leaves no temporary file behind.
    atomic_write(directory / name, text, private=mode == PRIVATE, hint=hint)

