"""Rules MT001–MT016 (SPEC §2) over plain values, and the warnings `check` reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from mtctl.domain.devices import DEVICE_PROFILES, never_provisioned
from mtctl.domain.model import MAX_PHONES, POSITIONS, ExtensionSpec, PhoneSpec, UserSpec


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule (or a warning): rule id, the object it is about, what and how to fix."""

    rule: str
    object: str
    message: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "object": self.object, "message": self.message}


def _phone(phone: PhoneSpec) -> str:
    return f"phone {phone.ref}"


def valid_extension_number(number: str) -> bool:
    """MT014: digits only (leading zeros allowed)."""
    return bool(number) and number.isascii() and number.isdigit()


def extension_number_violation(number: str) -> Violation | None:
    if valid_extension_number(number):
        return None
    return Violation(
        "MT014", f"extension {number!r}", "is not a valid extension number",
        "use digits only, e.g. 40710",
    )


def phone_violations(phone: PhoneSpec, *, extension_node: str | None = None) -> list[Violation]:
    """Rules that concern one phone on its own: MT002 range, MT003–MT006, MT008, MT011, MT013."""
    found: list[tuple[str, str, str]] = []  # rule, message, hint
    if phone.position not in POSITIONS:
        found.append(("MT002", f"has position {phone.position}, outside 0–7",
                      "choose a position from 0 to 7"))
    if phone.vendor.lower() == "cisco" and phone.position != 0:
        found.append(("MT003", f"is a Cisco phone ({phone.model}) at position "
                      f"{phone.position}", "put Cisco phones at position 0"))
    if phone.order < 0:
        found.append(("MT004", f"has order {phone.order}",
                      "use an order of 0 (never rings) or more"))
    if phone.publishable and not phone.secure:
        found.append(("MT005", "is publishable but not secure",
                      "add --secure or drop --publishable"))
    if phone.is_webcall and (phone.secure or phone.publishable):
        found.append(("MT006", "is a Web Call phone and cannot be secure or publishable",
                      "drop --secure and --publishable"))
    if extension_node is not None and phone.node is not None and phone.node != extension_node:
        found.append(("MT008", f"names node {phone.node!r} but its extension is on node "
                      f"{extension_node!r}", "leave the phone on the extension's node (omit "
                      "--node), or move the extension"))
    if phone.secure and not (phone.has_key and phone.key_expires_at is not None):
        found.append(("MT011", "is secure but has no system-generated key with an expiry",
                      "run: mtctl keys rotate (or re-add the phone with --secure)"))
    if phone.is_webcall and not phone.template_for_webcall:
        found.append(("MT013", f"is a Web Call phone with template {phone.template!r}, which "
                      "is not for Web Call", "use --template webfon (or a template added "
                      "with --for-webcall)"))
    if not found:  # most phones: no object name to spell
        return []
    obj = _phone(phone)
    return [Violation(rule, obj, message, hint) for rule, message, hint in found]


def extension_violations(ext: ExtensionSpec) -> list[Violation]:
    """Every rule that one extension and its phones can break on their own."""
    found: list[Violation] = []
    number_problem = extension_number_violation(ext.number)
    if number_problem:
        found.append(number_problem)
    if len(ext.phones) > MAX_PHONES:
        found.append(Violation("MT001", f"extension {ext.number}",
                               f"has {len(ext.phones)} phones, more than {MAX_PHONES}",
                               "remove a phone first (mtctl phone rm EXT POS)"))
    positions = [p.position for p in ext.phones]
    if len(set(positions)) < len(positions):
        for position, count in sorted(Counter(positions).items()):
            if count > 1:
                found.append(Violation("MT002", f"phone {ext.number}:{position}",
                                       f"position {position} is used by {count} phones",
                                       "give each phone of an extension its own position"))
    for phone in sorted(ext.phones, key=_POSITION):
        found.extend(phone_violations(phone, extension_node=ext.node))
    found.extend(_webcall_phone_violations(ext))
    return found


_POSITION = attrgetter("position")


def _webcall_phone_violations(ext: ExtensionSpec) -> list[Violation]:
    """MT016: at most one Web Call phone per extension; every one after the first is reported."""
    webcall = [p for p in ext.phones if p.is_webcall]
    if len(webcall) < 2:
        return []
    webcall.sort(key=_POSITION)
    return [Violation("MT016", _phone(extra), f"is a second Web Call phone on extension "
                      f"{ext.number} (the first is {webcall[0].ref})",
                      "an extension has at most one Web Call phone: choose another model or "
                      "put it on another extension")
            for extra in webcall[1:]]


def user_violations(user: UserSpec, extensions: Mapping[str, ExtensionSpec],
                    *, login_owner: str | None = None) -> list[Violation]:
    """MT007, MT009, MT010 and MT012 for one user, given the extensions it names."""
    found: list[Violation] = []
    obj = f"user {user.username}"
    login = extensions.get(user.login) if user.login else None
    if login is None:
        found.append(Violation("MT012", obj, f"has login number {user.login!r}, which is not "
                               "an existing extension", "add the extension first "
                               "(mtctl ext add) or choose another --login"))
    elif login_owner is not None and login_owner != user.username:
        found.append(Violation("MT012", obj, f"logs in with {user.login}, owned by "
                               f"{login_owner}", "choose an extension the user owns"))
    if user.webcall_license == "pool" and user.webcall_mode == "multiterminal":
        found.append(Violation("MT007", obj, "has a pool Web Call license and cannot be in "
                               "multiterminal mode", "use --webcall-mode exclusive or "
                               "--webcall-license dedicated"))
    if user.webcall_mode == "multiterminal":
        found.extend(_multiterminal_violations(user, login, obj))
    elif user.webcall_mode == "exclusive":
        found.extend(_exclusive_violations(user, extensions, obj))
    return found


def _multiterminal_violations(user: UserSpec, login: ExtensionSpec | None,
                              obj: str) -> list[Violation]:
    found: list[Violation] = []
    others = [n for n in user.all_webcall_extensions if n != user.login]
    if others or user.webcall_group:
        found.append(Violation("MT009", obj, "is in multiterminal mode, so its Web Call "
                               "extension must be the login extension itself",
                               "drop --webcall-ext/--webcall-group or set them to the login "
                               "number"))
    if user.webcall_position is None:
        found.append(Violation("MT009", obj, "is in multiterminal mode without a Web Call "
                               "position", "set --webcall-position to the position of the "
                               "Web Call phone on the login extension"))
        return found
    if login is None:
        return found
    phone = next((p for p in login.phones if p.position == user.webcall_position), None)
    elsewhere = next((p for p in login.phones if p.is_webcall), None)
    if (phone is None or not phone.is_webcall) and elsewhere is not None:
        found.append(Violation("MT009", obj, f"is in multiterminal mode but {login.number}:"
                               f"{user.webcall_position} is not a Web Call phone",
                               f"its Web Call phone is {elsewhere.ref}: use --webcall-position "
                               f"{elsewhere.position}, or move that phone with mtctl phone set "
                               f"{login.number} {elsewhere.position} --position N"))
    elif phone is None or not phone.is_webcall:
        found.append(Violation("MT009", obj, f"is in multiterminal mode but {login.number}:"
                               f"{user.webcall_position} is not a Web Call phone",
                               f"add one: mtctl phone add {login.number} --position "
                               f"{user.webcall_position} --model 'VIVAit Call Web' --order 1"))
    elif phone.order == 0:
        found.append(Violation("MT009", obj, f"is in multiterminal mode but its Web Call phone "
                               f"{phone.ref} has order 0, so it can never ring",
                               f"mtctl phone set {login.number} {phone.position} --order 1"))
    return found


def _exclusive_violations(user: UserSpec, extensions: Mapping[str, ExtensionSpec],
                          obj: str) -> list[Violation]:
    found: list[Violation] = []
    numbers = user.all_webcall_extensions
    if not numbers:
        found.append(Violation("MT010", obj, "is in exclusive mode without a Web Call "
                               "extension", "add --webcall-ext NUMBER or --webcall-group NAME"))
    for number in numbers:
        if number == user.login:
            found.append(Violation("MT010", obj, f"is in exclusive mode but its Web Call "
                                   f"extension {number} is its login extension",
                                   "use a separate Web Call extension, or multiterminal mode"))
            continue
        ext = extensions.get(number)
        phone = None if ext is None else next((p for p in ext.phones if p.position == 0), None)
        if phone is None or not phone.is_webcall:
            found.append(Violation("MT010", obj, f"is in exclusive mode but Web Call extension "
                                   f"{number} has no Web Call phone at position 0",
                                   f"mtctl phone add {number} --position 0 --model "
                                   "'VIVAit Call Web'"))
    return found


def password_violation(phone: PhoneSpec) -> Violation | None:
    """MT011: nobody may supply the key of a secure phone."""
    if not phone.secure:
        return None
    return Violation("MT011", _phone(phone), "is secure: its key is generated by the system "
                     "and cannot be set by a person", "let mtctl keys rotate renew it")


def provisioning_violation(phone: PhoneSpec) -> Violation | None:
    """MT015: only secure phones of a QR-provisionable model can be provisioned by QR."""
    if phone.secure and phone.qr_provisionable:
        return None
    why = "is not secure" if not phone.secure else f"is a {phone.model}, which is not " \
          "QR-provisionable"
    return Violation("MT015", _phone(phone), f"cannot be provisioned by QR: it {why}",
                     "only secure phones of an app model (e.g. VIVAit Call Business "
                     "Android) can be provisioned")


def key_warnings(phones: Iterable[PhoneSpec], *, now: datetime,
                 within: timedelta) -> list[Violation]:
    """Warnings for secure keys that expired or expire within the rotation window."""
    found = []
    for phone in phones:
        expires = phone.key_expires_at
        on_fetch = phone.profile in DEVICE_PROFILES
        if never_provisioned(secure=phone.secure, profile=phone.profile,
                             key_delivered=phone.key_delivered):
            found.append(Violation(
                "never-provisioned", _phone(phone), "has no usable key: a desk phone gets its "
                "key only by fetching its file, and this one never did",
                f"give it its MAC (mtctl phone set {phone.extension} {phone.position} --mac "
                "MAC) and point the phone at mtctl serve's /d/ (README: Provisioning desk "
                "phones)"))
            continue
        if not phone.secure or expires is None:
            continue
        hint = ("its next fetch brings a new key: check that the phone still fetches its file "
                f"(mtctl phone show {phone.extension} {phone.position})" if on_fetch
                else "run: mtctl keys rotate")
        if expires <= now:
            found.append(Violation("key-expired", _phone(phone),
                                   f"key expired on {expires:%Y-%m-%d %H:%M} UTC", hint))
        elif expires <= now + within:
            found.append(Violation("key-expiring", _phone(phone),
                                   f"key expires on {expires:%Y-%m-%d %H:%M} UTC", hint))
    return found
