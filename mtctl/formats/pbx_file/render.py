"""Rendering the declarative PBX file: a document as TOML text, export's canonical form."""

from __future__ import annotations

from typing import Any


def to_toml(doc: dict[str, Any]) -> str:
    """The file text of a document (sections, tables and keys in the document's order)."""
    import tomli_w

    return tomli_w.dumps(doc)
