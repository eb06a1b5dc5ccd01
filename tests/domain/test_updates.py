"""Update inputs: UNCHANGED (its own type) leaves a field alone, None clears it."""

from __future__ import annotations

import dataclasses

import pytest

from mtctl.domain.updates import (
    UNCHANGED,
    ExtensionUpdate,
    PhoneUpdate,
    TemplateUpdate,
    Unchanged,
    UserUpdate,
    clearable,
    option,
)


def test_every_field_starts_unchanged_and_given_names_only_what_was_set():
    for kind in (PhoneUpdate, UserUpdate, ExtensionUpdate, TemplateUpdate):
        assert kind().given() == {}
        assert all(f.default is UNCHANGED for f in dataclasses.fields(kind))
    change = PhoneUpdate(order=0, location=None, enabled=False)
    assert change.given() == {"order": 0, "enabled": False, "location": None}


def test_none_and_unchanged_are_different_values_of_different_types():
    assert UNCHANGED is not None and isinstance(UNCHANGED, Unchanged)
    assert repr(UNCHANGED) == "UNCHANGED"
    assert UserUpdate(webcall_group=None).given() == {"webcall_group": None}


def test_command_line_options_map_to_fields():
    assert option(None) is UNCHANGED
    assert option(0) == 0 and option(False) is False
    assert clearable(None) is UNCHANGED
    assert clearable("") is None
    assert clearable("Madrid") == "Madrid"


def test_updates_are_frozen_and_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PhoneUpdate().order = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        PhoneUpdate(3)  # type: ignore[misc]
