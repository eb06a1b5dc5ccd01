"""Where a rule's problem is in a config file, and how a file fixes it: the key a violation
points at (a phone's `position` for MT002, a user's `login` for MT012, ...) and the hint
written for a file rather than for a command line."""

from __future__ import annotations

from typing import Any

PHONE_RULE_FIELDS = {"MT002": "position", "MT003": "position", "MT004": "order",
                     "MT005": "publishable", "MT011": "secure", "MT013": "template"}
USER_RULE_FIELDS = {"MT007": ("webcall_license", "webcall_mode"),
                    "MT009": ("webcall_position", "webcall_mode"),
                    "MT010": ("webcall_extensions", "webcall_group", "webcall_mode"),
                    "MT012": ("login",)}
FILE_HINTS = {
    "MT001": "an extension has at most 8 phones: remove some",
    "MT002": "give each phone of the extension its own position, 0 to 7",
    "MT003": "put Cisco phones at position 0",
    "MT004": "use an order of 0 (never rings) or more",
    "MT005": "set secure = true, or drop publishable",
    "MT006": "drop secure and publishable from Web Call phones",
    "MT007": "use webcall_mode = \"exclusive\", or webcall_license = \"dedicated\"",
    "MT008": "keep the extension's phones on its node",
    "MT009": "put a Web Call phone with order 1 or more at the user's webcall_position of "
             "the login extension, and no other Web Call extension",
    "MT010": "give each Web Call extension a Web Call phone at position 0, apart from the "
             "login extension",
    "MT011": "secure phones get their keys from mtctl; run: mtctl keys rotate",
    "MT012": "log in with an extension the user owns",
    "MT013": "use template = \"webfon\", or a template with for_webcall = true",
    "MT014": "use digits only, e.g. \"40710\"",
}


def phone_field(rule: str, entry: dict[str, Any]) -> str:
    if rule == "MT006":
        return "secure" if entry.get("secure") else "publishable"
    if rule == "MT013" and "template" not in entry:
        return "model"
    return PHONE_RULE_FIELDS.get(rule, "")
