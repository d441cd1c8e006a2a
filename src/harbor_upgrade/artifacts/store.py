"""The database side of the backfill: what the 2.4.0 schema holds, the checkpoint, the writes.

Checkpoints live in the Harbor database itself, in a schema of our own
(``harbor_upgrade_artifacts``) so Harbor's ``public`` tables stay exactly as Harbor
defines them; the schema is dropped when a run completes. A repository is checkpointed
in the same transaction as its rows, so a run killed at any moment resumes at the first
repository whose rows are not committed.

Rows we create get explicit ids: max(id) or the sequence's value, whichever is higher,
plus one. Nothing calls nextval, so a rolled-back batch leaves no gap and a resumed run
gives the ids an uninterrupted run gives; sequences are moved past our ids after commit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import psycopg
import psycopg.rows

from ..db import ledger
from ..db.connection import columns, one
from ..db.connection import connect as db_connect
from ..db.runner import check_version
from ..errors import InvalidInput, UnsafeState
from ..secrets import dsn_without_password, mask_dsn
from ..versions import SCHEMA_VERSION
from .abstraction import Artifact

SCHEMA = "harbor_upgrade_artifacts"
# The oldest release whose schema the backfill writes (harbor-core abstracted up to 2.8).
FIRST_TARGET = "2.4.0"
# pg_advisory_lock key of the backfill ("harbor-upgrade artifacts")
BACKFILL_LOCK_KEY = 0x68617262_61727466


def connect_backfill(dsn: str) -> psycopg.Connection:
    return db_connect(dsn, application_name="harbor-upgrade artifacts")


def check_schema(conn: psycopg.Connection, dsn: str) -> None:
    """The backfill fills the artifact columns of 2.4's schema, which every later release
    keeps: the schema must be clean and of a known release from 2.4.0 on."""
    state = ledger.read_state(conn)
    check_version(state, dsn)
    if state.version < SCHEMA_VERSION[FIRST_TARGET]:
        raise UnsafeState(f"the database {mask_dsn(dsn)} has schema version {state.version}; artifact "
                          f"metadata is filled in the schema of {FIRST_TARGET} ({SCHEMA_VERSION[FIRST_TARGET]}) "
                          "or a later release",
                          reference="schema-not-target",
                          hint=f"run `harbor-upgrade db migrate --dsn '{dsn_without_password(dsn)}'` first")


def lock(conn: psycopg.Connection) -> None:
    if not one(conn.execute("SELECT pg_try_advisory_lock(%s)", (BACKFILL_LOCK_KEY,)))[0]:
        raise UnsafeState("another `harbor-upgrade artifacts` run is working on this database",
                          reference="artifacts-locked",
                          hint="wait for it to finish, then run again with --resume if needed")


# ------------------------------------------------------------------------------ checkpoint

@dataclass(frozen=True)
class RunState:
    started_at: datetime        # the push_time of every row this run creates
    import_untagged: bool
    done: frozenset[str]        # repositories already committed


def begin_run(conn: psycopg.Connection, resume: bool, import_untagged: bool) -> RunState:
    """Resume the stored run (resume=True and one exists) or start a new one."""
    exists = one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.run",)))[0]
    if exists and resume:
        started_at, stored_untagged = one(conn.execute(f"SELECT started_at, import_untagged FROM {SCHEMA}.run"
                                                   ))
        if stored_untagged != import_untagged:
            flag = "with" if stored_untagged else "without"
            raise InvalidInput(f"the interrupted run was started {flag} --import-untagged",
                               reference="resume-options-differ",
                               hint=f"resume it {flag} --import-untagged, or start over without --resume")
        done = frozenset(r[0] for r in conn.execute(f"SELECT name FROM {SCHEMA}.repository"))
        return RunState(started_at, import_untagged, done)
    with conn.transaction():
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(f"""CREATE TABLE {SCHEMA}.run (
            started_at timestamp NOT NULL, import_untagged boolean NOT NULL)""")
        conn.execute(f"""CREATE TABLE {SCHEMA}.repository (
            name text PRIMARY KEY, artifacts int NOT NULL, children int NOT NULL,
            imported int NOT NULL, refs int NOT NULL, untagged int NOT NULL, covered int NOT NULL)""")
        conn.execute(f"""CREATE TABLE {SCHEMA}.note (
            seq bigserial PRIMARY KEY, kind text NOT NULL, repository text NOT NULL,
            digest text NOT NULL, name text NOT NULL, reason text NOT NULL, detail text NOT NULL)""")
        started_at = one(conn.execute(
            # Harbor's own push times are UTC (its containers run in UTC)
            f"INSERT INTO {SCHEMA}.run VALUES (now() AT TIME ZONE 'UTC', %s) RETURNING started_at",
            (import_untagged,)))[0]
    return RunState(started_at, import_untagged, frozenset())


def analyze(conn: psycopg.Connection) -> None:
    """Statistics of the tables the backfill reads by repository: right after a database upgrade
    the artifact table is new and has none, and the planner scans it whole for each group of
    repositories (a table its owner alone may analyze: for anyone else, a warning and no harm)."""
    for table in ("repository", "artifact"):
        conn.execute(f"ANALYZE {table}")


def finish_run(conn: psycopg.Connection) -> None:
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


# ------------------------------------------------------------------------------ reading

@dataclass(frozen=True)
class RepositoryRow:
    repository_id: int
    project_id: int


def repositories(conn: psycopg.Connection) -> dict[str, RepositoryRow]:
    return {name: RepositoryRow(rid, pid) for name, rid, pid in
            conn.execute("SELECT name, repository_id, project_id FROM repository")}


def projects(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT name, project_id FROM project WHERE NOT deleted"))


def artifact_ids(conn: psycopg.Connection, repository_ids: list[int]) -> dict[int, dict[str, int]]:
    """{repository_id: {digest: artifact id}} for a group of repositories (one round trip)."""
    out: dict[int, dict[str, int]] = {rid: {} for rid in repository_ids}
    for rid, digest, aid in conn.execute("SELECT repository_id, digest, id FROM artifact "
                                         "WHERE repository_id = ANY(%s)", (repository_ids,)):
        out[rid][digest] = aid
    return out


def count_artifacts(conn: psycopg.Connection) -> int:
    return one(conn.execute("SELECT count(*) FROM artifact"))[0]


def note_artifacts_outside(conn: psycopg.Connection) -> int:
    """Record a problem for every artifact row whose repository storage does not have
    (no walked repository of that name); returns how many."""
    cur = conn.execute(f"""INSERT INTO {SCHEMA}.note (kind, repository, digest, name, reason, detail)
        SELECT 'problem', r.name, a.digest, '', 'manifest-unknown', 'the repository is not in the storage'
        FROM artifact a JOIN repository r ON r.repository_id = a.repository_id
        WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.repository s WHERE s.name = r.name)
        ORDER BY r.name, a.digest""")
    return cur.rowcount


def totals(conn: psycopg.Connection) -> dict[str, int]:
    row = one(conn.execute(f"""SELECT coalesce(sum(artifacts),0), coalesce(sum(children),0),
                                  coalesce(sum(imported),0), coalesce(sum(refs),0),
                                  coalesce(sum(untagged),0), coalesce(sum(covered),0)
                           FROM {SCHEMA}.repository"""))
    names = ("artifacts", "children", "imported", "references", "untagged", "covered")
    return dict(zip(names, map(int, row), strict=False))


def notes(conn: psycopg.Connection) -> list[tuple[str, str, str, str, str, str]]:
    return conn.execute(f"SELECT kind, repository, digest, name, reason, detail FROM {SCHEMA}.note "
                        "ORDER BY seq").fetchall()


# ------------------------------------------------------------------------------ writing

@dataclass
class NewArtifact:
    artifact: Artifact
    repository: str
    imported: bool          # an untagged manifest imported on request (not an index child)
    tags: tuple[str, ...]   # storage tags to create with it (imports only)


@dataclass
class RepositoryWrite:
    """Everything one repository contributes to a batch."""
    name: str
    project: str
    repository_id: int | None        # None: create the repository row (imports)
    updates: list[tuple[int, Artifact]]
    created: list[NewArtifact]
    existing_ids: dict[str, int]
    notes: list[tuple[str, str, str, str, str]]   # kind, digest, name, reason, detail
    untagged: int
    db_artifacts: int                # how many of the database's rows this repository covered
    source: str = ""                 # "prefetch" or "storage" when a prefetch was offered


def _next_id(conn: psycopg.Connection, table: str, column: str, sequence: str) -> int:
    row = one(conn.execute(f"SELECT coalesce(max({column}), 0) FROM {table}"))
    seq = one(conn.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}"))
    return max(row[0], seq[0]) + 1


def _jsonb(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


_SEQUENCES = {"artifact": ("id", "artifact_id_seq"), "artifact_reference": ("id", "artifact_reference_id_seq"),
              "tag": ("id", "tag_id_seq"), "repository": ("repository_id", "repository_repository_id_seq")}


class _NextIds(dict[str, int]):
    """The next id of each table, asked of the database when a batch first needs one (a batch
    that only updates rows, as one from the prefetch mostly does, asks nothing)."""

    def __init__(self, conn: psycopg.Connection):
        super().__init__()
        self.conn = conn

    def __missing__(self, table: str) -> int:
        value = self[table] = _next_id(self.conn, table, *_SEQUENCES[table])
        return value


# the temporary tables a batch stages its rows in (one set per connection, emptied at each commit)
_STAGING = """
    CREATE TEMP TABLE IF NOT EXISTS backfill_update (id int, type text, media_type text,
        manifest_media_type text, size bigint, extra_attrs text, annotations jsonb, icon text) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS backfill_reference (ord int, parent_id int, child_id int,
        child_digest text, platform text, urls text, annotations jsonb) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS backfill_tag (ord int, repository_id int, artifact_id int,
        name text) ON COMMIT DELETE ROWS"""


def write_batch(conn: psycopg.Connection, batch: list[RepositoryWrite], run: RunState,
                project_ids: dict[str, int], repository_rows: dict[str, RepositoryRow],
                typed: bool | None = None) -> None:
    """One transaction: the rows of these repositories and their checkpoints. typed: whether the
    artifact table has 2.11's artifact_type (``has_artifact_type``; asked when not given).
    Statements without parameters go together, one round trip each group."""
    inserted: set[str] = set()
    if typed is None:
        typed = has_artifact_type(conn)
    with conn.transaction():
        # A batch's commit need not wait for its WAL to reach the disk: a crash loses at most the
        # last batches with their checkpoints (a resumed run writes them again), and the run's
        # last transaction (``backfill._finish``) commits synchronously, which flushes them all.
        # Harbor is stopped during an upgrade; the lock keeps any other writer out of our ids.
        conn.execute("SET LOCAL synchronous_commit = off; "
                     "LOCK TABLE artifact, artifact_reference, tag, repository IN SHARE ROW EXCLUSIVE MODE; "
                     + _STAGING)
        next_ids = _NextIds(conn)
        artifact_rows, reference_rows, tag_rows, updates = [], [], [], []
        repo_counts = []
        for w in batch:
            ids = dict(w.existing_ids)
            repository_id = w.repository_id
            if repository_id is None and w.created:
                project_id = project_ids.get(w.project)
                if project_id is None:
                    w.notes.append(("problem", "", "", "project-unknown",
                                    f"project {w.project!r} does not exist in the database"))
                    w.created = []
                else:
                    repository_id = next_ids["repository"]
                    next_ids["repository"] += 1
                    conn.execute("""INSERT INTO repository (repository_id, name, project_id, creation_time,
                                    update_time) VALUES (%s, %s, %s, %s, %s)""",
                                 (repository_id, w.name, project_id, run.started_at, run.started_at))
                    repository_rows[w.name] = RepositoryRow(repository_id, project_id)
                    inserted.add("repository")
            project_id = repository_rows[w.name].project_id if repository_id is not None else None
            children = imported = 0
            for new in w.created:
                art = new.artifact
                aid = next_ids["artifact"]
                next_ids["artifact"] += 1
                ids[art.digest] = aid
                artifact_rows.append((aid, project_id, w.name, repository_id, art.digest, art.type,
                                      art.media_type, art.manifest_media_type, art.size, art.extra_attrs,
                                      _jsonb(art.annotations), art.icon, run.started_at))
                imported += new.imported
                children += not new.imported
                for tag in new.tags:
                    tag_rows.append((repository_id, aid, tag))
            refs = 0
            updates.extend(w.updates)
            for aid, art in w.updates + [(ids[n.artifact.digest], n.artifact) for n in w.created]:
                for ref in art.references:
                    reference_rows.append((aid, ids[ref.child_digest], ref.child_digest, ref.platform,
                                           ref.urls, _jsonb(ref.annotations)))
                    refs += 1
            repo_counts.append((w.name, len(w.updates) + len(w.created), children, imported, refs,
                                w.untagged, w.db_artifacts))
        if updates:
            _update_artifacts(conn, updates, typed)
        if artifact_rows:
            with conn.cursor().copy(f"""COPY artifact (id, project_id, repository_name, repository_id, digest,
                    type, media_type, manifest_media_type, size, extra_attrs, annotations, icon, push_time
                    {", artifact_type" if typed else ""}) FROM STDIN""") as copy:
                for row in artifact_rows:
                    copy.write_row(row + ((row[6],) if typed else ()))
            inserted.add("artifact")
        if reference_rows:
            if _write_references(conn, reference_rows, next_ids["artifact_reference"]):
                inserted.add("artifact_reference")
        if tag_rows:
            if _write_tags(conn, tag_rows, next_ids["tag"], run.started_at):
                inserted.add("tag")
        with conn.cursor().copy(f"COPY {SCHEMA}.repository (name, artifacts, children, imported, refs, untagged,"
                                " covered) FROM STDIN") as copy:
            for count_row in repo_counts:
                copy.write_row(count_row)
        note_rows = [(kind, w.name, digest, name, reason, detail)
                     for w in batch for kind, digest, name, reason, detail in w.notes]
        if note_rows:
            with conn.cursor().copy(f"COPY {SCHEMA}.note (kind, repository, digest, name, reason, detail)"
                                    " FROM STDIN") as copy:
                for note_row in note_rows:
                    copy.write_row(note_row)
    for table in sorted(inserted):
        column, sequence = _SEQUENCES[table]
        conn.execute(f"SELECT setval('{sequence}', (SELECT max({column}) FROM {table})) "
                     f"WHERE (SELECT max({column}) FROM {table}) > "
                     f"(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence})")


def has_artifact_type(conn: psycopg.Connection) -> bool:
    """2.11 (schema 140) added artifact.artifact_type, filled from the media type: rows the
    backfill fills get the same (what Harbor's path gives: abstracted by 2.4 ... 2.8 core,
    then copied by 0140)."""
    return "artifact_type" in columns(conn, "artifact")


def _update_artifacts(conn: psycopg.Connection, updates: list[tuple[int, Artifact]], typed: bool) -> None:
    with conn.cursor().copy("COPY backfill_update FROM STDIN") as copy:
        for aid, a in updates:
            copy.write_row((aid, a.type, a.media_type, a.manifest_media_type, a.size, a.extra_attrs,
                            _jsonb(a.annotations), a.icon))
    # one pass: each row is written once (2.11's artifact_type with it, from the same media type);
    # each row found by its id: a hash join would read the whole artifact table for every batch
    conn.execute(f"""SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
                     UPDATE artifact a SET type = u.type, media_type = u.media_type,
                     manifest_media_type = u.manifest_media_type, size = u.size,
                     extra_attrs = u.extra_attrs, annotations = u.annotations, icon = u.icon
                     {", artifact_type = u.media_type" if typed else ""}
                     FROM backfill_update u WHERE a.id = u.id;
                     RESET enable_hashjoin; RESET enable_mergejoin""")


def _write_references(conn: psycopg.Connection, rows: list[tuple], first_id: int) -> bool:
    """Make each parent's references exactly these: update kept ones (their ids stay),
    delete stale ones, insert new ones with explicit ids. True when rows were inserted."""
    with conn.cursor().copy("COPY backfill_reference FROM STDIN") as copy:
        for i, row in enumerate(rows):
            copy.write_row((i,) + row)
    conn.execute("""DELETE FROM artifact_reference r
                    WHERE r.parent_id IN (SELECT parent_id FROM backfill_reference)
                      AND NOT EXISTS (SELECT 1 FROM backfill_reference b
                                      WHERE b.parent_id = r.parent_id AND b.child_id = r.child_id);
                    UPDATE artifact_reference r SET child_digest = b.child_digest, platform = b.platform,
                    urls = b.urls, annotations = b.annotations
                    FROM backfill_reference b WHERE b.parent_id = r.parent_id AND b.child_id = r.child_id""")
    cur = conn.execute("""INSERT INTO artifact_reference (id, parent_id, child_id, child_digest, platform, urls,
                                                          annotations)
                          SELECT %s - 1 + row_number() OVER (ORDER BY b.ord), b.parent_id, b.child_id,
                                 b.child_digest, b.platform, b.urls, b.annotations
                          FROM backfill_reference b
                          WHERE NOT EXISTS (SELECT 1 FROM artifact_reference r
                                            WHERE r.parent_id = b.parent_id AND r.child_id = b.child_id)""",
                       (first_id,))
    return cur.rowcount > 0


def _write_tags(conn: psycopg.Connection, rows: list[tuple], first_id: int, push_time: datetime) -> bool:
    with conn.cursor().copy("COPY backfill_tag FROM STDIN") as copy:
        for i, row in enumerate(rows):
            copy.write_row((i,) + row)
    cur = conn.execute("""INSERT INTO tag (id, repository_id, artifact_id, name, push_time)
                          SELECT %s - 1 + row_number() OVER (ORDER BY b.ord), b.repository_id, b.artifact_id,
                                 b.name, %s
                          FROM backfill_tag b
                          WHERE NOT EXISTS (SELECT 1 FROM tag t WHERE t.repository_id = b.repository_id
                                                                AND t.name = b.name)""",
                       (first_id, push_time))
    return cur.rowcount > 0


def artifact_rows(conn: psycopg.Connection, projects: tuple[str, ...] | None = None) -> list[dict]:
    """Every artifact row with its tags and references, ordered by (repository, digest):
    the state a backfill leaves, for comparisons and verification."""
    where = "WHERE split_part(a.repository_name, '/', 1) = ANY(%s)" if projects else ""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    cur.execute(f"""SELECT a.*,
            coalesce((SELECT array_agg(t.name ORDER BY t.name) FROM tag t WHERE t.artifact_id = a.id),
                     '{{}}') AS tags,
            coalesce((SELECT json_agg(json_build_object(
                        'id', r.id, 'child_id', r.child_id, 'child_digest', r.child_digest,
                        'platform', r.platform, 'urls', r.urls, 'annotations', r.annotations) ORDER BY r.id)
                      FROM artifact_reference r WHERE r.parent_id = a.id), '[]') AS "references"
        FROM artifact a {where} ORDER BY a.repository_name, a.digest""", (list(projects),) if projects else ())
    return cur.fetchall()
