"""Harbor 2.14.0 (schema 170) and 2.14.1 (171): big permission ids, CVE status.

2.14.0 makes the RBAC ids bigint (``role_permission.id``, ``permission_policy.id``,
``role_permission.permission_policy_id`` and their sequences: table rewrites), adds
``vulnerability_record.status`` and ``replication_policy.single_active_replication``.
2.14.1 records ``skip_audit_log_database = false`` when the key is absent and either
audit log's id sequence has been used (an installation that has audit logs keeps
writing them to the database).
"""
from __future__ import annotations

from ..probes import column_type, has_column
from .base import HarborDb, ReleaseStep, SchemaFile, sql
from .common import id_to_bigint

V170 = SchemaFile(170, (
    id_to_bigint("role_permission"),
    id_to_bigint("permission_policy"),
    sql("role_permission: permission_policy_id becomes bigint",
        "ALTER TABLE role_permission ALTER COLUMN permission_policy_id TYPE bigint"),
    sql("vulnerability_record: new column status",
        "ALTER TABLE vulnerability_record ADD COLUMN IF NOT EXISTS status text"),
    sql("replication_policy: new column single_active_replication",
        "ALTER TABLE replication_policy ADD COLUMN IF NOT EXISTS single_active_replication boolean"),
))

V171 = SchemaFile(171, (
    sql("properties: skip_audit_log_database = false when absent and audit logs were written", """
        INSERT INTO properties (k, v)
        SELECT 'skip_audit_log_database', 'false'
        WHERE NOT EXISTS (SELECT 1 FROM properties WHERE k = 'skip_audit_log_database')
          AND ((SELECT last_value FROM audit_log_id_seq) > 1
               OR (SELECT last_value FROM audit_log_ext_id_seq) > 1)"""),
))

STEP = ReleaseStep(
    "2.14.0", (V170, V171),
    harbor_db=(HarborDb("2.14.0", 15, upgrades_from=14),),
    markers=((170, (has_column("vulnerability_record", "status"),
                    column_type("permission_policy", "id", "bigint"))),),
    at_start=("harbor-core 2.14+ creates the skip_audit_log_database property from its environment "
              "(SKIP_LOG_AUDIT_DATABASE, default false) when it is still absent",),
)
