"""Planning `mtctl apply`: compare a config file with the store, as plain values.

`plan_config` takes the store read as names (a `State`) and a parsed file, and returns what to
add, change and remove, and every problem — unknown references, and the rules MT001–MT015
run by the same domain functions single writes use, over the state the store would reach
(each extension and user the plan touches, with what the store keeps of it). No I/O: the
store reads the state (store/apply.py) and writes the plan (store/apply_writer.py).

Objects the plan does not touch are not checked again: every write keeps the store valid
(and `mtctl check` looks at all of it), so a file equal to the store plans in seconds.

Objects the file does not name are left alone, unless `prune`. The seeded phone models and
templates count as part of every file: `prune` resets them to the seed instead of removing
them, so a file that does not list them keeps them as shipped.

Long because: one planner walks the file once in dependency order (settings, catalog,
groups, extensions — each checked by the rules as it is planned, and kept only when a user or
group names it —, users, then the users' rules); each step reads what the earlier ones merged
and marked as touched, held on one object. The pieces that stand alone are apart: the reached
state in prospect.py, where a rule points in a file in rule_locations.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Callable, Container, Mapping
from functools import cache
from typing import Any, Protocol

from mtctl.domain.catalog import SEEDED_MODELS, SEEDED_TEMPLATES
from mtctl.domain.config_keys import SETTINGS, flat_settings
from mtctl.domain.devices import normalise_mac, shown_mac
from mtctl.domain.model import DEFAULT_RING_TIMEOUT, ExtensionSpec, UserSpec
from mtctl.domain.plan import (
    EXTENSION_FIELDS,
    FIELDS,
    PHONE_FIELDS,
    PHONE_VALUES,
    USER_FIELDS,
    Change,
    Plan,
    State,
)
from mtctl.domain.problems import Problem
from mtctl.domain.prospect import FileExtension, FilePhone, Prospect
from mtctl.domain.rule_locations import FILE_HINTS, USER_RULE_FIELDS, phone_field
from mtctl.domain.rules import Violation, extension_violations, user_violations


class ParsedFile(Protocol):
    """What planning needs of a parsed file (formats/pbx_file gives it). Planning consumes
    the document's extensions: a parsed file is planned once."""

    doc: dict[str, Any]
    problems: list[Problem]

    def is_broken(self, section: str, name: str | None = None) -> bool: ...

    def release(self) -> None: ...


@cache
def seed() -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """The phone models and templates a new store starts with, in FIELDS order."""
    models = {m.name: (m.vendor, m.kind, m.qr_provisionable, m.profile) for m in SEEDED_MODELS}
    templates = {t.name: (t.for_webcall, t.secure, t.key_lifetime_days, t.category)
                 for t in SEEDED_TEMPLATES}
    return models, templates


# --- the plan -----------------------------------------------------------------------------

def plan_config(state: State, parsed: ParsedFile, *, prune: bool) -> Plan:
    """Compare the file with the store: the changes, and every problem with its location."""
    planner = _Planner(state, parsed, prune)
    planner.run()
    return planner.plan


class _Planner:
    def __init__(self, state: State, parsed: ParsedFile, prune: bool) -> None:
        self.state, self.parsed, self.doc, self.prune = state, parsed, parsed.doc, prune
        self.plan = Plan(problems=list(parsed.problems))
        self.changes = self.plan.changes
        self.removals: list[Change] = []
        self.settings: dict[str, str] = {}
        self.nodes: set[str] = set()
        self.categories: set[str] = set()
        self.models: dict[str, tuple[Any, ...]] = {}
        self.templates: dict[str, tuple[Any, ...]] = {}
        self.groups: dict[str, tuple[str, ...]] = {}
        self.file_extensions: dict[str, FileExtension] = {}  # those a user or group names
        self.file_numbers: set[str] = set()  # every extension of the file
        self.extension_problems: dict[str, list[Problem]] = {}  # number → the rules' problems
        self.file_macs: list[tuple[str, int, int, str]] = []  # number, position, index, MAC
        self.listed_macs: set[str] = set()  # "EXT:POS" of stored phones with a MAC the file lists
        self.users: dict[str, tuple[Any, ...]] = {}  # username → USER_FIELDS, merged
        self.touched_extensions: set[str] = set()
        self.touched_users: set[str] = set()
        self.changed_groups: set[str] = set()
        self.needs_key: tuple[str | int, ...] | None = None  # the first phone that needs one

    def problem(self, path: tuple[str | int, ...] | None, message: str, hint: str = "",
                rule: str | None = None) -> None:
        self.plan.problems.append(Problem(path, message, hint, rule))

    def run(self) -> None:
        self._settings()
        self.nodes = self._nodes()
        self.categories = self._names("category", "categories")
        self._models()
        self._templates()
        self._rotation()
        self._groups()
        self._extensions()
        self._unique_macs()
        self._users()
        self._group_members()
        self._logins()
        self._validate()
        if self.prune and not self.doc and self.removals:
            # Most likely a generator that failed before writing anything (`gen | mtctl apply
            # --prune -`): that must not wipe the PBX. A file that says so still can.
            self.plan.problems.append(Problem(
                (), "the file is empty, and with --prune applying it would remove everything "
                "in the store", "check what wrote the file; to empty the store on purpose, "
                "apply a file that says `nodes = []`", line=1))
        self.changes.extend(self.removals)

    # catalog and settings

    def _settings(self) -> None:
        state = self.state.settings
        wanted: dict[str, str] = {}
        for name, value in flat_settings(self.doc.get("settings", {})).items():
            try:
                wanted[name] = SETTINGS[name].parse(str(value).strip())
            except ValueError as exc:
                group, key = name.split(".", 1)
                self.problem(("settings", group, key), f"{value!r} is not a valid {name}",
                             f"use {exc}")
        for name, value in wanted.items():
            before = state.get(name)
            if before is None:
                self.changes.append(Change("add", "config", name, (value,)))
            elif before != value:
                self.changes.append(Change("change", "config", name,
                                           diff={"value": [before, value]}))
        if self.prune:
            self.removals += [Change("remove", "config", name, (value,))
                              for name, value in sorted(state.items()) if name not in wanted]
        self.settings = ({} if self.prune else dict(state)) | wanted

    def _nodes(self) -> set[str]:
        """Nodes: a list of names (their addresses stay as they are), or a table of nodes with
        their SIP addresses (a node without one has none)."""
        section = self.doc.get("nodes", [])
        if not isinstance(section, dict):
            return self._names("node", "nodes")
        from mtctl.domain.nodes import SHARED_HINT, address_holder, parse_sip_address
        from mtctl.errors import UsageError

        stored, addresses = self.state.ids["node"], self.state.node_addresses
        wanted: dict[str, str | None] = {}
        for name, entry in section.items():
            raw = entry.get("sip_address")
            try:
                wanted[name] = str(parse_sip_address(raw)) if raw is not None else None
            except UsageError as exc:
                self.problem(("nodes", name, "sip_address"), exc.message, exc.hint or "")
                wanted[name] = addresses.get(name)
        final = ({} if self.prune else dict(addresses)) | wanted
        for name, address in wanted.items():
            other = address_holder(final, name, address)
            if other is not None and addresses.get(name) != address:
                self.problem(("nodes", name, "sip_address"),
                             f"SIP address {address} is node {other}'s", SHARED_HINT)
        for name, address in wanted.items():
            if name not in stored:
                self.changes.append(Change("add", "node", name, (address,)))
            elif addresses.get(name) != address:
                self.changes.append(Change("change", "node", name,
                                           diff={"sip_address": [addresses.get(name), address]}))
        merged = set(wanted)
        if self.prune:
            self.removals += [Change("remove", "node", name, (addresses.get(name),))
                              for name in sorted(stored) if name not in merged]
        else:
            merged |= set(stored)
        return merged

    def _names(self, kind: str, section: str) -> set[str]:
        stored = self.state.ids[kind]
        wanted = list(dict.fromkeys(self.doc.get(section, [])))
        self.changes += [Change("add", kind, name) for name in wanted if name not in stored]
        merged = set(wanted)
        if self.prune:
            self.removals += [Change("remove", kind, name) for name in sorted(stored)
                              if name not in merged]
        else:
            merged |= set(stored)
        return merged

    def _catalog(self, kind: str, wanted: dict[str, tuple[Any, ...]],
                 stored: Mapping[str, tuple[Any, ...]], seeded: Mapping[str, tuple[Any, ...]],
                 ) -> dict[str, tuple[Any, ...]]:
        if self.prune:
            wanted = {name: values for name, values in seeded.items() if name not in wanted} \
                | wanted
        for name, values in wanted.items():
            before = stored.get(name)
            if before is None:
                self.changes.append(Change("add", kind, name, values))
            elif before != values:
                self.changes.append(Change("change", kind, name, diff={
                    f: [b, a] for f, b, a in zip(FIELDS[kind], before, values, strict=True)
                    if b != a}))
        if self.prune:
            self.removals += [Change("remove", kind, name, values)
                              for name, values in sorted(stored.items()) if name not in wanted]
            return dict(wanted)
        return dict(stored) | wanted

    def _models(self) -> None:
        wanted = {name: (m.get("vendor", ""), m["kind"], m.get("qr", False), m.get("profile"))
                  for name, m in self.doc.get("models", {}).items()}
        self.models = self._catalog("model", wanted, self.state.models, seed()[0])

    def _templates(self) -> None:
        wanted = {}
        for name, t in self.doc.get("templates", {}).items():
            cat = t.get("category")
            if cat is not None and cat not in self.categories and not self.parsed.is_broken(
                    "categories"):
                self.problem(("templates", name, "category"), f"unknown category {cat!r}",
                             "list it under categories, or see: mtctl category list")
            wanted[name] = (t.get("for_webcall", False), t.get("secure", False),
                            t.get("key_lifetime_days"), cat)
        self.templates = self._catalog("template", wanted, self.state.templates, seed()[1])

    def _rotation(self) -> None:
        """A rotation window at least as long as a key lifetime would rotate every key."""
        from mtctl.domain.config_keys import rotation_conflicts

        lifetimes = {name: values[2] for name, values in self.templates.items()}
        for conflict in rotation_conflicts(self.settings, lifetimes):
            if conflict.where.startswith("template "):
                name = conflict.where.removeprefix("template ")
                path: tuple[str, ...] | None = (("templates", name, "key_lifetime_days")
                                                if name in self.doc.get("templates", {})
                                                else None)
            else:
                path = ("settings", "keys", "rotate_within_days")
            self.problem(path, conflict.message, conflict.hint)

    def _groups(self) -> None:
        wanted = {name: tuple(g.get("extensions", ())) for name, g in
                  self.doc.get("groups", {}).items()}
        for name, numbers in wanted.items():
            before = self.state.groups.get(name)
            if before is None:
                self.changes.append(Change("add", "group", name, (numbers,)))
                self.changed_groups.add(name)
            elif before != numbers:
                self.changes.append(Change("change", "group", name,
                                           diff={"extensions": [before, numbers]}))
                self.changed_groups.add(name)
        if self.prune:
            self.removals += [Change("remove", "group", name, (numbers,))
                              for name, numbers in sorted(self.state.groups.items())
                              if name not in wanted]
            self.groups = wanted
        else:
            self.groups = dict(self.state.groups) | wanted

    # extensions and phones

    def _extensions(self) -> None:
        state = self.state
        resolve = self._phone_resolver()
        changes = self.changes
        check_nodes = not self.parsed.is_broken("nodes")
        named = self._named_anywhere()
        catalog_touched = self._catalog_touches()
        mac_numbers = self._stored_macs()[1]
        mac_at = PHONE_FIELDS.index("mac")
        specs = self._prospect(keep=())
        # Each extension of the document is let go once planned: a large file's document is
        # much of its memory, and nothing reads it again (what users name is kept above).
        extensions = self.doc.get("extensions", {})
        pending = deque(extensions.items())
        extensions.clear()
        while pending:
            number, entry = pending.popleft()
            values = (entry["node"], entry.get("name"), entry.get("ring_timeout",
                                                                  DEFAULT_RING_TIMEOUT))
            if check_nodes and values[0] not in self.nodes:
                self.problem(("extensions", number, "node"), f"unknown node {values[0]!r}",
                             "list it under nodes, or see: mtctl node list")
            stored = state.extensions.get(number)
            touched = False
            if stored is None:
                changes.append(Change("add", "extension", number, values))
                touched = True
            elif stored[1:] != values:
                changes.append(Change("change", "extension", number, diff={
                    f: [b, a] for f, b, a in zip(EXTENSION_FIELDS, stored[1:], values,
                                                 strict=True) if b != a}))
                touched = True
            stored_phones = state.phones.get(stored[0], {}) if stored else {}
            # A phone on another node than its extension (MT008) is put back on it; phones
            # that follow their extension to a new node are not changes of their own.
            home = stored[1] if stored else None
            phones = []
            for index, p in enumerate(entry.get("phones", ())):
                position = p["position"]
                target = resolve(p, number, index)
                before = stored_phones.get(position)
                phones.append(FilePhone(index, position, target, p, before))
                if before is None:
                    changes.append(Change("add", "phone", f"{number}:{position}", target))
                    touched = True
                    if target[6] and self.needs_key is None:
                        self.needs_key = ("extensions", number, "phones", index)
                elif before[PHONE_VALUES] != target or before[1] != home:
                    diff = {f: [b, a] for f, b, a in zip(PHONE_FIELDS, before[PHONE_VALUES], target,
                                                         strict=True) if b != a}
                    if before[1] != home:
                        diff["node"] = [before[1], values[0]]
                    changes.append(Change("change", "phone", f"{number}:{position}",
                                          diff=diff))
                    touched = True
                    if target[6] and not before[8] and self.needs_key is None:
                        self.needs_key = ("extensions", number, "phones", index)
            if self.prune and stored_phones:
                listed = {p.position for p in phones}
                for position in sorted(stored_phones):
                    if position not in listed:
                        self.removals.append(Change("remove", "phone", f"{number}:{position}",
                                                    stored_phones[position][PHONE_VALUES]))
                        touched = True
            file_extension = FileExtension(number, values, phones, stored)
            self.file_numbers.add(number)
            if number in named:  # the users' rules look at it again
                self.file_extensions[number] = file_extension
            if number in mac_numbers:
                self.listed_macs.update(f"{number}:{fp.position}" for fp in phones)
            self.file_macs += [(number, fp.position, fp.index, fp.values[mac_at])
                               for fp in phones if fp.values[mac_at] is not None]
            if touched or number in catalog_touched:
                self.touched_extensions.add(number)
                self._check_extension(specs.build(number, file_extension), file_extension)
        for number in sorted(catalog_touched - self.file_numbers):
            self.touched_extensions.add(number)
            self._check_extension(specs.get(number), None)
        if self.prune:
            for number, stored in sorted(state.extensions.items()):
                if number in self.file_numbers:
                    continue
                for position, row in sorted(state.phones.get(stored[0], {}).items()):
                    self.removals.append(Change("remove", "phone", f"{number}:{position}",
                                                row[PHONE_VALUES]))
                self.removals.append(Change("remove", "extension", number, stored[1:]))

    def _mac(self, p: dict[str, Any], path: tuple[str | int, ...]) -> str | None:
        """A file phone's MAC as 12 lowercase hex digits (a problem when it is not a MAC)."""
        text = p.get("mac")
        if text is None:
            return None
        try:
            return normalise_mac(text)
        except ValueError as exc:
            self.problem((*path, "mac"), f"bad MAC address {text!r}", f"use {exc}")
            return None

    def _stored_macs(self) -> tuple[dict[str, str], set[str]]:
        """The store's phones with a MAC ("EXT:POS" → MAC), and their extensions."""
        mac_at = PHONE_FIELDS.index("mac")
        number_of = {values[0]: number for number, values in self.state.extensions.items()}
        held = {f"{number_of[ext_id]}:{position}": row[PHONE_VALUES][mac_at]
                for ext_id, stored in self.state.phones.items()
                for position, row in stored.items() if row[PHONE_VALUES][mac_at]}
        return held, {ref.rsplit(":", 1)[0] for ref in held}

    def _unique_macs(self) -> None:
        """A MAC names one phone in the store the file leads to."""
        removed = {c.name for c in self.removals if c.kind == "phone"}
        holders = {mac: ref for ref, mac in self._stored_macs()[0].items()
                   if ref not in self.listed_macs and ref not in removed}
        for number, position, index, mac in self.file_macs:
            other = holders.setdefault(mac, f"{number}:{position}")
            if other != f"{number}:{position}":
                self.problem(("extensions", number, "phones", index, "mac"),
                             f"MAC {shown_mac(mac)} is also phone {other}'s",
                             "a MAC names one phone: give one of them another MAC")

    def _phone_resolver(self) -> Callable[[dict[str, Any], str, int], tuple[Any, ...]]:
        """A function from a file phone to its PHONE_FIELDS, defaults resolved and references
        checked; resolutions are cached by the keys that decide them, and whole phones by the
        parsed dict (the parser shares one among phones written alike) while planning holds
        the document."""
        cache_: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        same: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # one tuple for phones alike
        by_dict: dict[int, tuple[Any, ...]] = {}  # id of a phone's dict without a MAC → values

        def resolve(p: dict[str, Any], number: str, index: int) -> tuple[Any, ...]:
            values = by_dict.get(id(p))
            if values is not None:
                return values
            model = p["model"]
            key = (model, p.get("template"), p.get("category"), p.get("secure"))
            found = cache_.get(key)
            known = True
            if found is None:
                found = self._defaults(key, number, index)
                if found is not None:
                    cache_[key] = found
                else:
                    known = False
                    found = (p.get("template") or "default", p.get("category") or None,
                             bool(p.get("secure")))
            values = (p.get("order", 1), p.get("enabled", True), model, found[0], found[1],
                      p.get("location"), found[2], p.get("publishable", False),
                      self._mac(p, ("extensions", number, "phones", index)))
            values = same.setdefault(values, values)
            if known and "mac" not in p:  # nothing to report again on a phone written alike
                by_dict[id(p)] = values
            return values

        return resolve

    def _defaults(self, key: tuple[Any, ...], number: str, index: int,
                  ) -> tuple[Any, ...] | None:
        """(template, category, secure) of a phone; None (and problems) when a name is unknown."""
        models, templates = self.models, self.templates
        model, template_name, category_name, secure = key
        path = ("extensions", number, "phones", index)
        ok = True
        model_values = models.get(model)
        if model_values is None:
            self.problem((*path, "model"), f"unknown model {model!r}",
                         "list it under [models], or see: mtctl model list")
            ok = False
        kind = model_values[1] if model_values else None
        if template_name is None:
            template_name = "webfon" if kind == "webcall" else "default"
        template_values = templates.get(template_name)
        if template_values is None:
            self.problem((*path, "template") if key[1] else path,
                         f"unknown template {template_name!r}",
                         "list it under [templates], or see: mtctl template list")
            ok = False
        if category_name is None:
            category_name = template_values[3] if template_values else None
        elif category_name == "":
            category_name = None
        elif category_name not in self.categories and not self.parsed.is_broken("categories"):
            self.problem((*path, "category"), f"unknown category {category_name!r}",
                         "list it under categories, or see: mtctl category list")
            ok = False
        if secure is None:
            secure = bool(template_values and template_values[1] and kind != "webcall")
        return (template_name, category_name, secure) if ok else None

    def _catalog_touches(self) -> set[str]:
        """Extensions whose stored phones use a model or template this file changes."""
        changed = {(c.kind, c.name) for c in self.changes
                   if c.action == "change" and c.kind in ("model", "template")}
        if not changed:
            return set()
        return {number for number, stored in self.state.extensions.items()
                if any(("model", row[4]) in changed or ("template", row[5]) in changed
                       for row in self.state.phones.get(stored[0], {}).values())}

    def _named_anywhere(self) -> set[str]:
        """Every extension a user or group of the file or the store names (a superset of those
        the users' rules look at)."""
        named = {number for numbers in self.groups.values() for number in numbers}
        for u in self.doc.get("users", {}).values():
            named.add(u["login"])
            named.update(u.get("webcall_extensions", ()))
        for stored in self.state.users.values():
            named.add(stored[2])
            named.update(stored[5])
        return named

    def _extension_known(self, number: str) -> bool:
        if number in self.file_numbers:
            return True
        return not self.prune and number in self.state.extensions

    # users

    def _users(self) -> None:
        state = self.state
        check_groups = not self.parsed.is_broken("groups")
        file_users: dict[str, tuple[Any, ...]] = {}
        for username, u in self.doc.get("users", {}).items():
            mode = u.get("webcall_mode")
            values = (u["name"], u["login"], mode,
                      u.get("webcall_license", "dedicated" if mode else None),
                      tuple(u.get("webcall_extensions", ())), u.get("webcall_group"),
                      u.get("webcall_position"))
            self._user_references(username, values, check_groups)
            file_users[username] = values
            stored = state.users.get(username)
            if stored is None:
                self.changes.append(Change("add", "user", username, values))
                self.touched_users.add(username)
            elif stored[1:] != values:
                self.changes.append(Change("change", "user", username, diff={
                    f: [b, a] for f, b, a in zip(USER_FIELDS, stored[1:], values, strict=True)
                    if b != a}))
                self.touched_users.add(username)
        if self.prune:
            self.removals[:0] = [Change("remove", "user", name, stored[1:])
                                 for name, stored in sorted(state.users.items())
                                 if name not in file_users]
            self.users = file_users
        else:
            self.users = {name: stored[1:] for name, stored in state.users.items()} | file_users

    def _user_references(self, username: str, values: tuple[Any, ...],
                         check_groups: bool) -> None:
        path = ("users", username)
        if not self._extension_known(values[1]) and not self.parsed.is_broken(
                "extensions", values[1]):
            self.problem((*path, "login"), f"user {username} has login number {values[1]!r}, "
                         "which is not an existing extension", "add the extension under "
                         "[extensions], or choose another login", "MT012")
        for index, number in enumerate(values[4]):
            if not self._extension_known(number) and not self.parsed.is_broken(
                    "extensions", number):
                self.problem((*path, "webcall_extensions", index),
                             f"unknown extension {number!r}", "add it under [extensions]")
        group = values[5]
        if group is not None and group not in self.groups and check_groups \
                and not self.parsed.is_broken("groups", group):
            self.problem((*path, "webcall_group"), f"unknown Web Call group {group!r}",
                         "add it under [groups], or see: mtctl group list")

    def _group_members(self) -> None:
        for name, group in self.doc.get("groups", {}).items():
            for index, number in enumerate(group.get("extensions", ())):
                if not self._extension_known(number) and not self.parsed.is_broken(
                        "extensions", number):
                    self.problem(("groups", name, "extensions", index),
                                 f"unknown extension {number!r}", "add it under [extensions]")

    def _logins(self) -> None:
        """MT012: one owner per login extension."""
        owners: dict[str, list[str]] = defaultdict(list)
        for username, values in self.users.items():
            owners[values[1]].append(username)
        file_users = self.doc.get("users", {})
        for number, names in owners.items():
            if len(names) < 2:
                continue
            for username in names:
                others = ", ".join(n for n in names if n != username)
                path = ("users", username, "login") if username in file_users else None
                self.problem(path, f"user {username} logs in with {number}, which is also "
                             f"the login of {others}", "give each user its own login "
                             "extension (or --prune the users the file no longer lists)",
                             "MT012")

    # the rules, over the state the store would reach

    def _validate(self) -> None:
        touched_users = set(self.touched_users)
        if self.touched_extensions or self.changed_groups:
            touched = self.touched_extensions
            for username, values in self.users.items():
                if values[5] in self.changed_groups or not touched.isdisjoint(
                        self._named(values)):
                    touched_users.add(username)
        for number in sorted(self.extension_problems):
            self.plan.problems += self.extension_problems[number]
        specs = self._prospect(keep=self.shared(touched_users))
        for username in sorted(touched_users):
            values = self.users[username]
            named = self._named(values)
            if any(self.parsed.is_broken("extensions", n) for n in named) or (
                    values[5] and self.parsed.is_broken("groups", values[5])):
                continue  # its schema problems are reported; the rules would only guess
            user = UserSpec(username=username, display_name=values[0], login=values[1],
                            webcall_mode=values[2], webcall_license=values[3],
                            webcall_extensions=values[4], webcall_group=values[5],
                            group_extensions=self.groups.get(values[5] or "", ()),
                            webcall_position=values[6])
            for violation in user_violations(user, specs, login_owner=username):
                if violation.rule == "MT012" and "not an existing extension" in \
                        violation.message:
                    continue  # reported with its location among the references
                self._user_problem(violation, username)
        if self.needs_key is not None and not (self.settings.get("sip.realm")
                                               or self.settings.get("sip.domain")):
            self.problem(("settings",) if "settings" in self.doc else self.needs_key,
                         "secure phones need keys, and keys need the SIP domain, which is "
                         "not set", "add [settings] sip.domain = \"pbx.example.com\", or run: "
                         "mtctl config set sip.domain pbx.example.com", "MT011")

    def _prospect(self, keep: Container[str]) -> Prospect:
        return Prospect(self.state, self.file_extensions, prune=self.prune, models=self.models,
                        templates=self.templates, keep=keep)

    def shared(self, usernames: set[str]) -> set[str]:
        """Extensions more than one of these users names (their specs are kept once built)."""
        counts = Counter(n for name in usernames for n in self._named(self.users[name]))
        return {number for number, count in counts.items() if count > 1}

    def _check_extension(self, spec: ExtensionSpec | None, entry: FileExtension | None) -> None:
        """The rules over one extension as the plan leaves it; its problems wait in
        extension_problems, to be reported in number order with the others."""
        if spec is None:
            return
        found = [self._extension_problem(violation, spec.number, entry)
                 for violation in extension_violations(spec)]
        if found:
            self.extension_problems[spec.number] = found

    def _named(self, values: tuple[Any, ...]) -> set[str]:
        """The extensions a user (USER_FIELDS) names: its login, Web Call ones, its group's."""
        return {values[1], *values[4], *self.groups.get(values[5] or "", ())}

    def _extension_problem(self, violation: Violation, number: str,
                           entry: FileExtension | None) -> Problem:
        path: tuple[str | int, ...] | None = ("extensions", number) if entry else None
        if violation.object.startswith("phone ") and entry is not None:
            position = int(violation.object.rsplit(":", 1)[1])
            matches = [p for p in entry.phones if p.position == position]
            if matches:
                phone_ = matches[-1] if violation.rule == "MT002" else matches[0]
                path = ("extensions", number, "phones", phone_.index)
                field_ = phone_field(violation.rule, phone_.entry)
                if field_ in phone_.entry:
                    path = (*path, field_)
        elif violation.rule == "MT001" and entry is not None:
            path = ("extensions", number, "phones")
        return _rule_problem(path, violation)

    def _user_problem(self, violation: Violation, username: str) -> None:
        entry = self.doc.get("users", {}).get(username)
        path: tuple[str | int, ...] | None = None
        if entry is not None:
            path = ("users", username)
            for field_ in USER_RULE_FIELDS.get(violation.rule, ()):
                if field_ in entry:
                    path = (*path, field_)
                    break
        self.plan.problems.append(_rule_problem(path, violation))



def _rule_problem(path: tuple[str | int, ...] | None, violation: Violation) -> Problem:
    hint = FILE_HINTS.get(violation.rule, violation.hint)
    if path is None:
        hint = f"{hint} (it is in the store, not in this file)"
    return Problem(path, f"{violation.object} {violation.message}", hint, violation.rule)
