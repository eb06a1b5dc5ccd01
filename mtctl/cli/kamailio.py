"""`mtctl export kamailio`: a Kamailio configuration that routes calls from this store."""

from pathlib import Path
from typing import Annotated

import typer

from mtctl.cli import output

DEFAULT_LISTEN = "udp:127.0.0.1:5060"


def export_kamailio(
    ctx: typer.Context,
    out: Annotated[str, typer.Option(
        "--out", metavar="DIR", help="Directory to write kamailio.cfg and README.md into.")
    ] = "kamailio",
    listen: Annotated[str | None, typer.Option(
        metavar="PROTO:HOST:PORT",
        help=f"Where Kamailio listens (default {DEFAULT_LISTEN}; with --node, the node's "
        "SIP address).")] = None,
    node: Annotated[str | None, typer.Option(
        metavar="NAME", help="Write this node's config for a cluster: it listens on the node's "
        "SIP address, registers only its extensions' phones and relays calls for other "
        "nodes' numbers to them.")] = None,
) -> None:
    """Write a Kamailio 5.6 configuration that reads this store directly (and how to run it).

    Calls ring as `mtctl ring-sim NUMBER --live` shows; mtctl changes apply on the next call.
    Without --node: one Kamailio for the whole site. With --node: one per node, all over one
    PostgreSQL store (SQLite only when every node runs on one host).

    Example: mtctl export kamailio --node madrid --out /etc/kamailio/mtctl
    """
    from mtctl.cli.common import globals_of, reading
    from mtctl.errors import UsageError
    from mtctl.formats.kamailio import (
        check_cluster_store,
        kamailio_cfg,
        kamailio_db,
        kamailio_readme,
    )

    if not out.strip():  # '' would be the current directory, and its README.md
        raise UsageError("--out is empty", "give a directory, e.g. --out /etc/kamailio/mtctl")
    directory = Path(out)
    if node is not None and listen is not None:
        raise UsageError("--listen and --node: a node's Kamailio listens on its SIP address",
                         f"drop --listen, or change it: mtctl node set {node} --sip-address "
                         "HOST:PORT")
    url = globals_of(ctx).url
    db = kamailio_db(url, cwd=Path.cwd())
    target = None
    with reading(ctx) as conn:  # the store must exist and be at the schema that has the views
        if node is not None:
            from mtctl.store.nodes import node_addresses, node_for_export

            target = node_for_export(conn, node)
            check_cluster_store(db, node_addresses(conn))
    listen = target.listen if target is not None else listen or DEFAULT_LISTEN
    cfg = kamailio_cfg(db, listen=listen, node=target)
    cfg_path = (directory / "kamailio.cfg").absolute()
    _write(directory, "kamailio.cfg", cfg, mode=0o600)  # it holds the store URL and its password
    readme = kamailio_readme(db, listen=listen, cfg_path=cfg_path, node=target)
    _write(directory, "README.md", readme, mode=0o644)
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

