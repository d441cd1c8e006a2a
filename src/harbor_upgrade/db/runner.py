"""Find the release steps a database needs and apply them, one transaction each."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import psycopg

from ..errors import ExternalFailure, UnsafeState, UnsupportedVersion
from ..secrets import dsn_without_password, mask_text
from ..versions import path_between, release_line, release_of_schema
from . import ledger
from .connection import one, table_exists
from .steps import APPLIED, STEPS, ReleaseStep, SchemaFile

StatementNote = Callable[[str, str], None]
OLDEST_SUPPORTED = STEPS[0].version
# The chain of the database steps (it may run ahead of the config chain while a release is added).
DB_RELEASES: tuple[str, ...] = tuple(s.release for s in STEPS)


@dataclass
class StatementResult:
    what: str
    rows: int | None      # rows written, None for schema changes
    seconds: float


@dataclass
class DataLoss:
    release: str
    what: str
    rows: int


@dataclass
class ReleaseStepResult:
    name: str             # "2.0.0 (0030+0031)"
    release: str
    versions: list[int]
    ok: bool = False
    seconds: float = 0.0
    rows: int = 0
    statements: list[StatementResult] = field(default_factory=list)
    lost: list[DataLoss] = field(default_factory=list)       # rows the release drops by design
    left_to_core: list[str] = field(default_factory=list)    # what harbor-core does at its start


@dataclass
class MigrateReport:
    from_version: int
    to_version: int
    dry_run: bool
    steps: list[ReleaseStepResult] = field(default_factory=list)

    @property
    def lost(self) -> list[DataLoss]:
        return [loss for step in self.steps for loss in step.lost]

    def to_dict(self) -> dict:
        return asdict(self)


def step_name(step: ReleaseStep, files: tuple[SchemaFile, ...]) -> str:
    return f"{step.release} ({'+'.join(f'{f.version:04d}' for f in files)})"


def target_version(to: str) -> tuple[str, int]:
    release = release_line(to, where="--to: ", releases=DB_RELEASES)
    step = next((s for s in APPLIED if s.release == release), None)
    if step is None:
        raise UnsupportedVersion(f"--to {to}: the database can be upgraded to {APPLIED[0].release} ... "
                                 f"{APPLIED[-1].release}")
    return release, step.version


def known_versions() -> str:
    """Every schema version of a known release, for messages: '15, 30, 31, 40, ...'."""
    return ", ".join(str(v) for s in STEPS for v in s.schema_versions)


def check_version(state: ledger.LedgerState, dsn: str) -> str:
    """The release line of the database, or the error that explains its state."""
    cmd_dsn = dsn_without_password(dsn)
    if state.version is None:
        raise UnsafeState("the database has no schema_migrations version: it is not a Harbor "
                          "database, or Harbor never started on it",
                          reference="not-a-harbor-db",
                          hint="point --dsn at Harbor's `registry` database")
    if 0 < state.version < OLDEST_SUPPORTED:
        raise UnsupportedVersion(f"schema version {state.version} is older than Harbor 1.10 "
                                 f"(version {OLDEST_SUPPORTED}): upgrade to 1.10 first",
                                 hint="upgrade Harbor to v1.10.x with Harbor's own migrator, "
                                      "then run harbor-upgrade")
    release = release_of_schema(state.version)
    if release is None:
        raise UnsafeState(f"schema version {state.version} is not one of a Harbor release "
                          f"{STEPS[0].release} ... {STEPS[-1].release} ({known_versions()})",
                          reference="unknown-schema-version",
                          hint=f"if Harbor wrote it, check the schema with `harbor-upgrade db repair "
                               f"--dsn '{cmd_dsn}'`; otherwise restore the backup")
    if state.dirty:
        raise UnsafeState(f"schema version {state.version} is marked dirty: a migration to "
                          f"version {state.version} failed or was stopped half-way, and Harbor "
                          "refuses to start on it",
                          reference="dirty-schema",
                          hint=f"harbor-upgrade db repair --dsn '{cmd_dsn}' finds the version the "
                               "schema really has and clears the flag; then run db migrate again")
    return release


def plan_steps(version: int, to_release: str) -> list[tuple[ReleaseStep, tuple[SchemaFile, ...]]]:
    """The release steps (and their files still to apply) from version up to to_release."""
    current = release_of_schema(version)
    if current is None:
        raise ValueError(f"schema version {version} is no release's (check_version refuses it)")
    wanted = set(path_between(current, to_release, releases=DB_RELEASES)) | {current}
    out = []
    for step in APPLIED:
        files = step.files_after(version, upto=step.version if step.release == to_release else None)
        if step.release in wanted and files:
            out.append((step, files))
    return out


def run_step(conn: psycopg.Connection, step: ReleaseStep, files: tuple[SchemaFile, ...],
             progress: StatementNote | None, pin_next: bool = False) -> ReleaseStepResult:
    """Apply the files in the current transaction and record the version they reach; then
    record the sequences for the next step (pin_next, see pin_sequences) or drop the record."""
    name = step_name(step, files)
    result = ReleaseStepResult(name, step.release, [f.version for f in files], left_to_core=list(step.at_start))
    t0 = time.monotonic()
    tune_step(conn)
    result.lost = count_losses(conn, step)
    for f in files:
        for st in f.statements:
            if progress:
                progress(name, st.what)
            s0 = time.monotonic()
            try:
                cur = conn.execute(st.sql)
            except psycopg.Error as exc:
                raise StatementFailed(name, f.version, st.what, exc) from exc
            rows = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
            result.statements.append(StatementResult(st.what, rows, round(time.monotonic() - s0, 3)))
            result.rows += rows or 0
    ledger.write_version(conn, files[-1].version)
    if pin_next:
        record_sequences(conn, files[-1].version)
    else:
        unpin_sequences(conn)
    result.seconds = round(time.monotonic() - t0, 3)
    result.ok = True
    return result


# Settings for a release step's transaction (SET LOCAL: they end with it). The steps are a few
# large statements each: JIT compilation costs a few hundred ms per statement and saves nothing
# here (scale 350, 1.10 -> 2.15.0: server CPU 45.2 s -> 43.4 s with jit off); memory for sorts,
# hashes and index builds is raised to at least these values (harbor-db runs with PostgreSQL's
# defaults of 4 MB and 64 MB), never lowered.
STEP_MEMORY = (("work_mem", "64MB"), ("maintenance_work_mem", "256MB"))


def tune_step(conn: psycopg.Connection) -> None:
    conn.execute("SET LOCAL jit = off")
    for name, floor in STEP_MEMORY:
        conn.execute("SELECT set_config(%s, %s, true) WHERE pg_size_bytes(current_setting(%s)) < pg_size_bytes(%s)",
                     (name, floor, name, floor))


def count_losses(conn: psycopg.Connection, step: ReleaseStep) -> list[DataLoss]:
    """How many rows the step's release drops by design, on the schema before the step."""
    return [DataLoss(step.release, loss.what, int(one(conn.execute(loss.count))[0]))
            for loss in step.losses if table_exists(conn, loss.table)]


class StatementFailed(Exception):
    def __init__(self, step: str, version: int, what: str, exc: psycopg.Error):
        super().__init__(f"{step}, file {version:04d}, '{what}': {str(exc).strip()}")
        self.step, self.version, self.what, self.exc = step, version, what, exc


def step_failure(err: StatementFailed, left_at: int, dsn: str) -> ExternalFailure:
    return ExternalFailure(
        mask_text(f"release step {err.step} failed at '{err.what}' (file {err.version:04d}): "
                  f"{str(err.exc).strip()}. Nothing of this step was written: the database is "
                  f"still at schema version {left_at}, not dirty."),
        reference="db-step-failed",
        hint=f"harbor-upgrade db lint --dsn '{dsn_without_password(dsn)}' lists rows that break the step; "
             "fix them, then run db migrate again")


def sequence_positions(conn: psycopg.Connection) -> list[tuple[str, int, bool]]:
    """(name, last_value, is_called) of every sequence: nextval is not transactional,
    so a dry run puts them back after its rollback. Two queries whatever their number
    (pg_sequences has no is_called and hides last_value until the first nextval)."""
    names = [r[0] for r in conn.execute(
        "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1").fetchall()]
    if not names:
        return []
    union = " UNION ALL ".join(f"SELECT {i}, last_value, is_called FROM public.{n}" for i, n in enumerate(names))
    return [(names[i], int(last), bool(called)) for i, last, called in conn.execute(union).fetchall()]


def restore_sequences(conn: psycopg.Connection, values: list[tuple[str, int, bool]]) -> None:
    if values:
        conn.execute("SELECT setval(('public.' || n)::regclass, v, c) "
                     "FROM unnest(%s::text[], %s::bigint[], %s::boolean[]) AS s(n, v, c)",
                     ([n for n, _, _ in values], [v for _, v, _ in values], [c for _, _, c in values]))


# A step that fails or is killed rolls back, but the sequences it advanced stay advanced.
# The sequences are recorded (committed) in a table of our own before the first step, and
# each step's own transaction records them again for the next step (or drops the record
# after the last one): a rerun at the same schema version puts them back first, so its new
# rows get the ids an uninterrupted run gives.
PIN_SCHEMA = "harbor_upgrade_db"


def pin_sequences(conn: psycopg.Connection, version: int) -> None:
    """Put the sequences back where a run stopped inside the step after ``version`` found
    them, or record them for this step (in its own committed transaction)."""
    with conn.transaction():
        if one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{PIN_SCHEMA}.sequences",)))[0]:
            rows = conn.execute(f"SELECT name, last_value, is_called FROM {PIN_SCHEMA}.sequences "
                                "WHERE at_version = %s", (version,)).fetchall()
            if rows:
                restore_sequences(conn, [(n, int(v), bool(c)) for n, v, c in rows])
                return
        else:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {PIN_SCHEMA}")
            conn.execute(f"""CREATE TABLE {PIN_SCHEMA}.sequences (at_version int NOT NULL, name text NOT NULL,
                             last_value bigint NOT NULL, is_called boolean NOT NULL)""")
        record_sequences(conn, version)


def record_sequences(conn: psycopg.Connection, version: int) -> None:
    """Replace the record with the sequences as they are now, for the step after ``version``
    (in the caller's transaction: a step records them for the next one as it commits)."""
    values = sequence_positions(conn)
    conn.execute(f"DELETE FROM {PIN_SCHEMA}.sequences")
    with conn.cursor().copy(f"COPY {PIN_SCHEMA}.sequences FROM STDIN") as copy:
        for name, last, called in values:
            copy.write_row((version, name, last, called))


def unpin_sequences(conn: psycopg.Connection) -> None:
    conn.execute(f"DROP SCHEMA IF EXISTS {PIN_SCHEMA} CASCADE")
