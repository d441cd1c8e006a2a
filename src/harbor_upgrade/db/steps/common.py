"""SQL shared by several release steps (Harbor repeats some statements in later files)."""
from __future__ import annotations

from .base import Statement, sql

# 2.5.3 and 2.6.0: a Running execution whose tasks all succeeded becomes Success (one
# more revision) and ends when its last task ended. Executions without tasks, or with
# any task in another state (NULL included), stay. Upstream loops row by row.
REPAIR_EXECUTIONS = sql(
    "execution: Running executions whose tasks all succeeded become Success", """
    UPDATE execution e SET status = 'Success', revision = e.revision + 1, end_time = t.last_end
    FROM (SELECT execution_id, max(end_time) AS last_end FROM task
          GROUP BY execution_id
          HAVING bool_and(coalesce(status = 'Success', false))) t
    WHERE t.execution_id = e.id AND e.status = 'Running'""")

# 2.5.x's 0080 and 2.6.0's 0090: project_metadata `public` is only 'true' or 'false'.
PUBLIC_TRUE_OR_FALSE = sql(
    "project_metadata: a `public` value other than true/false becomes false (NULL stays)", """
    UPDATE project_metadata SET value = 'false'
    WHERE name = 'public' AND value NOT IN ('true', 'false')""")

# 2.7.x's 0100 and 2.8.0's 0110: links of manifests whose blob row is gone.
ARTIFACT_BLOB_WITHOUT_BLOB = sql(
    "artifact_blob: links of an artifact digest without a blob row deleted", """
    DELETE FROM artifact_blob ab
    WHERE NOT EXISTS (SELECT 1 FROM blob b WHERE b.digest = ab.digest_af)""")


def id_to_bigint(table: str) -> Statement:
    """2.5.0 and 2.14.0: a table's serial id and its sequence become bigint (a table rewrite)."""
    return sql(f"{table}: id and its sequence become bigint (rewrites the table)", f"""
        ALTER TABLE {table} ALTER COLUMN id TYPE bigint;
        ALTER SEQUENCE {table}_id_seq AS bigint""")
