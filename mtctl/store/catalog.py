"""Nodes, categories, phone models, templates and Web Call groups.

Long because: the five kinds share the naming, refusal ("still used by ...") and audit helpers
at the top; split by kind, each part would import the others' private helpers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.engine import Connection

from mtctl.domain.model import PHONE_KINDS
from mtctl.domain.updates import UNCHANGED, TemplateUpdate
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
    found: int | None = conn.execute(select(table.c.id).where(table.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"unknown {what} {name!r}", f"see: {hint}")
    return found


def _check_name(what: str, name: str) -> str:
    name = name.strip()
    if not name:
        raise UsageError(f"a {what} needs a name", f"e.g. mtctl {what} add NAME")
    return name


def _add_named(conn: Connection, *, actor: str, what: str, values: dict[str, Any],
               audited: dict[str, Any] | None = None) -> None:
    """Insert a catalog entry; the audit row has its values (ids replaced by AUDITED names)."""
    table, _ = WHAT[what]
    name = values["name"] = _check_name(what, values["name"])
    check_text(table, values)
    if conn.execute(select(table.c.id).where(table.c.name == name)).first():
        raise Conflict(f"{what} {name!r} already exists", f"see: mtctl {what} list")
    conn.execute(insert(table).values(**values))
    shown = {k: v for k, v in values.items() if not k.endswith("_id")} | (audited or {})
    audit.record(conn, actor=actor, action="add", obj=f"{what} {name}",
                 changes={k: [None, v] for k, v in shown.items()})


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


def add_node(conn: Connection, *, actor: str, name: str, sip_address: str | None = None) -> None:
    from mtctl.domain.nodes import parse_sip_address

    address = str(parse_sip_address(sip_address)) if sip_address is not None else None
    refuse_shared_address(conn, name, address)
    _add_named(conn, actor=actor, what="node",
               values={"name": name} | ({"sip_address": address} if address else {}))


def refuse_shared_address(conn: Connection, name: str, address: str | None) -> None:
    """Conflict (exit 4) when another node has ADDRESS already."""
    from mtctl.domain.nodes import SHARED_HINT, address_holder

    addresses = {row.name: row.sip_address
                 for row in conn.execute(select(node.c.name, node.c.sip_address))}
    other = address_holder(addresses, name, address)
    if other is not None:
        raise Conflict(f"SIP address {address} is node {other}'s", SHARED_HINT)


def remove_node(conn: Connection, *, actor: str, name: str) -> None:
    """Remove a node no extension lives on."""
    row_id = id_by_name(conn, "node", name)
    _refuse_if_used(conn, "node", name,
                    select(extension.c.number).where(extension.c.node_id == row_id)
                    .order_by(extension.c.number),
                    f"move them to another node first (mtctl ext set NUMBER --node OTHER), "
                    f"see: mtctl ext list --node {name}")
    before = conn.execute(select(node.c.sip_address).where(node.c.id == row_id)).scalar()
    _remove_entry(conn, actor=actor, what="node", name=name,
                  changes={"sip_address": [before, None]} if before else None)


def add_category(conn: Connection, *, actor: str, name: str) -> None:
    _add_named(conn, actor=actor, what="category", values={"name": name})


def remove_category(conn: Connection, *, actor: str, name: str) -> None:
    _remove_named(conn, actor=actor, what="category", name=name,
                  users=[(phone, phone.c.category_id), (template, template.c.category_id)])


def add_model(conn: Connection, *, actor: str, name: str, vendor: str, kind: str,
              qr_provisionable: bool, profile: str | None = None) -> None:
    from mtctl.domain.devices import PROFILES

    if kind not in PHONE_KINDS:
        raise UsageError(f"unknown phone kind {kind!r}", "use one of: " + ", ".join(PHONE_KINDS))
    if profile is not None and profile not in PROFILES:
        raise UsageError(f"unknown provisioning profile {profile!r}",
                         "use one of: " + ", ".join(PROFILES))
    _add_named(conn, actor=actor, what="model",
               values={"name": name, "vendor": vendor.strip(), "kind": kind,
                       "qr_provisionable": qr_provisionable, "profile": profile})


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
                       "key_lifetime_days": key_lifetime_days, "category_id": category_id},
               audited={"category": category_name or None})
    check_rotation(conn)  # a lifetime within the rotation window would rotate every run


def add_group(conn: Connection, *, actor: str, name: str) -> None:
    _add_named(conn, actor=actor, what="group", values={"name": name})


def list_nodes(conn: Connection) -> list[dict[str, Any]]:
    counts = (select(extension.c.node_id, func.count().label("n"))
              .group_by(extension.c.node_id).subquery())
    rows = conn.execute(select(node.c.name, node.c.sip_address,
                               func.coalesce(counts.c.n, 0).label("extensions"))
                        .outerjoin(counts, counts.c.node_id == node.c.id).order_by(node.c.name))
    return [{"name": r.name, "sip_address": r.sip_address, "extensions": r.extensions}
            for r in rows]


def list_categories(conn: Connection) -> list[dict[str, Any]]:
    return [{"name": n} for n in conn.execute(select(category.c.name)
                                              .order_by(category.c.name)).scalars()]


def list_models(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(phone_model).order_by(phone_model.c.name))
    return [{"name": r.name, "vendor": r.vendor, "kind": r.kind,
             "qr_provisionable": bool(r.qr_provisionable), "profile": r.profile} for r in rows]


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
    rank: int = conn.execute(select(func.coalesce(func.max(webcall_group_extension.c.rank), -1))
                             .where(webcall_group_extension.c.group_id == group_id)).scalar_one()
    ids = []
    before = group_extensions(conn, group_id)
    for number in numbers:
        ext_id = require_extension(conn, number)
        ids.append(ext_id)
        if number in present:
            continue
        rank += 1
        present.add(number)
        conn.execute(insert(webcall_group_extension).values(group_id=group_id,
                                                            extension_id=ext_id, rank=rank))
    after = group_extensions(conn, group_id)
    if after != before:
        audit.record(conn, actor=actor, action="add-ext", obj=f"group {name}",
                     changes={"extensions": [before, after]})
    users = conn.execute(select(app_user.c.id).where(app_user.c.webcall_group_id == group_id))
    enforce(conn, extension_ids=ids, user_ids=users.scalars().all())


NAMED = 5  # objects named in a refusal; the rest are counted


def _refuse_if_used(conn: Connection, what: str, name: str, labels: Any, hint: str) -> None:
    """Conflict (exit 4) naming what still uses the entry, like `node rm`."""
    found = list(conn.execute(labels.limit(NAMED + 1)).all())
    if not found:
        return
    total: int = conn.execute(select(func.count()).select_from(labels.subquery())).scalar_one()
    shown = ", ".join(_label(row) for row in found[:NAMED])
    more = f" (and {total - NAMED} more)" if total > NAMED else ""
    raise Conflict(f"{what} {name!r} is still used by {shown}{more}", hint)


def _label(row: Any) -> str:
    if len(row) == 2:
        return f"phone {row[0]}:{row[1]}"
    return f"extension {row[0]}" if "number" in row._mapping else f"user {row[0]}"


def _phones_with(column: Any, row_id: int) -> Any:
    return (select(extension.c.number, phone.c.position)
            .join(extension, extension.c.id == phone.c.extension_id)
            .where(column == row_id).order_by(extension.c.number, phone.c.position))


def _refuse_seeded(what: str, name: str, seeded: set[str]) -> None:
    if name in seeded:
        from mtctl.errors import MtctlError

        why = ("phone add gives phones the seeded templates" if what == "template"
               else "export and apply --prune count on every seeded model")
        raise MtctlError(f"{what} {name!r} is seeded and cannot be removed ({why})",
                         f"leave it in place; see: mtctl {what} list")


def _remove_entry(conn: Connection, *, actor: str, what: str, name: str,
                  changes: dict[str, Any] | None = None) -> None:
    table, _ = WHAT[what]
    conn.execute(delete(table).where(table.c.name == name))
    audit.record(conn, actor=actor, action="remove", obj=f"{what} {name}", changes=changes)


def remove_model(conn: Connection, *, actor: str, name: str) -> None:
    """Remove a model that no phone uses; seeded models stay."""
    from mtctl.domain.catalog import SEEDED_MODELS

    row_id = id_by_name(conn, "model", name)
    _refuse_seeded("model", name, {m.name for m in SEEDED_MODELS})
    _refuse_if_used(conn, "model", name, _phones_with(phone.c.model_id, row_id),
                    "give them another model (mtctl phone set EXT POS --model M) or remove "
                    "them first")
    before = show_model(conn, name)
    _remove_entry(conn, actor=actor, what="model", name=name,
                  changes={k: [before[k], None] for k in ("vendor", "kind", "qr_provisionable",
                                                          "profile")})


def remove_template(conn: Connection, *, actor: str, name: str) -> None:
    """Remove a template that no phone uses; seeded templates stay."""
    from mtctl.domain.catalog import SEEDED_TEMPLATES

    row_id = id_by_name(conn, "template", name)
    _refuse_seeded("template", name, {t.name for t in SEEDED_TEMPLATES})
    _refuse_if_used(conn, "template", name, _phones_with(phone.c.template_id, row_id),
                    "give them another template (mtctl phone set EXT POS --template T) or "
                    "remove them first")
    before = show_template(conn, name)
    _remove_entry(conn, actor=actor, what="template", name=name,
                  changes={k: [before[k], None] for k in
                           ("for_webcall", "secure", "key_lifetime_days", "category")})


def remove_group(conn: Connection, *, actor: str, name: str) -> None:
    """Remove a Web Call group that no user draws from; its extensions stay."""
    row_id = id_by_name(conn, "group", name)
    _refuse_if_used(conn, "group", name,
                    select(app_user.c.username).where(app_user.c.webcall_group_id == row_id)
                    .order_by(app_user.c.username),
                    "give those users another group (mtctl user set USER --webcall-group G) "
                    "first")
    members = group_extensions(conn, row_id)
    conn.execute(delete(webcall_group_extension)
                 .where(webcall_group_extension.c.group_id == row_id))
    _remove_entry(conn, actor=actor, what="group", name=name,
                  changes={"extensions": [members, None]} if members else None)


def remove_group_extensions(conn: Connection, *, actor: str, name: str,
                            numbers: list[str]) -> None:
    """Take extensions out of a Web Call pool; its users must still satisfy MT010, and their
    sessions on a removed extension end."""
    from mtctl.store.lookup import require_extension
    from mtctl.store.validate import enforce
    from mtctl.store.webcall import end_invalid_sessions

    group_id = id_by_name(conn, "group", name)
    present = set(group_extensions(conn, group_id))
    ids = []
    before = group_extensions(conn, group_id)
    for number in dict.fromkeys(numbers):
        ext_id = require_extension(conn, number)
        if number not in present:
            raise NotFound(f"extension {number} is not in group {name!r}",
                           "see: mtctl group list")
        ids.append(ext_id)
        conn.execute(delete(webcall_group_extension).where(
            webcall_group_extension.c.group_id == group_id,
            webcall_group_extension.c.extension_id == ext_id))
    audit.record(conn, actor=actor, action="rm-ext", obj=f"group {name}",
                 changes={"extensions": [before, group_extensions(conn, group_id)]})
    users = conn.execute(select(app_user.c.id).where(app_user.c.webcall_group_id == group_id))
    user_ids = users.scalars().all()
    enforce(conn, extension_ids=ids, user_ids=user_ids)
    end_invalid_sessions(conn, actor=actor, user_ids=user_ids)


def _phone_count(conn: Connection, column: Any, row_id: int) -> int:
    return conn.execute(select(func.count()).where(column == row_id)).scalar_one()


def show_model(conn: Connection, name: str) -> dict[str, Any]:
    """One model, whether it is seeded, and how many phones use it."""
    from mtctl.domain.catalog import SEEDED_MODELS

    row_id = id_by_name(conn, "model", name)
    item = next(m for m in list_models(conn) if m["name"] == name)
    return item | {"seeded": name in {m.name for m in SEEDED_MODELS},
                   "phones": _phone_count(conn, phone.c.model_id, row_id)}


def show_template(conn: Connection, name: str) -> dict[str, Any]:
    """One template, whether it is seeded, and how many phones use it."""
    from mtctl.domain.catalog import SEEDED_TEMPLATES

    row_id = id_by_name(conn, "template", name)
    item = next(t for t in list_templates(conn) if t["name"] == name)
    return item | {"seeded": name in {t.name for t in SEEDED_TEMPLATES},
                   "phones": _phone_count(conn, phone.c.template_id, row_id)}


def set_template(conn: Connection, *, actor: str, name: str,
                 change: TemplateUpdate) -> dict[str, Any]:
    """Change a template's key lifetime (None: the global one), category (None: none) or
    secure default; returns the changes (empty: nothing to do)."""
    from mtctl.domain.config_keys import MAX_LIFETIME_DAYS
    from mtctl.store.config import check_rotation

    row_id = id_by_name(conn, "template", name)
    before = show_template(conn, name)
    values: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    key_lifetime_days, category_name, secure = (change.key_lifetime_days, change.category,
                                                change.secure)
    if key_lifetime_days is not UNCHANGED:
        if key_lifetime_days is not None and not 1 <= key_lifetime_days <= MAX_LIFETIME_DAYS:
            raise UsageError(f"key lifetime {key_lifetime_days} is out of range",
                             f"use 1 to {MAX_LIFETIME_DAYS} days, e.g. --key-lifetime 90")
        values["key_lifetime_days"] = key_lifetime_days
        changes["key_lifetime_days"] = [before["key_lifetime_days"], key_lifetime_days]
    if category_name is not UNCHANGED:
        values["category_id"] = (id_by_name(conn, "category", category_name)
                                 if category_name is not None else None)
        changes["category"] = [before["category"], category_name]
    if secure is not UNCHANGED:
        values["secure"] = secure
        changes["secure"] = [before["secure"], secure]
    changes = {k: v for k, v in changes.items() if v[0] != v[1]}
    if changes:
        conn.execute(template.update().where(template.c.id == row_id).values(**values))
        audit.record(conn, actor=actor, action="set", obj=f"template {name}", changes=changes)
        check_rotation(conn)  # a lifetime within the rotation window would rotate every run
    return changes


def add_named(conn: Connection, *, actor: str, what: str, name: str) -> None:
    """Add a node, category or group: a name is all it takes."""
    {"node": add_node, "category": add_category, "group": add_group}[what](
        conn, actor=actor, name=name)


LISTS = {"node": list_nodes, "category": list_categories, "model": list_models,
         "template": list_templates, "group": list_groups}
REMOVES = {"node": remove_node, "category": remove_category, "model": remove_model,
           "template": remove_template, "group": remove_group}
SHOWS = {"model": show_model, "template": show_template}
