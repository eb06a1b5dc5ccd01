"""Nodes, categories, phone models, templates and Web Call groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.engine import Connection

from mtctl.domain.model import PHONE_KINDS
from mtctl.errors import Conflict, NotFound, UsageError
from mtctl.store import audit
from mtctl.store.tables import (
    app_user,
    category,
    extension,
    node,
    phone,
    phone_model,
    template,
    webcall_group,
    webcall_group_extension,
)
from mtctl.store.validate import check_text

WHAT = {
    "node": (node, "mtctl node list"),
    "category": (category, "mtctl category list"),
    "model": (phone_model, "mtctl model list"),
    "template": (template, "mtctl template list"),
    "group": (webcall_group, "mtctl group list"),
}


def id_by_name(conn: Connection, what: str, name: str) -> int:
    """The id of the named catalog entry, or NotFound (exit 3) with where to look."""
    table, hint = WHAT[what]
    found = conn.execute(select(table.c.id).where(table.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"unknown {what} {name!r}", f"see: {hint}")
    return found


def _check_name(what: str, name: str) -> str:
    name = name.strip()
    if not name:
        raise UsageError(f"a {what} needs a name", f"e.g. mtctl {what} add NAME")
    return name


def _add_named(conn: Connection, *, actor: str, what: str, values: dict[str, Any]) -> None:
    table, _ = WHAT[what]
    name = values["name"] = _check_name(what, values["name"])
    check_text(table, values)
    if conn.execute(select(table.c.id).where(table.c.name == name)).first():
        raise Conflict(f"{what} {name!r} already exists", f"see: mtctl {what} list")
    conn.execute(insert(table).values(**values))
    audit.record(conn, actor=actor, action="add", obj=f"{what} {name}",
                 changes={k: [None, v] for k, v in values.items()})


def _remove_named(conn: Connection, *, actor: str, what: str, name: str,
                  users: list[tuple[Table, Any]]) -> None:
    table, _ = WHAT[what]
    row_id = id_by_name(conn, what, name)
    for user_table, column in users:
        used = conn.execute(select(func.count()).select_from(user_table)
                            .where(column == row_id)).scalar()
        if used:
            raise Conflict(f"{what} {name!r} is still used by {used} {user_table.name} row(s)",
                           f"move them to another {what} first")
    conn.execute(delete(table).where(table.c.id == row_id))
    audit.record(conn, actor=actor, action="remove", obj=f"{what} {name}")


def add_node(conn: Connection, *, actor: str, name: str) -> None:
    _add_named(conn, actor=actor, what="node", values={"name": name})


def remove_node(conn: Connection, *, actor: str, name: str) -> None:
    _remove_named(conn, actor=actor, what="node", name=name,
                  users=[(extension, extension.c.node_id), (phone, phone.c.node_id)])


def add_category(conn: Connection, *, actor: str, name: str) -> None:
    _add_named(conn, actor=actor, what="category", values={"name": name})


def remove_category(conn: Connection, *, actor: str, name: str) -> None:
    _remove_named(conn, actor=actor, what="category", name=name,
                  users=[(phone, phone.c.category_id), (template, template.c.category_id)])


def add_model(conn: Connection, *, actor: str, name: str, vendor: str, kind: str,
              qr_provisionable: bool) -> None:
    if kind not in PHONE_KINDS:
        raise UsageError(f"unknown phone kind {kind!r}", "use one of: " + ", ".join(PHONE_KINDS))
    _add_named(conn, actor=actor, what="model",
               values={"name": name, "vendor": vendor.strip(), "kind": kind,
                       "qr_provisionable": qr_provisionable})


def add_template(conn: Connection, *, actor: str, name: str, for_webcall: bool,
                 key_lifetime_days: int | None, category_name: str | None,
                 secure: bool) -> None:
    from mtctl.domain.config_keys import MAX_LIFETIME_DAYS
    from mtctl.store.config import check_rotation

    if key_lifetime_days is not None and not 1 <= key_lifetime_days <= MAX_LIFETIME_DAYS:
        raise UsageError(f"key lifetime {key_lifetime_days} is out of range",
                         f"use 1 to {MAX_LIFETIME_DAYS} days, e.g. --key-lifetime 90")
    category_id = id_by_name(conn, "category", category_name) if category_name else None
    _add_named(conn, actor=actor, what="template",
               values={"name": name, "for_webcall": for_webcall, "secure": secure,
                       "key_lifetime_days": key_lifetime_days, "category_id": category_id})
    check_rotation(conn)  # a lifetime within the rotation window would rotate every run


def add_group(conn: Connection, *, actor: str, name: str) -> None:
    _add_named(conn, actor=actor, what="group", values={"name": name})


def list_nodes(conn: Connection) -> list[dict[str, Any]]:
    counts = (select(extension.c.node_id, func.count().label("n"))
              .group_by(extension.c.node_id).subquery())
    rows = conn.execute(select(node.c.name, func.coalesce(counts.c.n, 0).label("extensions"))
                        .outerjoin(counts, counts.c.node_id == node.c.id).order_by(node.c.name))
    return [{"name": r.name, "extensions": r.extensions} for r in rows]


def list_categories(conn: Connection) -> list[dict[str, Any]]:
    return [{"name": n} for n in conn.execute(select(category.c.name)
                                              .order_by(category.c.name)).scalars()]


def list_models(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(phone_model).order_by(phone_model.c.name))
    return [{"name": r.name, "vendor": r.vendor, "kind": r.kind,
             "qr_provisionable": bool(r.qr_provisionable)} for r in rows]


def list_templates(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(template, category.c.name.label("category"))
                        .outerjoin(category, category.c.id == template.c.category_id)
                        .order_by(template.c.name))
    return [{"name": r.name, "for_webcall": bool(r.for_webcall), "secure": bool(r.secure),
             "key_lifetime_days": r.key_lifetime_days, "category": r.category} for r in rows]


def group_extensions(conn: Connection, group_id: int) -> list[str]:
    return list(conn.execute(
        select(extension.c.number)
        .join(webcall_group_extension, webcall_group_extension.c.extension_id == extension.c.id)
        .where(webcall_group_extension.c.group_id == group_id)
        .order_by(webcall_group_extension.c.rank, extension.c.number)).scalars())


def list_groups(conn: Connection) -> list[dict[str, Any]]:
    groups = conn.execute(select(webcall_group).order_by(webcall_group.c.name)).all()
    return [{"name": g.name, "extensions": group_extensions(conn, g.id)} for g in groups]


def add_group_extensions(conn: Connection, *, actor: str, name: str, numbers: list[str]) -> None:
    """Add extensions to a Web Call pool; its users must still satisfy MT010."""
    from mtctl.store.lookup import require_extension
    from mtctl.store.validate import enforce

    group_id = id_by_name(conn, "group", name)
    present = set(group_extensions(conn, group_id))
    rank = conn.execute(select(func.coalesce(func.max(webcall_group_extension.c.rank), -1))
                        .where(webcall_group_extension.c.group_id == group_id)).scalar()
    ids = []
    for number in numbers:
        ext_id = require_extension(conn, number)
        ids.append(ext_id)
        if number in present:
            continue
        rank += 1
        present.add(number)
        conn.execute(insert(webcall_group_extension).values(group_id=group_id,
                                                            extension_id=ext_id, rank=rank))
        audit.record(conn, actor=actor, action="add-ext", obj=f"group {name}",
                     changes={"extension": [None, number]})
    users = conn.execute(select(app_user.c.id).where(app_user.c.webcall_group_id == group_id))
    enforce(conn, extension_ids=ids, user_ids=users.scalars().all())
