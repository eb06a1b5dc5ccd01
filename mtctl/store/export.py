"""`mtctl export`: the store as a config file that `mtctl apply` accepts.

The document is canonical so that diffs in version control stay small: sections in a fixed
order, names and numbers sorted, phones by position, and every value equal to its default
left out (order 1, enabled, not publishable, the default template of the model's kind, the
template's category and `secure`, ...). Seeded phone models and templates appear only when
they differ from the seed. Keys and tokens are never part of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from mtctl.domain.config_keys import nested_settings
from mtctl.domain.devices import shown_mac
from mtctl.domain.model import DEFAULT_RING_TIMEOUT
from mtctl.domain.plan import PHONE_VALUES, State
from mtctl.domain.planning import seed
from mtctl.formats.pbx_file.schema import setting_types
from mtctl.store.apply import load_state


def export_document(conn: Connection) -> dict[str, Any]:
    """The store as a config document (plain dicts and lists, in file order)."""
    return document(load_state(conn))


def document(state: State) -> dict[str, Any]:
    seeded_models, seeded_templates = seed()
    doc: dict[str, Any] = {}
    types = setting_types()
    settings = {name: int(value) if types[name] is int else value
                for name, value in sorted(state.settings.items()) if name in types}
    if settings:
        doc["settings"] = nested_settings(settings)
    for section, kind in (("nodes", "node"), ("categories", "category")):
        if state.ids[kind]:
            doc[section] = sorted(state.ids[kind])
    if any(state.node_addresses.values()):  # a cluster: nodes with their SIP addresses
        doc["nodes"] = {name: {"sip_address": address} if address else {}
                        for name, address in sorted(state.node_addresses.items())}
    models = {name: _model(values) for name, values in sorted(state.models.items())
              if seeded_models.get(name) != values}
    templates = {name: _template(values) for name, values in sorted(state.templates.items())
                 if seeded_templates.get(name) != values}
    groups = {name: {"extensions": list(numbers)} if numbers else {}
              for name, numbers in sorted(state.groups.items())}
    extensions = {number: _extension(state, values)
                  for number, values in sorted(state.extensions.items())}
    users = {name: _user(values[1:]) for name, values in sorted(state.users.items())}
    for section, entries in (("models", models), ("templates", templates), ("groups", groups),
                             ("extensions", extensions), ("users", users)):
        if entries:
            doc[section] = entries
    return doc


def _model(values: tuple[Any, ...]) -> dict[str, Any]:
    vendor, kind, qr, profile = values
    entry: dict[str, Any] = {}
    if vendor:
        entry["vendor"] = vendor
    entry["kind"] = kind
    if qr:
        entry["qr"] = True
    if profile is not None:
        entry["profile"] = profile
    return entry


def _template(values: tuple[Any, ...]) -> dict[str, Any]:
    for_webcall, secure, lifetime, category_name = values
    entry: dict[str, Any] = {}
    if for_webcall:
        entry["for_webcall"] = True
    if secure:
        entry["secure"] = True
    if lifetime is not None:
        entry["key_lifetime_days"] = lifetime
    if category_name is not None:
        entry["category"] = category_name
    return entry


def _extension(state: State, values: tuple[Any, ...]) -> dict[str, Any]:
    ext_id, node_name, display_name, ring_timeout = values
    entry: dict[str, Any] = {"node": node_name}
    if display_name is not None:
        entry["name"] = display_name
    if ring_timeout != DEFAULT_RING_TIMEOUT:
        entry["ring_timeout"] = ring_timeout
    phones = state.phones.get(ext_id)
    if phones:
        entry["phones"] = [_phone(state, position, phones[position])
                           for position in sorted(phones)]
    return entry


def _phone(state: State, position: int, row: tuple[Any, ...]) -> dict[str, Any]:
    order, enabled, model, template_name, category_name, location, secure, pub, mac = \
        row[PHONE_VALUES]
    kind = state.models[model][1]
    template_values = state.templates[template_name]
    entry: dict[str, Any] = {"position": position, "model": model}
    if order != 1:
        entry["order"] = order
    if not enabled:
        entry["enabled"] = False
    if template_name != ("webfon" if kind == "webcall" else "default"):
        entry["template"] = template_name
    if category_name != template_values[3]:
        entry["category"] = category_name or ""
    if location is not None:
        entry["location"] = location
    if secure != (template_values[1] and kind != "webcall"):
        entry["secure"] = secure
    if pub:
        entry["publishable"] = True
    if mac is not None:
        entry["mac"] = shown_mac(mac)
    return entry


def _user(values: tuple[Any, ...]) -> dict[str, Any]:
    display_name, login, mode, license_, webcall_extensions, group, position = values
    entry: dict[str, Any] = {"name": display_name, "login": login}
    if mode is not None:
        entry["webcall_mode"] = mode
    if license_ != ("dedicated" if mode else None):
        entry["webcall_license"] = license_
    if webcall_extensions:
        entry["webcall_extensions"] = list(webcall_extensions)
    if group is not None:
        entry["webcall_group"] = group
    if position is not None:
        entry["webcall_position"] = position
    return entry
