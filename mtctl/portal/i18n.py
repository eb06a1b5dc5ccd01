"""The portal's languages: message catalogs (English message ids, one JSON file per language) and
the choice of language from `?lang=`, a cookie, or Accept-Language."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources

LANGUAGES = ("es", "en")
DEFAULT = "en"
MAX_HEADER = 512  # characters of Accept-Language looked at


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """English message id → translation (English itself has no catalog)."""
    if lang == DEFAULT:
        return {}
    text = resources.files("mtctl.portal").joinpath("locales", f"{lang}.json").read_text("utf-8")
    loaded: dict[str, str] = json.loads(text)
    return loaded


def translator(lang: str) -> Callable[..., str]:
    """`_("Order of phone {pos}", pos=2)` in LANG; an id without translation stays English."""
    messages = catalog(lang)

    def translate(message: str, **values: object) -> str:
        text = messages.get(message, message)
        return text.format(**values) if values else text

    return translate


def from_accept_language(header: str | None) -> str | None:
    """The first of LANGUAGES by the header's preference (q-values), or None."""
    best: tuple[float, int, str] | None = None
    for index, part in enumerate((header or "")[:MAX_HEADER].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-", 1)[0]
        if lang not in LANGUAGES:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if quality <= 0:
            continue
        if best is None or (quality, -index) > (best[0], best[1]):
            best = (quality, -index, lang)
    return best[2] if best else None


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """?lang= first, then the language cookie, then Accept-Language, then English."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            assert candidate is not None
            return candidate
    return from_accept_language(accept_language) or DEFAULT
