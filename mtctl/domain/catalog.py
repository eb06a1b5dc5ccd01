"""The phone models and templates a new store starts with (SPEC §1), as of this mtctl.

Migrations insert them, each from its own frozen copy (a migration never imports this module,
and runtime code never imports a migration); tests/store/test_seed_catalog.py proves that a
store migrated from scratch holds exactly this catalog. A model or template seeded by a new
migration is added here in the same change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SeededModel:
    """A phone model every store has until someone changes or removes it."""

    name: str
    vendor: str
    kind: str
    qr_provisionable: bool = False
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class SeededTemplate:
    """A template every store has until someone changes or removes it."""

    name: str
    for_webcall: bool = False
    secure: bool = False
    key_lifetime_days: int | None = None
    category: str | None = None


SEEDED_MODELS: tuple[SeededModel, ...] = (
    SeededModel("Cisco 8841", "Cisco", "hardphone", profile="cisco-mpp"),
    SeededModel("Generic SIP hardphone", "Generic", "hardphone"),
    SeededModel("Linphone (no proxy)", "Belledonne", "softphone"),
    SeededModel("VIVAit Call Business iOS", "VIVAit", "app", qr_provisionable=True,
                profile="linphone"),
    SeededModel("VIVAit Call Business Android", "VIVAit", "app", qr_provisionable=True,
                profile="linphone"),
    SeededModel("VIVAit Call Web", "VIVAit", "webcall"),
    SeededModel("Yealink T54W", "Yealink", "hardphone", profile="yealink"),
)
SEEDED_TEMPLATES: tuple[SeededTemplate, ...] = (
    SeededTemplate("default"),
    SeededTemplate("webfon", for_webcall=True),
)
