"""One exception hierarchy for everything the operator can be told.

Every error carries a stable kebab-case ``reference`` (tests and docs key on it), a
message that names the object that failed, a ``hint`` with the command that continues
or undoes, and the process exit code. The CLI prints these without a traceback.
"""
from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit codes are an API: scripts key on them. Documented in README."""
    OK = 0
    CHANGES_NEEDED = 1        # --check: a migration is needed; verify/artifacts: problems found
    INVALID = 2               # bad input or a result that fails validation; nothing written
    UNSUPPORTED = 3           # version outside what this tool handles
    UNSAFE_STATE = 4          # dirty schema, lock held, Harbor running, lint findings
    FAILED = 5                # an external step failed (PostgreSQL, storage, subprocess)
    INTERRUPTED = 130


class HarborUpgradeError(Exception):
    reference = "harbor-upgrade-error"
    exit_code = ExitStatus.FAILED

    def __init__(self, message: str, *, hint: str | None = None, reference: str | None = None,
                 exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if reference:
            self.reference = reference
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class InvalidInput(HarborUpgradeError):
    reference = "invalid-input"
    exit_code = ExitStatus.INVALID


class ValidationFailed(HarborUpgradeError):
    reference = "validation-failed"
    exit_code = ExitStatus.INVALID


class UnsupportedVersion(HarborUpgradeError):
    reference = "unsupported-version"
    exit_code = ExitStatus.UNSUPPORTED


class UnsafeState(HarborUpgradeError):
    reference = "unsafe-state"
    exit_code = ExitStatus.UNSAFE_STATE


class ExternalFailure(HarborUpgradeError):
    reference = "external-failure"
    exit_code = ExitStatus.FAILED
