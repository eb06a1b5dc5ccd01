"""`mtctl apply`: make the store match a config file, all or nothing.

Three steps, so that a file of 100,000 extensions applies in seconds:

1. `load_state` reads the whole store once, as plain tuples (no per-row SQLAlchemy work).
2. `plan_config` (domain/planning.py) compares the file with that state in Python: what to
   add, change and remove, and every problem. Nothing is written yet.
3. `write_plan` (apply_writer.py) executes the plan in the caller's one transaction with bulk
   statements, keys for new secure phones included, and one audit row per changed object.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mtctl.domain.plan import Plan, State
from mtctl.domain.planning import ParsedFile, plan_config
from mtctl.store.rows import rows_of
from mtctl.store.tables import (
    app_user,
    category,
    extension,
    node,
    phone,
    phone_model,
    setting,
    template,
    user_webcall_extension,
    webcall_group,
    webcall_group_extension,
)

# --- the store, as plain values -----------------------------------------------------------

def load_state(conn: Connection) -> State:
    """Read the whole store (without keys) in a handful of queries."""
    names: dict[str, dict[int, str]] = {}
    ids: dict[str, dict[str, int]] = {}
    for kind, table in (("node", node), ("category", category), ("model", phone_model),
                        ("template", template), ("group", webcall_group)):
        rows = rows_of(conn, select(table.c.id, table.c.name))
        names[kind] = dict(rows)
        ids[kind] = {name: row_id for row_id, name in rows}
    category_name = names["category"]
    model_name, template_name, node_name = names["model"], names["template"], names["node"]
    models = {name: (vendor, kind, bool(qr), profile)
              for name, vendor, kind, qr, profile in rows_of(
                  conn, select(phone_model.c.name, phone_model.c.vendor, phone_model.c.kind,
                               phone_model.c.qr_provisionable, phone_model.c.profile))}
    templates = {name: (bool(webcall), bool(secure), lifetime, category_name.get(cat))
                 for name, webcall, secure, lifetime, cat in rows_of(
                     conn, select(template.c.name, template.c.for_webcall, template.c.secure,
                                  template.c.key_lifetime_days, template.c.category_id))}
    extensions = {number: (ext_id, node_name[node_id], display, timeout)
                  for ext_id, number, node_id, display, timeout in rows_of(
                      conn, select(extension.c.id, extension.c.number, extension.c.node_id,
                                   extension.c.display_name, extension.c.ring_timeout))}
    number_of = {values[0]: number for number, values in extensions.items()}
    phones: dict[int, dict[int, tuple[Any, ...]]] = defaultdict(dict)
    for (phone_id, ext_id, node_id, position, order, enabled, model_id, template_id, cat,
         location, secure, publishable, mac, has_key, has_expiry) in rows_of(conn, select(
            phone.c.id, phone.c.extension_id, phone.c.node_id, phone.c.position,
            phone.c.ring_order, phone.c.enabled, phone.c.model_id, phone.c.template_id,
            phone.c.category_id, phone.c.location, phone.c.secure, phone.c.publishable,
            phone.c.mac, phone.c.ha1.is_not(None), phone.c.key_expires_at.is_not(None))):
        phones[ext_id][position] = (
            phone_id, node_name[node_id], order, bool(enabled), model_name[model_id],
            template_name[template_id], category_name.get(cat), location, bool(secure),
            bool(publishable), mac, bool(has_key), bool(has_expiry))
    members: dict[int, list[str]] = defaultdict(list)
    for group_id, ext_id in rows_of(conn, select(
            webcall_group_extension.c.group_id, webcall_group_extension.c.extension_id)
            .order_by(webcall_group_extension.c.group_id, webcall_group_extension.c.rank,
                      webcall_group_extension.c.extension_id)):
        members[group_id].append(number_of[ext_id])
    groups = {name: tuple(members[group_id]) for name, group_id in ids["group"].items()}
    own: dict[int, list[str]] = defaultdict(list)
    for user_id, ext_id in rows_of(conn, select(
            user_webcall_extension.c.user_id, user_webcall_extension.c.extension_id)
            .order_by(user_webcall_extension.c.user_id, user_webcall_extension.c.rank,
                      user_webcall_extension.c.extension_id)):
        own[user_id].append(number_of[ext_id])
    users = {username: (user_id, display, number_of[login], mode, license_, tuple(own[user_id]),
                        names["group"].get(group_id), position)
             for user_id, username, display, login, mode, license_, group_id, position in rows_of(
                 conn, select(app_user.c.id, app_user.c.username, app_user.c.display_name,
                              app_user.c.login_extension_id, app_user.c.webcall_mode,
                              app_user.c.webcall_license, app_user.c.webcall_group_id,
                              app_user.c.webcall_position))}
    settings = dict(rows_of(conn, select(setting.c.key, setting.c.value)))
    addresses = dict(rows_of(conn, select(node.c.name, node.c.sip_address)))
    return State(settings, ids, models, templates, groups, extensions, phones, users,
                 addresses)


# --- applying -----------------------------------------------------------------------------

def apply_config(conn: Connection, parsed: ParsedFile, *, actor: str, prune: bool,
                 dry_run: bool, now: datetime | None = None, state: State | None = None) -> Plan:
    """Plan, and unless dry_run or the file has problems, write the plan in this transaction.
    state: what `load_state` read in this same transaction, if the caller has read it."""
    from mtctl.store.apply_writer import write_plan

    state = load_state(conn) if state is None else state
    plan = plan_config(state, parsed, prune=prune)
    if not dry_run and not plan.problems and plan.changes:
        parsed.release()  # the plan holds what is left to do; nothing is shown of the file
        write_plan(conn, state, plan, actor=actor, now=now or datetime.now(UTC))
        from mtctl.store.webcall import end_invalid_sessions

        end_invalid_sessions(conn, actor=actor)  # a user's Web Call extensions changed
    return plan
