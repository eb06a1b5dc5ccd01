"""What an update changes: one frozen dataclass per aggregate, every field UNCHANGED unless the
caller gives it.

`None` is a value (it clears a field that may be empty: a phone's location, a user's Web Call
group), never "leave it alone"; that is UNCHANGED, the one member of its own type, so a type
checker tells the two apart. The store's update functions take these:

    phones.update_phone(conn, actor=..., number="40710", position=2,
                        change=PhoneUpdate(order=3, location=None))
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Final, TypeVar, Union


class Unchanged(Enum):
    """The type of UNCHANGED."""

    UNCHANGED = "UNCHANGED"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged.UNCHANGED

T = TypeVar("T")
Maybe = Union[T, Unchanged]  # noqa: UP007 - a generic alias: Maybe[int]


def option(value: T | None) -> Maybe[T]:
    """A command-line option as an update field: an option not given (None) changes nothing."""
    return UNCHANGED if value is None else value


def clearable(value: str | None) -> Maybe[str | None]:
    """A text option where '' clears the field: not given → UNCHANGED, '' → None."""
    return UNCHANGED if value is None else (value or None)


class _Update:
    def given(self) -> dict[str, object]:
        """The fields to change, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)  # type: ignore[arg-type]
                if getattr(self, f.name) is not UNCHANGED}


@dataclass(frozen=True, kw_only=True)
class PhoneUpdate(_Update):
    """`phone set`, `phone enable|disable`: position is where the phone moves to."""

    position: Maybe[int] = UNCHANGED
    order: Maybe[int] = UNCHANGED
    enabled: Maybe[bool] = UNCHANGED
    model: Maybe[str] = UNCHANGED
    template: Maybe[str] = UNCHANGED
    category: Maybe[str | None] = UNCHANGED
    location: Maybe[str | None] = UNCHANGED
    secure: Maybe[bool] = UNCHANGED
    publishable: Maybe[bool] = UNCHANGED
    mac: Maybe[str | None] = UNCHANGED  # any usual spelling; None clears


@dataclass(frozen=True, kw_only=True)
class UserUpdate(_Update):
    """`user set`: webcall_mode None removes the user's Web Call (and its license, group,
    position and extensions)."""

    display_name: Maybe[str] = UNCHANGED
    login: Maybe[str] = UNCHANGED
    webcall_mode: Maybe[str | None] = UNCHANGED
    webcall_license: Maybe[str | None] = UNCHANGED
    webcall_extensions: Maybe[tuple[str, ...]] = UNCHANGED
    webcall_group: Maybe[str | None] = UNCHANGED
    webcall_position: Maybe[int | None] = UNCHANGED


@dataclass(frozen=True, kw_only=True)
class ExtensionUpdate(_Update):
    """`ext set`: moving it to another node moves its phones too."""

    display_name: Maybe[str | None] = UNCHANGED
    ring_timeout: Maybe[int] = UNCHANGED
    node: Maybe[str] = UNCHANGED


@dataclass(frozen=True, kw_only=True)
class TemplateUpdate(_Update):
    """`template set`: key_lifetime_days None is the global keys.lifetime_days."""

    key_lifetime_days: Maybe[int | None] = UNCHANGED
    category: Maybe[str | None] = UNCHANGED
    secure: Maybe[bool] = UNCHANGED
