"""One exception hierarchy for everything the operator can be told: the error catalogue.

Every error carries a stable kebab-case ``reference`` (tests, scripts and the README's
reference table key on it), a message that names the object that failed, a ``hint`` with
the command that continues or undoes, and the process exit code. The CLI prints these
without a traceback.

pip's pattern: each reference is one class declaring it, checked when the class is
created (kebab-case, declared once); the exit code comes from the class only. The older
spelling ``InvalidInput("...", reference="dirty-schema")`` still works: it builds the
declared class of that reference. Each class's docstring is its line in the README.
This module imports nothing internal.
"""
from __future__ import annotations

import re
from enum import IntEnum
from typing import ClassVar


class ExitStatus(IntEnum):
    """Exit codes are an API: scripts key on them. Documented in README."""
    OK = 0
    CHANGES_NEEDED = 1        # --check: a migration is needed; verify/artifacts: problems found
    INVALID = 2               # bad input or a result that fails validation; nothing written
    UNSUPPORTED = 3           # version outside what this tool handles
    UNSAFE_STATE = 4          # dirty schema, lock held, Harbor running, lint findings
    FAILED = 5                # an external step failed (PostgreSQL, storage, subprocess)
    INTERNAL_ERROR = 70       # a bug: an unexpected exception (sysexits' EX_SOFTWARE); rerun with --traceback
    INTERRUPTED = 130         # interrupted, or a confirmation was declined


KEBAB_CASE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")

# reference -> the class that declares it (filled as classes are created, in every module).
CATALOGUE: dict[str, type[HarborUpgradeError]] = {}


class HarborUpgradeError(Exception):
    """Any error the tool reports (the base class; not raised as such)."""
    reference: ClassVar[str] = "harbor-upgrade-error"
    exit_code: ClassVar[ExitStatus] = ExitStatus.FAILED

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        ref = cls.__dict__.get("reference")
        if ref is None:        # a helper class (e.g. a decoder's error) sharing its parent's reference
            return
        if not isinstance(ref, str) or not KEBAB_CASE.match(ref):
            raise TypeError(f"{cls.__qualname__}.reference {ref!r} is not kebab-case")
        other = CATALOGUE.get(ref)
        if other is not None and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"reference {ref!r} of {cls.__qualname__} is declared already by {other.__qualname__}")
        if not isinstance(cls.__dict__.get("exit_code", cls.exit_code), ExitStatus):
            raise TypeError(f"{cls.__qualname__}.exit_code must be an ExitStatus")
        CATALOGUE[ref] = cls

    def __new__(cls, *args: object, reference: str | None = None, **kwargs: object):
        # The reference names the class: InvalidInput(..., reference="backup-missing") is a BackupMissing.
        declared = CATALOGUE.get(reference) if reference else None
        if declared is not None and issubclass(declared, cls):
            cls = declared
        return super().__new__(cls, *args)

    def __init__(self, message: str, *, hint: str | None = None, reference: str | None = None,
                 exit_code: int | None = None):
        # exit_code is accepted for old call sites and ignored: the class decides (a unit test
        # refuses exit_code= at any raise site in src/).
        super().__init__(message)
        self.message = message
        self.hint = hint
        if reference and reference != type(self).reference:
            # undeclared: tests/unit/test_error_catalogue.py fails on it
            self.reference = reference  # type: ignore[misc]  # shadows the class's on purpose, see above

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------
# The five kinds (exit codes 2, 2, 3, 4, 5) and the last resort (70).

class InvalidInput(HarborUpgradeError):
    """Bad input (a file, an option, a DSN); nothing was written."""
    reference = "invalid-input"
    exit_code = ExitStatus.INVALID


class ValidationFailed(HarborUpgradeError):
    """A result failed its validation; nothing was written."""
    reference = "validation-failed"
    exit_code = ExitStatus.INVALID


class UnsupportedVersion(HarborUpgradeError):
    """A release this tool does not handle (below 1.9/1.10, above the target, a downgrade)."""
    reference = "unsupported-version"
    exit_code = ExitStatus.UNSUPPORTED


class UnsafeState(HarborUpgradeError):
    """Going on would be unsafe; nothing was changed."""
    reference = "unsafe-state"
    exit_code = ExitStatus.UNSAFE_STATE


class ExternalFailure(HarborUpgradeError):
    """An external step failed (PostgreSQL, storage, a subprocess)."""
    reference = "external-failure"
    exit_code = ExitStatus.FAILED


class InternalError(HarborUpgradeError):
    """A bug in harbor-upgrade (an unexpected exception); rerun with --traceback to see where."""
    reference = "internal-error"
    exit_code = ExitStatus.INTERNAL_ERROR


# ---------------------------------------------------------------------------
# Bad input (exit 2).

class HarborYmlMissing(InvalidInput):
    """The harbor.yml given does not exist."""
    reference = "harbor-yml-missing"


class HarborYmlInvalid(InvalidInput):
    """harbor.yml cannot be used: not a regular file, too large, not UTF-8 text, not YAML, too deep, too
    many aliases, or a setting of the wrong type (the message names the file, line and key)."""
    reference = "harbor-yml-invalid"


class InvalidDsn(InvalidInput):
    """A DSN libpq cannot read, or a URL whose password holds an unencoded @ or /."""
    reference = "invalid-dsn"


class DsnMissing(InvalidInput):
    """The command needs --dsn: nothing records which database to use."""
    reference = "dsn-missing"


class PasswordFileInvalid(InvalidInput):
    """--password-file cannot be read, is empty, or can be read by other users."""
    reference = "password-file-invalid"


class BindirInvalid(InvalidInput):
    """A PostgreSQL bin folder given that holds no server binaries."""
    reference = "bindir-invalid"


class InvalidMode(InvalidInput):
    """An engine-upgrade mode that is not one of the documented ones."""
    reference = "invalid-mode"


class HarborDirMissing(InvalidInput):
    """The Harbor folder to back up does not exist."""
    reference = "harbor-dir-missing"


class DataVolumeMissing(InvalidInput):
    """harbor.yml's data_volume does not exist."""
    reference = "data-volume-missing"


class BackupExists(InvalidInput):
    """The backup folder is not empty; each backup takes a new folder."""
    reference = "backup-exists"


class BackupMissing(InvalidInput):
    """The folder holds no harbor-upgrade backup."""
    reference = "backup-missing"


class BackupFormat(InvalidInput):
    """The backup was written in a format this version does not read."""
    reference = "backup-format"


class BackupDirMissing(InvalidInput):
    """run needs --backup-dir: the backup and the journal go there."""
    reference = "backup-dir-missing"


class BackupDirRolledBack(InvalidInput):
    """The run's folder was rolled back to; start a new run in a new folder."""
    reference = "backup-dir-rolled-back"


class JournalMissing(InvalidInput):
    """The backup folder holds no upgrade run (no journal)."""
    reference = "journal-missing"


class OutputUnwritable(InvalidInput):
    """An output folder or file cannot be written (read-only, missing parent, a folder where a file goes); checked
    before any work."""
    reference = "output-unwritable"


class BackupKeyExposed(InvalidInput):
    """The backup signing key can be read by other users (chmod 600 it)."""
    reference = "backup-key-exposed"


class RestoreTargetMissing(InvalidInput):
    """The backup holds files but no folder was given to restore them to."""
    reference = "restore-target-missing"


class RunStepsDiffer(InvalidInput):
    """A rerun asks for other steps than the run it continues."""
    reference = "run-steps-differ"


class PrepareAfterRun(InvalidInput):
    """`run --prepare` on a backup folder whose run has begun; continue the run instead."""
    reference = "prepare-after-run"


class ResumeOptionsDiffer(InvalidInput):
    """An interrupted artifacts run was started with other options."""
    reference = "resume-options-differ"


class DatadirVersion(InvalidInput):
    """The PostgreSQL binaries given do not match the cluster's version."""
    reference = "datadir-version"


class DatadirMissing(InvalidInput):
    """The database folder does not exist."""
    reference = "datadir-missing"


class DatadirNested(InvalidInput):
    """The new data folder is inside the old one (or the other way)."""
    reference = "datadir-nested"


class EngineNoLocalCluster(InvalidInput):
    """The engine step needs the installation's cluster on this machine."""
    reference = "engine-no-local-cluster"


class EngineNotNewer(InvalidInput):
    """--engine-bindir is not a newer PostgreSQL major than the cluster."""
    reference = "engine-not-newer"


class DemoDirUnreachable(InvalidInput):
    """PostgreSQL's user cannot reach the demo folder."""
    reference = "demo-dir-unreachable"


class DemoDirNotEmpty(InvalidInput):
    """The demo builds a new installation: its folder must be new or empty."""
    reference = "demo-dir-not-empty"


class StorageUnsupported(InvalidInput):
    """A storage driver the artifact backfill does not read (filesystem and s3 are read)."""
    reference = "storage-unsupported"


class StorageSpecInvalid(InvalidInput):
    """A storage given wrongly (no bucket; both or neither of --storage and --harbor-yml)."""
    reference = "storage-spec-invalid"


class StoragePathRefused(InvalidInput):
    """A storage path that is not relative or would leave the storage root."""
    reference = "storage-path-refused"


# ---------------------------------------------------------------------------
# Failed validation (exit 2).

class BackupCorrupt(ValidationFailed):
    """A backup fails its checksums or cannot be read as a manifest; nothing was restored."""
    reference = "backup-corrupt"


class RestoreMismatch(ValidationFailed):
    """A restore finished but its result differs from the backup."""
    reference = "restore-mismatch"


class PgUpgradeMismatch(ValidationFailed):
    """The upgraded PostgreSQL cluster's data differs from the old one; both are kept."""
    reference = "pg-upgrade-mismatch"


# ---------------------------------------------------------------------------
# Unsafe states (exit 4; a declined confirmation: 130).

class ChartsInChartmuseum(UnsafeState):
    """The upgrade crosses 2.8 (ChartMuseum removed) while its storage holds charts: move them to OCI, or
    --drop-chartmuseum; nothing was changed."""
    reference = "chartmuseum-charts"


class DirtySchema(UnsafeState):
    """The schema is marked dirty: an earlier migration failed half-way (db repair)."""
    reference = "dirty-schema"


class NotAHarborDb(UnsafeState):
    """The database has no schema_migrations version."""
    reference = "not-a-harbor-db"


class UnknownSchemaVersion(UnsafeState):
    """A schema version that is no Harbor release's."""
    reference = "unknown-schema-version"


class SchemaUnrecognized(UnsafeState):
    """db repair cannot tell which schema the database holds."""
    reference = "schema-unrecognized"


class SchemaNotTarget(UnsafeState):
    """The artifact backfill needs the database at the target schema first (db migrate)."""
    reference = "schema-not-target"


class LintFindings(UnsafeState):
    """Rows that would make a release step fail (db lint lists them with the fix)."""
    reference = "lint-findings"


class DbLocked(UnsafeState):
    """Another harbor-upgrade db run holds the migration lock."""
    reference = "db-locked"


class DbInUse(UnsafeState):
    """Other clients are connected to the database (is Harbor still running?)."""
    reference = "db-in-use"


class ArtifactsLocked(UnsafeState):
    """Another artifacts run is working on this database."""
    reference = "artifacts-locked"


class RunLocked(UnsafeState):
    """Another harbor-upgrade run is using this backup folder."""
    reference = "run-locked"


class ConfirmationNeeded(UnsafeState):
    """The command changes the installation and cannot ask: pass --yes."""
    reference = "confirmation-needed"


class NotConfirmed(UnsafeState):
    """The operator declined the confirmation; nothing was changed."""
    reference = "not-confirmed"
    exit_code = ExitStatus.INTERRUPTED


class JournalDamaged(UnsafeState):
    """The run journal is damaged other than by a torn last line; the message names the line and how to go on."""
    reference = "journal-damaged"


class BackupNotAdopted(UnsafeState):
    """The backup folder holds a complete backup that is not of the database as it is now (or fails verification);
    it is kept untouched."""
    reference = "backup-not-adopted"


class RestoreUnsafePath(UnsafeState):
    """A restore met a symlink or a file where a folder of the backup goes; nothing is written through it."""
    reference = "restore-unsafe-path"


class BackupUnreadable(UnsafeState):
    """A folder to back up cannot be listed."""
    reference = "backup-unreadable"


class DatadirHasLinks(UnsafeState):
    """The data folder holds symlinks (pg_wal or tablespaces elsewhere): it is not copied; back it up with pg_dump."""
    reference = "datadir-has-links"


class DatadirOwnedByRoot(UnsafeState):
    """The data folder is owned by root; PostgreSQL never runs as root."""
    reference = "datadir-owned-by-root"


class DatadirNotOwner(UnsafeState):
    """The data folder belongs to another user: run as root or as that user."""
    reference = "datadir-not-owner"


class DatadirNotEmpty(UnsafeState):
    """The folder the new cluster goes to exists and is not empty."""
    reference = "datadir-not-empty"


class DatadirUnreadable(UnsafeState):
    """The database folder cannot be read (it is not treated as empty)."""
    reference = "datadir-unreadable"


class DatadirEmpty(UnsafeState):
    """The database folder holds no PostgreSQL cluster."""
    reference = "datadir-empty"


class DatadirAmbiguous(UnsafeState):
    """The database folder holds more than one cluster."""
    reference = "datadir-ambiguous"


class DiskSpace(UnsafeState):
    """Not enough free space for the chosen engine-upgrade mode."""
    reference = "disk-space"


class PostgresRunning(UnsafeState):
    """PostgreSQL still runs on the cluster to upgrade (stop Harbor first)."""
    reference = "postgres-running"


class PgUpgradeUnverified(UnsafeState):
    """No verified engine upgrade is recorded for this cleanup; the old cluster is kept."""
    reference = "pg-upgrade-unverified"


class EngineOtherCluster(UnsafeState):
    """--dsn reaches another PostgreSQL cluster than the installation's."""
    reference = "engine-other-cluster"


class EngineLinkInterrupted(UnsafeState):
    """An interrupted link-mode engine upgrade left the old cluster sharing files with the new one."""
    reference = "engine-link-interrupted"


# ---------------------------------------------------------------------------
# External failures (exit 5) and a failed verification (exit 1).

class DbUnreachable(ExternalFailure):
    """Cannot connect to the Harbor database."""
    reference = "db-unreachable"


class DbStepFailed(ExternalFailure):
    """A release step failed; nothing of that step was written."""
    reference = "db-step-failed"


class PostgresMissing(ExternalFailure):
    """The PostgreSQL programs needed are not installed (or not where given)."""
    reference = "postgres-missing"


class PostgresUser(ExternalFailure):
    """Running as root and no unprivileged user to run PostgreSQL as."""
    reference = "postgres-user"


class PostgresFailed(ExternalFailure):
    """A PostgreSQL program failed (its output is quoted)."""
    reference = "postgres-failed"


class PgUpgradeFailed(ExternalFailure):
    """The PostgreSQL engine upgrade failed; the old cluster is kept."""
    reference = "pg-upgrade-failed"


class EngineStopFailed(ExternalFailure):
    """pg_ctl could not stop a PostgreSQL server."""
    reference = "engine-stop-failed"


class EngineStartFailed(ExternalFailure):
    """A PostgreSQL server could not be started."""
    reference = "engine-start-failed"


class BackupUnverified(ExternalFailure):
    """The pre-upgrade backup does not restore cleanly; nothing else was done."""
    reference = "backup-unverified"


class VerifyFailed(HarborUpgradeError):
    """The upgraded installation fails verification (the report lists what)."""
    reference = "verify-failed"
    exit_code = ExitStatus.CHANGES_NEEDED
