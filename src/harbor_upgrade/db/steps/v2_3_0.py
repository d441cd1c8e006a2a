"""Harbor 2.3.0 (schema 60) and 2.3.4 (schema 61).

2.3.0 lets replication policies flatten destination namespaces: existing policies with
a destination namespace keep their behaviour with replace count -1. It also indexes
audit_log by time. 2.3.4 stores a missing e-mail as NULL instead of ''.
"""
from __future__ import annotations

from ..probes import has_column, has_index
from .base import HarborDb, ReleaseStep, SchemaFile, sql

V60 = SchemaFile(60, (
    sql("replication_policy: new column dest_namespace_replace_count",
        "ALTER TABLE replication_policy ADD COLUMN dest_namespace_replace_count int"),
    sql("replication_policy: -1 where a destination namespace is set", """
        UPDATE replication_policy SET dest_namespace_replace_count = -1
        WHERE dest_namespace IS NOT NULL"""),
    sql("artifact, tag, artifact_reference: lookup indexes (as in 2.2.3)", """
        CREATE INDEX IF NOT EXISTS idx_artifact_push_time ON artifact (push_time);
        CREATE INDEX IF NOT EXISTS idx_tag_push_time ON tag (push_time);
        CREATE INDEX IF NOT EXISTS idx_tag_artifact_id ON tag (artifact_id);
        CREATE INDEX IF NOT EXISTS idx_artifact_reference_child_id ON artifact_reference (child_id)"""),
    sql("audit_log: index on op_time",
        "CREATE INDEX IF NOT EXISTS idx_audit_log_op_time ON audit_log (op_time)"),
))

V61 = SchemaFile(61, (
    sql("harbor_user: empty e-mail becomes NULL",
        "UPDATE harbor_user SET email = NULL WHERE email = ''"),
))

STEP = ReleaseStep(
    "2.3.0", (V60, V61),
    harbor_db=(HarborDb("2.3.0", 13, upgrades_from=9),),
    markers=((60, (has_column("replication_policy", "dest_namespace_replace_count"),
                   has_index("idx_audit_log_op_time"))),),
)
