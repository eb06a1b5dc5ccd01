"""Load extensions, phones and users as the plain values the domain works on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec
from mtctl.store.rows import PHONE_COLUMNS, phone_spec_of
from mtctl.store.tables import (
    app_user,
    category,
    extension,
    node,
    phone,
    phone_model,
    template,
    user_webcall_extension,
    webcall_group,
    webcall_group_extension,
)

phone_node = node.alias("phone_node")


def phone_query() -> Select[Any]:
    """Phones joined with everything a PhoneSpec or a listing shows."""
    return (
        select(
            phone.c.id, phone.c.extension_id, extension.c.number, phone.c.position,
            phone.c.ring_order, phone.c.enabled, phone_model.c.name.label("model"),
            phone_model.c.kind, phone_model.c.vendor, phone_model.c.qr_provisionable,
            template.c.name.label("template"), template.c.for_webcall,
            phone.c.secure, phone.c.publishable, phone_node.c.name.label("node"),
            phone.c.location, category.c.name.label("category"), phone.c.sip_auth_user,
            (phone.c.ha1.is_not(None)).label("has_key"), phone.c.key_expires_at,
            phone_model.c.profile, phone.c.mac, phone.c.key_delivered_at,
            phone.c.key_delivered_to,
        )
        .select_from(phone)
        .join(extension, extension.c.id == phone.c.extension_id)
        .join(phone_model, phone_model.c.id == phone.c.model_id)
        .join(template, template.c.id == phone.c.template_id)
        .join(phone_node, phone_node.c.id == phone.c.node_id)
        .outerjoin(category, category.c.id == phone.c.category_id)
    )


class MappedRow(Protocol):
    """Anything that offers a phone_query() row's columns by label, as a Row does."""

    @property
    def _mapping(self) -> Mapping[Any, Any]: ...


def phone_spec(row: Sequence[Any] | MappedRow) -> PhoneSpec:
    """A phone_query() row (a tuple of rows.PHONE_COLUMNS, in order), or anything with a
    `_mapping` of those columns, as a PhoneSpec."""
    if isinstance(row, Sequence):
        return phone_spec_of(row)
    m = row._mapping
    return phone_spec_of([m.get(column) for column in PHONE_COLUMNS])


def extension_specs(conn: Connection, ids: Collection[int]) -> dict[int, ExtensionSpec]:
    """The extensions with these ids, each with all its phones."""
    if not ids:
        return {}
    ext_rows = conn.execute(
        select(extension.c.id, extension.c.number, node.c.name.label("node"),
               extension.c.display_name, extension.c.ring_timeout)
        .join(node, node.c.id == extension.c.node_id)
        .where(extension.c.id.in_(list(ids)))
    ).all()
    phones: dict[int, list[PhoneSpec]] = defaultdict(list)
    for row in conn.execute(phone_query().where(phone.c.extension_id.in_(list(ids)))):
        phones[row.extension_id].append(phone_spec(row))
    return {
        row.id: ExtensionSpec(number=row.number, node=row.node, display_name=row.display_name,
                              ring_timeout=row.ring_timeout,
                              phones=tuple(sorted(phones[row.id], key=lambda p: p.position)))
        for row in ext_rows
    }


def user_specs(conn: Connection, user_ids: Collection[int]) -> dict[int, tuple[UserSpec, set[int]]]:
    """Users by id, each with the ids of every extension it names (login and Web Call)."""
    if not user_ids:
        return {}
    ids = list(user_ids)
    rows = conn.execute(
        select(app_user, extension.c.number.label("login"),
               webcall_group.c.name.label("group_name"))
        .join(extension, extension.c.id == app_user.c.login_extension_id)
        .outerjoin(webcall_group, webcall_group.c.id == app_user.c.webcall_group_id)
        .where(app_user.c.id.in_(ids))
    ).all()
    own: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for row in conn.execute(
        select(user_webcall_extension.c.user_id, extension.c.id, extension.c.number)
        .join(extension, extension.c.id == user_webcall_extension.c.extension_id)
        .where(user_webcall_extension.c.user_id.in_(ids))
        .order_by(user_webcall_extension.c.rank, extension.c.number)
    ):
        own[row.user_id].append((row.id, row.number))
    group_ids = {row.webcall_group_id for row in rows if row.webcall_group_id is not None}
    pooled: dict[int, list[tuple[int, str]]] = defaultdict(list)
    if group_ids:
        for row in conn.execute(
            select(webcall_group_extension.c.group_id, extension.c.id, extension.c.number)
            .join(extension, extension.c.id == webcall_group_extension.c.extension_id)
            .where(webcall_group_extension.c.group_id.in_(group_ids))
            .order_by(webcall_group_extension.c.rank, extension.c.number)
        ):
            pooled[row.group_id].append((row.id, row.number))
    result = {}
    for row in rows:
        mine = own[row.id]
        pool = pooled[row.webcall_group_id] if row.webcall_group_id is not None else []
        spec = UserSpec(
            username=row.username, display_name=row.display_name, login=row.login,
            webcall_mode=row.webcall_mode, webcall_license=row.webcall_license,
            webcall_extensions=tuple(n for _, n in mine), webcall_group=row.group_name,
            group_extensions=tuple(n for _, n in pool),
            webcall_position=row.webcall_position,
        )
        result[row.id] = (spec, {row.login_extension_id, *(i for i, _ in mine),
                                 *(i for i, _ in pool)})
    return result


def users_touching(conn: Connection, extension_ids: Iterable[int]) -> set[int]:
    """Ids of users whose login or Web Call extensions include any of these extensions."""
    ids = list(extension_ids)
    if not ids:
        return set()
    by_login = select(app_user.c.id).where(app_user.c.login_extension_id.in_(ids))
    by_own = select(user_webcall_extension.c.user_id).where(
        user_webcall_extension.c.extension_id.in_(ids))
    by_group = (
        select(app_user.c.id)
        .join(webcall_group_extension,
              webcall_group_extension.c.group_id == app_user.c.webcall_group_id)
        .where(webcall_group_extension.c.extension_id.in_(ids))
    )
    found: set[int] = set()
    for query in (by_login, by_own, by_group):
        found.update(conn.execute(query).scalars())
    return found


def extension_id(conn: Connection, number: str) -> int | None:
    return conn.execute(select(extension.c.id).where(extension.c.number == number)).scalar()


def owner_of(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    """The owning username of each of these extensions that has one."""
    if not ids:
        return {}
    rows = conn.execute(select(app_user.c.login_extension_id, app_user.c.username)
                        .where(app_user.c.login_extension_id.in_(list(ids))))
    return {row.login_extension_id: row.username for row in rows}

