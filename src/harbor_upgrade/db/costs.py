"""What an upgrade will cost on this database, read cheaply before anything runs (for
``plan``'s estimate): the rows of every table (the planner's statistics), the database's
size, a short timed query that says how fast this server is now, and, for each pending
release step, the rows of the tables its statements touch.

The tables a step touches are read from its own statements (UPDATE / INSERT INTO / FROM /
JOIN / ALTER TABLE / CREATE INDEX ... ON), so a step declares its cost drivers by what it
does and the knowledge stays next to the release step. A table a pending step creates and
fills from another (``INSERT INTO new ... SELECT ... FROM old``, ``CREATE TABLE new AS``,
``ALTER TABLE old RENAME TO new``) is counted with the rows of its source, so a later step
that rewrites it is charged for them. Read-only throughout.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from .. import versions
from . import ledger, runner
from .connection import columns, connect, one
from .steps import ReleaseStep, SchemaFile

# a table name after a keyword that reads or writes a table
_TABLE_RE = re.compile(r"\b(?:UPDATE|INTO|FROM|JOIN|TABLE|ON)\s+(?:ONLY\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
                       r"(?:public\.)?\"?([a-z_][a-z0-9_]*)\"?", re.IGNORECASE)
_FILLED_RE = re.compile(r"\b(?:INSERT\s+INTO|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?)\s+(?:public\.)?\"?"
                        r"([a-z_][a-z0-9_]*)", re.IGNORECASE)
_RENAME_RE = re.compile(r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:public\.)?\"?([a-z_][a-z0-9_]*)\"?\s+"
                        r"RENAME\s+TO\s+\"?([a-z_][a-z0-9_]*)", re.IGNORECASE)
_DROP_RE = re.compile(r"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:public\.)?\"?([a-z_][a-z0-9_]*)", re.IGNORECASE)
# the speed probe: CPU work on the server, a few tens of milliseconds on this machine kind
PROBE_SQL = "SELECT count(DISTINCT md5(g::text)) FROM generate_series(1, 30000) g"


@dataclass(frozen=True)
class ReleaseCost:
    """One pending release step and the rows of the tables its statements touch."""
    release: str
    name: str
    statements: int
    rows: int
    tables: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseCost:
    database_bytes: int
    cluster_bytes: int            # every database of the server (what pg_upgrade copies)
    table_rows: dict[str, int]
    releases: list[ReleaseCost]
    probe_seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.table_rows.values())


def table_rows(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every table of the public schema: pg_class.reltuples where the table was ever
    analysed (autovacuum keeps it close), else counted (a table the statistics never saw)."""
    out: dict[str, int] = {}
    unknown = []
    for name, tuples in conn.execute(
            "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"):
        if tuples is None or tuples < 0:
            unknown.append(name)
        else:
            out[name] = int(tuples)
    for name in unknown:
        out[name] = int(one(conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(name))))[0])
    return out


def probe(conn: psycopg.Connection, repeat: int = 3) -> float:
    """Seconds of a fixed CPU-bound query on the server, the best of ``repeat``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn.execute(PROBE_SQL).fetchone()
        best = min(best, time.perf_counter() - t0)
    return best


def statement_tables(sql: str) -> list[str]:
    """The table names a statement mentions after a reading or writing keyword (candidates:
    the caller keeps those it knows)."""
    return list(dict.fromkeys(m.group(1).lower() for m in _TABLE_RE.finditer(sql)))


def release_costs(steps: list[tuple[ReleaseStep, tuple[SchemaFile, ...]]],
                  rows: dict[str, int]) -> list[ReleaseCost]:
    """Each step's touched tables with their rows, the tables the earlier steps create
    carried along (see the module doc). ``rows`` is not changed."""
    known = dict(rows)
    out = []
    for step, files in steps:
        touched: dict[str, int] = {}
        count = 0
        for f in files:
            for st in f.statements:
                count += 1
                text = st.sql
                names = [n for n in statement_tables(text) if n in known]
                for n in names:
                    touched[n] = known[n]
                for old, new in _RENAME_RE.findall(text):
                    known[new.lower()] = known.pop(old.lower(), 0)
                filled = _FILLED_RE.search(text)
                if filled:
                    target = filled.group(1).lower()
                    sources = [known[n] for n in statement_tables(text[filled.end():])
                               if n in known and n != target]
                    known[target] = known.get(target, 0) + (max(sources) if sources else 0)
                for dropped in _DROP_RE.findall(text):
                    known.pop(dropped.lower(), None)
        out.append(ReleaseCost(step.release, runner.step_name(step, files), count, sum(touched.values()),
                               touched))
    return out


def database_cost(dsn: str, to: str | None = None) -> DatabaseCost:
    """What plan's estimate needs of the database at dsn (read-only, a fraction of a second)."""
    with connect(dsn) as conn:
        conn.execute("SET statement_timeout = '20s'")
        rows = table_rows(conn)
        database_bytes = int(one(conn.execute("SELECT pg_database_size(current_database())"))[0])
        cluster_bytes = int(one(conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database"))[0])
        state = ledger.read_state(conn)
        pending: list[ReleaseCost] = []
        if state.version is not None and not state.dirty and versions.release_of_schema(state.version):
            to_release, _ = runner.target_version(to or versions.TARGET)
            pending = release_costs(runner.plan_steps(state.version, to_release), rows)
        seconds = probe(conn)
    return DatabaseCost(database_bytes, cluster_bytes, rows, pending, seconds)


def artifacts_by_repository(dsn: str) -> dict[str, int]:
    """Artifacts (distinct digests) per repository name, in the 1.10 layout (repo) or the 2.x one."""
    with connect(dsn) as conn:
        repo = "repository_name" if "repository_name" in columns(conn, "artifact") else "repo"
        return {r[0]: int(r[1]) for r in conn.execute(
            f"SELECT {repo}, count(DISTINCT digest) FROM artifact GROUP BY 1")}


def digests_of(dsn: str, repositories: list[str]) -> dict[str, list[str]]:
    """The artifact digests of the given repositories."""
    out: dict[str, list[str]] = {r: [] for r in repositories}
    with connect(dsn) as conn:
        repo = "repository_name" if "repository_name" in columns(conn, "artifact") else "repo"
        for name, digest in conn.execute(f"SELECT DISTINCT {repo}, digest FROM artifact WHERE {repo} = ANY(%s)",
                                         (repositories,)):
            out[name].append(digest)
    return out
