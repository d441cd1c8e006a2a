"""SQL shared by several release steps (Harbor repeats some statements in later files)."""
from __future__ import annotations

from .base import Statement, sql

# Two statements Harbor repeats in the very next file that has them (2.5.3's 0082 and
# 2.6.0's 0090; 2.7.0's 0100 and 2.8.0's 0110) scan whole tables and, run twice in a
# row, find nothing the second time: nothing in between touches their tables. The
# first copy notes in the session that it ran (a temporary table, gone with the
# session and with a rolled-back transaction); the repeat does nothing when the note
# is there. A database that starts between them, or a run resumed in a new session,
# runs the repeat in full.


def _noted(name: str) -> str:
    return f"CREATE TEMP TABLE IF NOT EXISTS harbor_upgrade_done_{name} ()"


def _unless_noted(name: str) -> str:
    return f"to_regclass('pg_temp.harbor_upgrade_done_{name}') IS NULL"


# 2.5.3 and 2.6.0: a Running execution whose tasks all succeeded becomes Success (one
# more revision) and ends when its last task ended. Executions without tasks, or with
# any task in another state (NULL included), stay. Upstream loops row by row.
_REPAIR_EXECUTIONS = """
    UPDATE execution e SET status = 'Success', revision = e.revision + 1, end_time = t.last_end
    FROM (SELECT execution_id, max(end_time) AS last_end FROM task
          GROUP BY execution_id
          HAVING bool_and(coalesce(status = 'Success', false))) t
    WHERE t.execution_id = e.id AND e.status = 'Running'"""
REPAIR_EXECUTIONS = sql(
    "execution: Running executions whose tasks all succeeded become Success",
    f"{_REPAIR_EXECUTIONS};\n{_noted('repair_executions')}")
REPAIR_EXECUTIONS_AGAIN = sql(
    "execution: Running executions whose tasks all succeeded become Success (done already when "
    "2.5.3's copy ran in this session)",
    f"{_REPAIR_EXECUTIONS}\n      AND {_unless_noted('repair_executions')}")

# 2.5.x's 0080 and 2.6.0's 0090: project_metadata `public` is only 'true' or 'false'.
PUBLIC_TRUE_OR_FALSE = sql(
    "project_metadata: a `public` value other than true/false becomes false (NULL stays)", """
    UPDATE project_metadata SET value = 'false'
    WHERE name = 'public' AND value NOT IN ('true', 'false')""")

# 2.7.x's 0100 and 2.8.0's 0110: links of manifests whose blob row is gone.
_ARTIFACT_BLOB_WITHOUT_BLOB = """
    DELETE FROM artifact_blob ab
    WHERE NOT EXISTS (SELECT 1 FROM blob b WHERE b.digest = ab.digest_af)"""
ARTIFACT_BLOB_WITHOUT_BLOB = sql(
    "artifact_blob: links of an artifact digest without a blob row deleted",
    f"{_ARTIFACT_BLOB_WITHOUT_BLOB};\n{_noted('artifact_blob_without_blob')}")
ARTIFACT_BLOB_WITHOUT_BLOB_AGAIN = sql(
    "artifact_blob: links of an artifact digest without a blob row deleted (done already when 2.7's "
    "copy ran in this session)",
    f"{_ARTIFACT_BLOB_WITHOUT_BLOB}\n      AND {_unless_noted('artifact_blob_without_blob')}")


def id_to_bigint(table: str) -> Statement:
    """2.5.0 and 2.14.0: a table's serial id and its sequence become bigint (a table rewrite)."""
    return sql(f"{table}: id and its sequence become bigint (rewrites the table)", f"""
        ALTER TABLE {table} ALTER COLUMN id TYPE bigint;
        ALTER SEQUENCE {table}_id_seq AS bigint""")
