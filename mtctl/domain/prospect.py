"""The extensions as the store would hold them after an apply plan, as the rules see them:
the file's extensions with what the store keeps of each, built on demand (a plan that touches
a few extensions of 100,000 builds a few)."""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mtctl.domain.model import ExtensionSpec, PhoneSpec
from mtctl.domain.plan import HAS_EXPIRY, HAS_KEY, PHONE_VALUES, State

# What the rules ask of a secure phone's key is only whether it has an expiry; a phone that
# gets its key in this very apply will have one.
EXPIRY_TO_COME = datetime(9999, 12, 31, tzinfo=UTC)



@dataclass(slots=True)
class FilePhone:
    """A phone as the file gives it: its index in the extension's list, and the store's."""

    index: int
    position: int
    values: tuple[Any, ...]  # PHONE_FIELDS, defaults resolved
    entry: dict[str, Any]
    store: tuple[Any, ...] | None  # the store's phone at this position


@dataclass(slots=True)
class FileExtension:
    """An extension as the file gives it, with the store's row (None: a new one)."""

    number: str
    values: tuple[Any, ...]  # EXTENSION_FIELDS
    phones: list[FilePhone]
    store: tuple[Any, ...] | None


class Prospect(Mapping[str, ExtensionSpec]):
    """The extensions as the store would hold them after the plan, built on demand; those in
    `keep` (asked for again) are kept once built."""

    def __init__(self, state: State, file_extensions: Mapping[str, FileExtension], *,
                 prune: bool, models: Mapping[str, tuple[Any, ...]],
                 templates: Mapping[str, tuple[Any, ...]], keep: Container[str]) -> None:
        self.state, self.file_extensions, self.prune = state, file_extensions, prune
        self.models, self.templates, self.keep = models, templates, keep
        self.built: dict[str, ExtensionSpec | None] = {}

    def __getitem__(self, number: str) -> ExtensionSpec:
        if number in self.built:
            found = self.built[number]
        else:
            found = self._build(number, self.file_extensions.get(number))
            if number in self.keep:
                self.built[number] = found
        if found is None:
            raise KeyError(number)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.file_extensions)

    def __len__(self) -> int:
        return len(self.file_extensions)

    def build(self, number: str, entry: FileExtension) -> ExtensionSpec:
        """The spec of a file's extension, not kept."""
        found = self._build(number, entry)
        assert found is not None, "a file's extension always has a spec"
        return found

    def _build(self, number: str, entry: FileExtension | None) -> ExtensionSpec | None:
        stored = self.state.extensions.get(number)
        if entry is None and (stored is None or self.prune):
            return None
        ext_node, display, timeout = entry.values if entry else stored[1:]  # type: ignore[index]
        expiry: datetime | None
        phones: list[PhoneSpec] = []
        listed: set[int] = set()
        if entry is not None:
            for fp in entry.phones:
                listed.add(fp.position)
                before = fp.store
                secure = fp.values[6]
                if secure and (before is None or not before[8]):
                    has_key, expiry = True, EXPIRY_TO_COME
                elif before is not None:
                    has_key = before[HAS_KEY]
                    expiry = EXPIRY_TO_COME if before[HAS_EXPIRY] else None
                else:
                    has_key, expiry = False, None
                phones.append(self._spec(number, fp.position, fp.values, ext_node, has_key,
                                         expiry))
        if stored is not None and not (self.prune and entry is not None):
            for position, row in self.state.phones.get(stored[0], {}).items():
                if position not in listed:
                    phones.append(self._spec(number, position, row[PHONE_VALUES], row[1],
                                             row[HAS_KEY],
                                             EXPIRY_TO_COME if row[HAS_EXPIRY] else None))
        phones.sort(key=lambda s: s.position)
        return ExtensionSpec(number=number, node=ext_node, display_name=display,
                             ring_timeout=timeout, phones=tuple(phones))

    def _spec(self, number: str, position: int, values: tuple[Any, ...], node_name: str,
              has_key: bool, expiry: datetime | None) -> PhoneSpec:
        order, enabled, model, template_name, category_name, location, secure, pub, _ = values
        vendor, kind, qr, profile = self.models.get(model, ("", "unknown", False, None))
        for_webcall = self.templates.get(template_name, (False,))[0]
        # positionally: PhoneSpec's own order (the keywords cost a large file a second)
        return PhoneSpec(number, position, order, model, kind, vendor, qr, enabled,
                         template_name, for_webcall, secure, pub, node_name, location,
                         category_name, has_key, expiry, profile)
