"""Plain values the rules and the ring function work on, independent of any store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar, dataclass_transform

_Spec = TypeVar("_Spec")

PHONE_KINDS = ("hardphone", "softphone", "app", "webcall")
WEBCALL_MODES = ("exclusive", "multiterminal")
WEBCALL_LICENSES = ("dedicated", "pool")
MAX_PHONES = 8
POSITIONS = range(0, MAX_PHONES)
DEFAULT_RING_TIMEOUT = 20


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def read_only(cls: type[_Spec]) -> type[_Spec]:
    """A dataclass with slots that the type checker holds frozen, but that is not frozen at
    run time: a frozen dataclass's __init__ sets each field through object.__setattr__, and
    the bulk reads (check, ring-sim --all) build 400,000 phones. Equality and hashing are a
    frozen dataclass's."""
    return dataclass(slots=True, unsafe_hash=True)(cls)


@read_only
class PhoneSpec:
    """One phone as the rules and the ring function see it."""

    extension: str
    position: int
    order: int
    model: str
    kind: str
    vendor: str = ""
    qr_provisionable: bool = False
    enabled: bool = True
    template: str = "default"
    template_for_webcall: bool = False
    secure: bool = False
    publishable: bool = False
    node: str | None = None
    location: str | None = None
    category: str | None = None
    has_key: bool = False
    key_expires_at: datetime | None = None
    # How the phone is provisioned, and whether a desk phone provisioned by MAC ever fetched a
    # key: for check's warnings only, so not part of what makes two phones the same.
    profile: str | None = field(default=None, compare=False)
    key_delivered: bool = field(default=False, compare=False)

    @property
    def ref(self) -> str:
        """The name users give this phone: ``EXT:POS``."""
        return f"{self.extension}:{self.position}"

    @property
    def is_webcall(self) -> bool:
        return self.kind == "webcall"


@read_only
class ExtensionSpec:
    """An extension with its phones."""

    number: str
    node: str
    display_name: str | None = None
    ring_timeout: int = DEFAULT_RING_TIMEOUT
    phones: tuple[PhoneSpec, ...] = ()

    @property
    def shown_name(self) -> str:
        return self.display_name or self.number


@dataclass(frozen=True, slots=True)
class UserSpec:
    """A user with the Web Call settings that decide who rings."""

    username: str
    display_name: str
    login: str | None
    webcall_mode: str | None = None
    webcall_license: str | None = None
    webcall_extensions: tuple[str, ...] = ()
    webcall_group: str | None = None
    group_extensions: tuple[str, ...] = field(default=())
    webcall_position: int | None = None

    @property
    def session_extensions(self) -> tuple[str, ...]:
        """Where this user may open a Web Call session: multiterminal, the login extension;
        exclusive, the user's Web Call extensions; without Web Call, nowhere."""
        if self.webcall_mode == "multiterminal":
            return (self.login,) if self.login else ()
        if self.webcall_mode == "exclusive":
            return self.all_webcall_extensions
        return ()

    @property
    def all_webcall_extensions(self) -> tuple[str, ...]:
        """Individually assigned Web Call extensions first, then the group's."""
        seen = dict.fromkeys(self.webcall_extensions)
        seen.update(dict.fromkeys(self.group_extensions))
        return tuple(seen)
