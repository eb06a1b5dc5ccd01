"""What a phone owner reads when the portal refuses a change, in the visitor's language.

The store's refusals speak to an admin at a shell: English, with hints that name commands
(`mtctl phone set ...`). A portal page says instead what the rule means for the owner's own
phones and what to do in the portal, or to ask the administrator. Messages are catalog ids
(English) translated by `i18n`; the rule id stays as it is, so support can look it up. A
refusal it has no owner words for says only that the change was refused and to ask the
administrator: the store's own text never reaches the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from mtctl.errors import MtctlError, RuleViolation, StoreError

ASK_ADMIN = "Ask your administrator."
REFUSED = "The change was refused."  # a refusal with no owner words: never the store's text


class Refusal(NamedTuple):
    rule: str | None
    message: str
    hint: str | None


# Rule id → (what the rule says, what the owner can do): SPEC §2 in a phone owner's words.
RULES: dict[str, tuple[str, str]] = {
    "MT001": ("An extension has at most 8 phones.", ASK_ADMIN),
    "MT002": ("Each phone of an extension has its own position, from 0 to 7.", ASK_ADMIN),
    "MT003": ("A Cisco desk phone must be at position 0.", ASK_ADMIN),
    "MT004": ("A phone's order is a whole number, 0 or more.",
              "Use 1 for the phones that ring first, 2 for the next ones, and 0 for a phone "
              "that must never ring."),
    "MT005": ("A phone that registers from the internet must be secure.", ASK_ADMIN),
    "MT006": ("A Web Call phone can be neither secure nor reachable from the internet.",
              ASK_ADMIN),
    "MT007": ("A shared (pool) Web Call licence cannot be used in multiterminal mode.",
              ASK_ADMIN),
    "MT008": ("Every phone of an extension is on the extension's server.", ASK_ADMIN),
    "MT009": ("In multiterminal mode your Web Call phone is on your own extension, and it must "
              "be able to ring.",
              "Give your Web Call phone an order of 1 or more."),
    "MT010": ("In exclusive mode your Web Call uses its own extension, with the Web Call phone "
              "at position 0.", ASK_ADMIN),
    "MT011": ("A secure phone's key is made by the system, never by a person.", ASK_ADMIN),
    "MT012": ("You log in with an extension you own.", ASK_ADMIN),
    "MT013": ("A Web Call phone uses a Web Call template.", ASK_ADMIN),
    "MT014": ("Extension numbers are digits only, and unique.", ASK_ADMIN),
    "MT015": ("Only secure phones of an app model can be provisioned by QR code.",
              "Provision the phone of the mobile app, or ask your administrator to make this "
              "phone secure."),
    "MT016": ("An extension has at most one Web Call phone.", ASK_ADMIN),
}

# The store's other refusals a portal action can meet: its message → (message id, hint id).
# The captured values are shown; nothing else of the store's text (another user's name) is.
OTHERS: list[tuple[re.Pattern[str], str, str | None]] = [
    (re.compile(r"extension \d+ has no phone at position \d+"),
     "No such phone among yours.", None),
    (re.compile(r"user \S+ already has a Web Call session on (?P<number>\d+)"),
     "Your Web Call is already running on extension {number}.", "Stop it first."),
    (re.compile(r"extension (?P<number>\d+) is in use by \S+ Web Call session"),
     "Extension {number} is in use by another Web Call session.",
     "Try again later, or choose another of your Web Call extensions."),
    (re.compile(r"every extension of group \S+ is in use"),
     "Every Web Call extension of your group is in use.", "Try again later."),
    (re.compile(r"user \S+ has no Web Call session"), "Your Web Call is not running.", None),
    (re.compile(r"user \S+ has no Web Call extension"),
     "You have no Web Call extension.", ASK_ADMIN),
    (re.compile(r"(?P<number>\S+) is not one of \S+ Web Call extensions"),
     "{number} is not one of your Web Call extensions.", None),
    (re.compile(r"user \S+ has several Web Call extensions"),
     "You have several Web Call extensions.", "Choose one of them."),
    (re.compile(r"the provisioning base URL is not configured"),
     "Provisioning is not set up on this server yet.", ASK_ADMIN),
    (re.compile(r"phone \S+ is publishable but no Flexisip edge proxy is set"),
     "This phone cannot be provisioned until the internet access for phones is set up.",
     ASK_ADMIN),
    (re.compile(r"order .* is (?:not a whole number|out of range)"),
     "The order must be a whole number, 0 or more.",
     "Use 1 for the phones that ring first, and 0 for a phone that must never ring."),
]


def refusal(exc: MtctlError, translate: Callable[..., str]) -> Refusal:
    """EXC as a portal page shows it, in the language of TRANSLATE (i18n.translator)."""
    if isinstance(exc, RuleViolation):
        rule = exc.violations[0].rule
        if rule in RULES:
            meaning, what_to_do = RULES[rule]
            return Refusal(rule, translate(meaning), translate(what_to_do))
        return Refusal(rule, translate(REFUSED), translate(ASK_ADMIN))
    if isinstance(exc, StoreError):  # nothing the owner can fix: the detail (a path, a
        # command) is for the administrator, in serve's log (app.py)
        return Refusal(None, translate("The service is unavailable right now."),
                       translate(ASK_ADMIN))
    for pattern, message, hint in OTHERS:
        if found := pattern.search(exc.message):
            return Refusal(None, translate(message, **found.groupdict()),
                           translate(hint) if hint else None)
    # The store's English and its hint (an admin command) are not for an owner.
    return Refusal(None, translate(REFUSED), translate(ASK_ADMIN))
