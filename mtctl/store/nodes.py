"""Nodes as servers (SPEC §8): a node's SIP address, what `node show` tells, and the node a
cluster Kamailio config is written for. Adding, listing and removing nodes is catalog.py's."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from mtctl.domain.nodes import ClusterNode, parse_sip_address
from mtctl.errors import UsageError
from mtctl.store import audit
from mtctl.store.catalog import id_by_name, refuse_shared_address
from mtctl.store.tables import extension, location, node, phone


def set_node(conn: Connection, *, actor: str, name: str, sip_address: str | None) -> bool:
    """Give a node its SIP address (None: clear it); False when nothing changed."""
    row_id = id_by_name(conn, "node", name)
    address = str(parse_sip_address(sip_address)) if sip_address is not None else None
    before = conn.execute(select(node.c.sip_address).where(node.c.id == row_id)).scalar()
    if before == address:
        return False
    refuse_shared_address(conn, name, address)
    conn.execute(node.update().where(node.c.id == row_id).values(sip_address=address))
    audit.record(conn, actor=actor, action="set", obj=f"node {name}",
                 changes={"sip_address": [before, address]})
    return True


def show_node(conn: Connection, name: str) -> dict[str, Any]:
    """One node: its SIP address, how many extensions and phones live there, and how many
    phones are registered at it now."""
    row_id = id_by_name(conn, "node", name)
    address = conn.execute(select(node.c.sip_address).where(node.c.id == row_id)).scalar()
    extensions = conn.execute(select(func.count()).select_from(extension)
                              .where(extension.c.node_id == row_id)).scalar()
    registered = conn.execute(
        select(func.count(func.distinct(location.c.username)))
        .where(location.c.server_id == row_id, location.c.expires > int(time.time()))).scalar()
    phones = conn.execute(select(func.count()).select_from(phone)
                          .where(phone.c.node_id == row_id)).scalar()
    return {"name": name, "sip_address": address, "extensions": extensions, "phones": phones,
            "registered": registered}


def node_addresses(conn: Connection) -> dict[str, str | None]:
    """Every node's name and SIP address."""
    return {name: address for name, address in
            conn.execute(select(node.c.name, node.c.sip_address).order_by(node.c.name))}


def node_for_export(conn: Connection, name: str) -> ClusterNode:
    """The node a cluster Kamailio config is written for; refused while it has no address."""
    row_id = id_by_name(conn, "node", name)
    address = conn.execute(select(node.c.sip_address).where(node.c.id == row_id)).scalar()
    if address is None:
        raise UsageError(f"node {name!r} has no SIP address, so its Kamailio has nowhere to "
                         "listen and other nodes cannot relay to it",
                         f"run: mtctl node set {name} --sip-address HOST:PORT")
    return ClusterNode(row_id, name, address)
