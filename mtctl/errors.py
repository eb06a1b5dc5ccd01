"""Typed errors raised by domain and store code; the CLI maps them to exit codes in one place."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Exit codes of SPEC §6."""

    OK = 0
    RULE = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    STORE = 5
    PENDING = 6  # apply --dry-run --detailed-exitcode: the store does not match the file yet


class MtctlError(Exception):
    """Anything a user can cause: printed as one line with a hint, never as a traceback."""

    exit_code: ExitCode = ExitCode.RULE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UsageError(MtctlError):
    exit_code = ExitCode.USAGE


class NotFound(MtctlError):
    exit_code = ExitCode.NOT_FOUND


class Conflict(MtctlError):
    exit_code = ExitCode.CONFLICT


class StoreError(MtctlError):
    exit_code = ExitCode.STORE


class RuleViolation(MtctlError):
    """One or more rule violations (MT001–MT015); the first is the headline."""

    exit_code = ExitCode.RULE

    def __init__(self, violations: Sequence[Any]) -> None:  # domain.rules.Violation
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"{first.rule} {first.object} {first.message}{more}", first.hint)
        self.violations = violations
