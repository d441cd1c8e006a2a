"""The Harbor database upgrade, from schema 15 (1.10) to the newest release the tool
knows (``versions.TARGET``), same result as Harbor's own SQL files.

Public API (the CLI and the orchestrator call only these; ``to=None`` is versions.TARGET):

    status(dsn) -> DbStatus
    lint(dsn, to=None) -> list[LintFinding]
    migrate(dsn, to=None, dry_run=False, force_connected=False, progress=None) -> MigrateReport
    repair(dsn) -> RepairResult
    data_losses(dsn, to=None) -> list[DataLoss]    (rows the pending releases drop by design)

The artifact-metadata marker (has the Go "artifact abstraction" run?) is
``data_migrations.version`` (one row): the migration leaves it where Harbor's SQL
leaves it (0 coming from 1.10, 30 from an abstracted 2.0 database); the artifacts step
sets it to 30 when it has rewritten every artifact row.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import psycopg

from .. import versions
from ..errors import UnsafeState
from ..secrets import dsn_without_password
from ..versions import release_of_schema
from . import ledger, runner
from .checks import LintFinding, run_checks
from .connection import connect, one
from .repair import matching_versions
from .runner import DataLoss, MigrateReport, ReleaseStepResult, StatementNote

__all__ = ["DataLoss", "DbStatus", "LintFinding", "MigrateReport", "RepairResult", "ReleaseStepResult",
           "data_losses", "lint", "migrate", "repair", "status"]


@dataclass
class DbStatus:
    schema_version: int | None
    dirty: bool
    data_version: int | None
    release: str | None
    pending: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RepairResult:
    recorded_version: int | None
    recorded_dirty: bool
    schema_matches: list[int]
    version: int | None
    changed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def status(dsn: str) -> DbStatus:
    """Where the database stands; never raises for a dirty or unknown state."""
    with connect(dsn) as conn:
        state = ledger.read_state(conn)
    release = release_of_schema(state.version) if state.version is not None else None
    pending: list[str] = []
    if (state.version is not None and release and not state.dirty
            and runner.DB_RELEASES.index(release) <= runner.DB_RELEASES.index(versions.TARGET)):
        pending = [runner.step_name(s, f) for s, f in runner.plan_steps(state.version, versions.TARGET)]
    return DbStatus(state.version, state.dirty, state.data_version, release, pending)


def lint(dsn: str, to: str | None = None) -> list[LintFinding]:
    """Rows that would make a pending release step fail (read-only)."""
    to_release, _ = runner.target_version(to or versions.TARGET)
    with connect(dsn) as conn:
        return _lint(conn, _checked_version(conn, dsn), to_release)


def data_losses(dsn: str, to: str | None = None) -> list[DataLoss]:
    """Rows the pending release steps up to ``to`` drop by design (read-only), for ``plan``."""
    to_release, _ = runner.target_version(to or versions.TARGET)
    with connect(dsn) as conn:
        return [loss for step, _ in runner.plan_steps(_checked_version(conn, dsn), to_release)
                for loss in runner.count_losses(conn, step)]


def _checked_version(conn: psycopg.Connection, dsn: str) -> int:
    """The database's schema version, after runner.check_version (which refuses one it cannot go on from)."""
    state = ledger.read_state(conn)
    runner.check_version(state, dsn)
    assert state.version is not None  # check_version refuses a database without one
    return state.version


def _lint(conn: psycopg.Connection, version: int, to_release: str) -> list[LintFinding]:
    pending = [s for s, _ in runner.plan_steps(version, to_release)]
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        mark = _quiet_mark(conn, version, to_release)
        findings = run_checks(conn, version, pending)
    if mark is not None and not findings:
        _CLEAN_LINTS[conn.info.dsn] = mark
    return findings


# A run lints in its preflight, then migrate lints again under the migration lock (a few
# seconds later, the backup in between) before writing. The second lint is skipped when
# nothing can have changed since a clean first one: no transaction was in progress when
# the first began, and no transaction id was handed out since (any row written, anywhere in
# the cluster, takes one; a server stopped and started again keeps the counter). Anything
# else (a write, an ANALYZE, another server at the address) lints again.
_CLEAN_LINTS: dict[str, tuple[int, int, str, int]] = {}


def _quiet_mark(conn: psycopg.Connection, version: int, to_release: str) -> tuple[int, int, str, int] | None:
    """(next transaction id, database oid, to_release, schema version) when no transaction is in
    progress in the cluster, else None."""
    xmin, xmax, oid = one(conn.execute(
        "SELECT txid_snapshot_xmin(s), txid_snapshot_xmax(s), d.oid::bigint FROM txid_current_snapshot() AS s, "
        "pg_database d WHERE d.datname = current_database()"))
    return (int(xmax), int(oid), to_release, version) if xmin == xmax else None


def _linted_since(conn: psycopg.Connection, version: int, to_release: str) -> bool:
    """A clean lint of this database found it as it is now (see _CLEAN_LINTS)."""
    recorded = _CLEAN_LINTS.pop(conn.info.dsn, None)
    return recorded is not None and _quiet_mark(conn, version, to_release) == recorded


def migrate(dsn: str, to: str | None = None, dry_run: bool = False, force_connected: bool = False,
            progress: StatementNote | None = None) -> MigrateReport:
    """Apply the pending release steps up to ``to``, each in one transaction.

    Refuses (UnsafeState) while another run holds the lock, while other clients are
    connected (unless force_connected), and when lint finds rows that would break a
    step. With dry_run every step runs inside one transaction that is rolled back (and
    the sequences are put back), so the report has the real row counts.
    """
    to_release, _ = runner.target_version(to or versions.TARGET)
    with connect(dsn) as conn:
        if not ledger.try_lock(conn):
            holder = ledger.lock_holder(conn) or "another session"
            raise UnsafeState(f"another harbor-upgrade db run holds the migration lock ({holder})",
                              reference="db-locked",
                              hint="wait for it to finish; `harbor-upgrade db status --dsn "
                                   f"'{dsn_without_password(dsn)}'` shows where it stands")
        try:
            return _migrate_locked(conn, dsn, to_release, dry_run, force_connected, progress)
        finally:
            if not conn.closed:
                ledger.unlock(conn)


def _migrate_locked(conn: psycopg.Connection, dsn: str, to_release: str, dry_run: bool,
                    force_connected: bool, progress: StatementNote | None) -> MigrateReport:
    state = ledger.read_state(conn)
    runner.check_version(state, dsn)
    assert state.version is not None  # check_version refuses a database without one
    steps = runner.plan_steps(state.version, to_release)
    report = MigrateReport(state.version, steps[-1][1][-1].version if steps else state.version, dry_run)
    if not steps:
        return report
    clients = [] if force_connected else ledger.other_clients(conn)
    if clients:
        raise UnsafeState("other clients are connected to the database (is Harbor still running?): "
                          + "; ".join(clients), reference="db-in-use",
                          hint="stop Harbor (docker compose down) and retry, or pass "
                               "--force-connected if these sessions are known to be idle")
    # A session Harbor left (or one --force-connected let through) may hold a lock a step needs:
    # wait a bounded time for it, never forever.
    conn.execute(f"SET lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'")
    findings = [] if _linted_since(conn, state.version, to_release) else _lint(conn, state.version, to_release)
    if findings:
        raise UnsafeState(_lint_message(findings), reference="lint-findings",
                          hint=f"fix the rows listed (see `harbor-upgrade db lint --dsn "
                               f"'{dsn_without_password(dsn)}'`), then run db migrate again; nothing was written")
    if dry_run:
        _dry_run(conn, dsn, steps, report, progress)
    else:
        at = state.version
        runner.pin_sequences(conn, at)
        for i, (step, files) in enumerate(steps):
            try:
                with conn.transaction():
                    report.steps.append(runner.run_step(conn, step, files, progress, pin_next=i < len(steps) - 1))
            except runner.StatementFailed as err:
                if isinstance(err.__cause__, psycopg.errors.LockNotAvailable):
                    raise UnsafeState(f"release step {step.release} waited {LOCK_TIMEOUT_S:.0f} s for a lock held by "
                                      "another session and was rolled back; the database is at schema "
                                      f"{at}: " + "; ".join(ledger.other_clients(conn, settle=0)[:5]),
                                      reference="db-in-use",
                                      hint="stop those sessions (stop Harbor: docker compose down), then run again"
                                      ) from None
                raise runner.step_failure(err, at, dsn) from err
            at = files[-1].version
    return report


LOCK_TIMEOUT_S = float(os.environ.get("HARBOR_UPGRADE_LOCK_TIMEOUT", "60"))


class _DryRunDone(Exception):
    pass


def _dry_run(conn: psycopg.Connection, dsn: str, steps, report: MigrateReport,
            progress: StatementNote | None) -> None:
    seqs = runner.sequence_positions(conn)
    try:
        with conn.transaction():
            for step, files in steps:
                try:
                    report.steps.append(runner.run_step(conn, step, files, progress))
                except runner.StatementFailed as err:
                    raise runner.step_failure(err, report.from_version, dsn) from err
            raise _DryRunDone
    except _DryRunDone:
        pass
    finally:
        runner.restore_sequences(conn, seqs)


def _lint_message(findings: list[LintFinding]) -> str:
    lines = [f"{len(findings)} problem(s) would make the upgrade fail:"]
    for f in findings:
        lines.append(f"  [{f.step}] {f.table}: {f.problem} ({f.count} row(s)); fix: {f.fix}")
    return "\n".join(lines)


def repair(dsn: str) -> RepairResult:
    """Clear a dirty (or unknown) schema_migrations version after checking which version
    the schema really has; refuses when the schema matches no known version."""
    with connect(dsn) as conn:
        if not ledger.try_lock(conn):
            raise UnsafeState("another harbor-upgrade db run holds the migration lock",
                              reference="db-locked", hint="wait for it to finish")
        try:
            state = ledger.read_state(conn)
            matches = matching_versions(conn)
            known = state.version is not None and release_of_schema(state.version) is not None
            if not matches:
                raise UnsafeState(
                    f"the schema matches no Harbor schema version (recorded: {state.version}, "
                    f"dirty: {state.dirty}); a migration stopped half-way outside a transaction",
                    reference="schema-unrecognized",
                    hint="restore the backup taken before the upgrade (harbor-upgrade rollback)")
            if not state.dirty and known and state.version in matches:
                return RepairResult(state.version, state.dirty, matches, state.version, False)
            if state.version is not None and min(matches) > state.version:
                raise UnsafeState(
                    f"the schema looks like version {min(matches)}, newer than the recorded "
                    f"{state.version}; refusing to guess", reference="schema-unrecognized",
                    hint="restore the backup taken before the upgrade (harbor-upgrade rollback)")
            with conn.transaction():
                ledger.set_clean_version(conn, min(matches))
            return RepairResult(state.version, state.dirty, matches, min(matches), True)
        finally:
            if not conn.closed:
                ledger.unlock(conn)
