"""Read-only checks for rows that would make a later release step fail.

Each check is declared by the release step that would fail (``ReleaseStep.checks`` in
``db/steps/vX_Y_Z.py``), runs only while that step is pending, and returns every
offending row with the fix. The checks read the tables as they are before the step
(the shape of the database's current release).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import psycopg
from psycopg.rows import dict_row

from .connection import columns, table_exists

if TYPE_CHECKING:
    from .steps.base import ReleaseStep

MAX_ROWS = 1000


@dataclass
class LintFinding:
    step: str            # release step that would fail, e.g. "2.0.0"
    table: str
    problem: str
    rows: list[dict]     # the offending rows (at most MAX_ROWS)
    fix: str             # the SQL or action that resolves it
    count: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    table: str
    problem: str
    fix: str
    query: Callable[[set[str]], str | None]   # columns of `table` -> SQL (None: not applicable)
    bad: Callable[[dict], bool] | None = None  # row filter done in Python (JSON validity)
    before: int = 999                          # applies while the schema version is below this
    since: int = 0                             # ... and from this one on (earlier steps rewrite the rows)


def not_json(value: str | None) -> bool:
    if value is None:
        return False
    try:
        json.loads(value)
    except ValueError:
        return True
    return False


def not_integer(value: object) -> bool:
    try:
        int(str(value).strip())
    except ValueError:
        return True
    return False


def run_checks(conn: psycopg.Connection, schema_version: int, pending: Iterable[ReleaseStep]
               ) -> list[LintFinding]:
    """Every finding of the pending release steps' checks on a database at schema_version."""
    findings = []
    for step in pending:
        for check in step.checks:
            if check.since <= schema_version < check.before and table_exists(conn, check.table):
                finding = _run(conn, step.release, check)
                if finding:
                    findings.append(finding)
    return findings


def _run(conn: psycopg.Connection, release: str, check: Check) -> LintFinding | None:
    sql = check.query(columns(conn, check.table))
    if sql is None:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        rows = [r for r in cur.execute(sql) if check.bad is None or check.bad(r)]
    if not rows:
        return None
    return LintFinding(release, check.table, check.problem, [_plain(r) for r in rows[:MAX_ROWS]],
                       check.fix, len(rows))


def _plain(row: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else str(v))
            for k, v in row.items()}
