"""Recognise which schema version a database really has, to clear a dirty flag safely.

Each known version is recognised by the schema objects its upstream file adds or
removes. Files 0031, 0041 and 0061 change data only, so 30/31, 40/41 and 60/61 look
alike; repair then picks the lower one, whose next file is safe to apply again.
"""
from __future__ import annotations

from typing import Callable

import psycopg

from .connection import columns, index_exists, table_exists

Probe = Callable[[psycopg.Connection], bool]


def _col(table: str, col: str) -> Probe:
    return lambda c: table_exists(c, table) and col in columns(c, table)


def _no_col(table: str, col: str) -> Probe:
    return lambda c: not _col(table, col)(c)


def _table(t: str) -> Probe:
    return lambda c: table_exists(c, t)


def _no_table(t: str) -> Probe:
    return lambda c: not table_exists(c, t)


def _index(name: str) -> Probe:
    return lambda c: index_exists(c, name)


# What each file leaves in the schema (checked cumulatively, oldest first).
MARKERS: tuple[tuple[int, tuple[Probe, ...]], ...] = (
    (15, (_table("access_log"), _col("artifact", "tag"), _col("artifact", "kind"))),
    (30, (_table("tag"), _table("audit_log"), _no_table("access_log"), _no_col("artifact", "tag"),
          _col("schema_migrations", "data_version"), _table("label_reference"))),
    (31, ()),
    (40, (_table("execution"), _table("data_migrations"), _table("cve_allowlist"),
          _no_col("schedule", "job_id"), _no_col("schema_migrations", "data_version"))),
    (41, ()),
    (50, (_table("vulnerability_record"), _no_table("admin_job"), _no_table("replication_execution"),
          _no_table("retention_task"), _col("robot", "secret"))),
    (51, (_index("task_execution_id_idx"),)),
    (52, (_col("schedule", "revision"),)),
    (53, (_index("idx_tag_artifact_id"),)),
    (60, (_col("replication_policy", "dest_namespace_replace_count"), _index("idx_audit_log_op_time"))),
    (61, ()),
    (70, (_col("replication_policy", "speed_kb"), _col("quota", "version"))),
)


def matching_versions(conn: psycopg.Connection) -> list[int]:
    """The versions whose schema this database has: the newest schema-changing file whose
    markers all hold, followed by the data-only files after it. Empty: no known schema."""
    for i in range(len(MARKERS) - 1, -1, -1):
        v, probes = MARKERS[i]
        if probes and all(p(conn) for p in probes):
            out = [v]
            for w, later in MARKERS[i + 1:]:
                if later:
                    break
                out.append(w)
            return out
    return []
