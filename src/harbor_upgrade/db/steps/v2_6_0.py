"""Harbor 2.6.0 (schema 90) and 2.6.2 (91): system artifacts and lookup indexes.

2.6.0 sets a project's ``public`` flag to false when it is neither true nor false,
adds ``system_artifact`` (artifacts Harbor itself keeps, such as exported CVE
reports), indexes executions, audit logs and artifact blobs for the lookups of tag
retention and the UI, and closes Running executions whose tasks all succeeded (again,
as 2.5.3). 2.6.2 lets replication policies copy blobs in chunks.
Scale: the new indexes read audit_log and artifact_blob whole.
"""
from __future__ import annotations

from ..probes import has_column, has_index, has_table
from .base import HarborDb, ReleaseStep, SchemaFile, sql
from .common import PUBLIC_TRUE_OR_FALSE, REPAIR_EXECUTIONS_AGAIN

V90 = SchemaFile(90, (
    PUBLIC_TRUE_OR_FALSE,
    sql("system_artifact: new table (artifacts Harbor keeps for itself)", """
        CREATE TABLE IF NOT EXISTS system_artifact (
            id SERIAL NOT NULL PRIMARY KEY,
            repository varchar(256) NOT NULL,
            digest varchar(255) NOT NULL DEFAULT '',
            size bigint NOT NULL DEFAULT 0,
            vendor varchar(255) NOT NULL DEFAULT '',
            type varchar(255) NOT NULL DEFAULT '',
            create_time timestamp DEFAULT CURRENT_TIMESTAMP,
            extra_attrs text NOT NULL DEFAULT '',
            UNIQUE (repository, digest, vendor))"""),
    sql("artifact: index on repository_name (as in 2.5.2)",
        "CREATE INDEX IF NOT EXISTS idx_artifact_repository_name ON artifact (repository_name)"),
    sql("execution: indexes on (vendor_type, vendor_id) and start_time", """
        CREATE INDEX IF NOT EXISTS idx_execution_vendor_type_vendor_id ON execution (vendor_type, vendor_id);
        CREATE INDEX IF NOT EXISTS idx_execution_start_time ON execution (start_time)"""),
    sql("audit_log: index on (project_id, op_time)",
        "CREATE INDEX IF NOT EXISTS idx_audit_log_project_id_optime ON audit_log (project_id, op_time)"),
    REPAIR_EXECUTIONS_AGAIN,
    sql("artifact_blob, artifact: indexes for tag retention (digest_blob; digest, project_id)", """
        CREATE INDEX IF NOT EXISTS idx_artifact_blob_digest_blob ON artifact_blob (digest_blob);
        CREATE INDEX IF NOT EXISTS idx_artifact_digest_project_id ON artifact (digest, project_id)"""),
))

V91 = SchemaFile(91, (
    sql("replication_policy: new column copy_by_chunk",
        "ALTER TABLE replication_policy ADD COLUMN IF NOT EXISTS copy_by_chunk boolean"),
))

STEP = ReleaseStep(
    "2.6.0", (V90, V91),
    harbor_db=(HarborDb("2.6.0", 13, upgrades_from=9),),
    markers=(
        (90, (has_table("system_artifact"), has_index("idx_execution_vendor_type_vendor_id"),
              has_index("idx_artifact_digest_project_id"))),
        (91, (has_table("system_artifact"), has_column("replication_policy", "copy_by_chunk"))),
    ),
    at_start=("harbor-core 2.6+ schedules the system-artifact clean-up job (a schedule row) at its start",),
)
