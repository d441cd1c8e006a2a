"""Harbor 2.13.0 (schema 160): extended audit logs.

Preheat policies trade 2.12's ``scope`` for ``extra_attrs``; ``audit_log_ext`` (the
audit log of configuration and user changes) arrives with four indexes.
"""
from __future__ import annotations

from ..probes import has_column, has_table, no_column
from .base import HarborDb, ReleaseStep, SchemaFile, sql

V160 = SchemaFile(160, (
    sql("p2p_preheat_policy: column scope dropped, new column extra_attrs", """
        ALTER TABLE p2p_preheat_policy DROP COLUMN IF EXISTS scope,
                                       ADD COLUMN IF NOT EXISTS extra_attrs text"""),
    sql("audit_log_ext: new table", """
        CREATE TABLE IF NOT EXISTS audit_log_ext (
            id BIGSERIAL PRIMARY KEY NOT NULL,
            project_id bigint,
            operation varchar(50) NULL,
            resource_type varchar(255) NULL,
            resource varchar(1024) NULL,
            username varchar(255) NULL,
            op_desc varchar(1024) NULL,
            op_result boolean DEFAULT true,
            payload text NULL,
            source_ip varchar(50) NULL,
            op_time timestamp DEFAULT CURRENT_TIMESTAMP)"""),
    sql("audit_log_ext: indexes on op_time, (project_id, op_time), (project_id, resource_type), "
        "(project_id, operation)", """
        CREATE INDEX IF NOT EXISTS idx_audit_log_ext_op_time ON audit_log_ext (op_time);
        CREATE INDEX IF NOT EXISTS idx_audit_log_ext_project_id_optime ON audit_log_ext (project_id, op_time);
        CREATE INDEX IF NOT EXISTS idx_audit_log_ext_project_id_resource_type
            ON audit_log_ext (project_id, resource_type);
        CREATE INDEX IF NOT EXISTS idx_audit_log_ext_project_id_operation ON audit_log_ext (project_id, operation)"""),
))

STEP = ReleaseStep(
    "2.13.0", (V160,),
    harbor_db=(HarborDb("2.13.0", 15, upgrades_from=14),),
    markers=((160, (has_table("audit_log_ext"), no_column("p2p_preheat_policy", "scope"),
                    has_column("p2p_preheat_policy", "extra_attrs"))),),
)
