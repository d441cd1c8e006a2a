"""Harbor 2.1.0 (schema 40) and 2.1.4 (schema 41): executions, tasks and the data version.

2.1.0 adds the generic ``execution``/``task`` tables and gives every schedule one
SCHEDULER execution and task carrying its old job id and status; retention schedules
learn their vendor, cron and callback. ``cve_whitelist`` becomes ``cve_allowlist``,
the ``master`` role becomes ``maintainer``, blobs get status/version for the new
garbage collector (every blob stamped with the upgrade time), P2P preheat arrives,
and the data version moves to ``data_migrations``. 2.1.4 copies each schedule task's
status onto its execution.
"""
from __future__ import annotations

import json

from ..checks import Check, not_integer, not_json
from ..probes import has_table, no_column
from .base import HarborDb, ReleaseStep, SchemaFile, sql

# 2.1's task status_code of a schedule's status.
SCHEDULE_STATUS_CODE = """CASE {st}
    WHEN 'Pending' THEN 0 WHEN 'Scheduled' THEN 1 WHEN 'Running' THEN 2
    WHEN 'Stopped' THEN 3 WHEN 'Error' THEN 3 WHEN 'Success' THEN 3 ELSE 0 END"""

V40 = SchemaFile(40, (
    sql("project: new column registry_id", "ALTER TABLE project ADD COLUMN registry_id int"),
    sql("cve_whitelist renamed cve_allowlist (constraints and sequence keep their names)",
        "ALTER TABLE cve_whitelist RENAME TO cve_allowlist"),
    sql("role: master renamed maintainer", "UPDATE role SET name = 'maintainer' WHERE name = 'master'"),
    sql("project_metadata: reuse_sys_cve_whitelist renamed reuse_sys_cve_allowlist", """
        UPDATE project_metadata SET name = 'reuse_sys_cve_allowlist'
        WHERE name = 'reuse_sys_cve_whitelist'"""),
    sql("execution: new table", """
        CREATE TABLE execution (
            id SERIAL NOT NULL,
            vendor_type varchar(16) NOT NULL,
            vendor_id int,
            status varchar(16),
            status_message text,
            trigger varchar(16) NOT NULL,
            extra_attrs JSON,
            start_time timestamp DEFAULT CURRENT_TIMESTAMP,
            end_time timestamp,
            revision int,
            PRIMARY KEY (id))"""),
    sql("task: new table", """
        CREATE TABLE task (
            id SERIAL PRIMARY KEY NOT NULL,
            execution_id int NOT NULL,
            job_id varchar(64),
            status varchar(16) NOT NULL,
            status_code int NOT NULL,
            status_revision int,
            status_message text,
            run_count int,
            extra_attrs JSON,
            creation_time timestamp DEFAULT CURRENT_TIMESTAMP,
            start_time timestamp,
            update_time timestamp,
            end_time timestamp,
            FOREIGN KEY (execution_id) REFERENCES execution(id))"""),
    sql("blob: update_time (the upgrade time for every blob), status and version", """
        ALTER TABLE blob
            ADD COLUMN update_time timestamp DEFAULT CURRENT_TIMESTAMP,
            ADD COLUMN status varchar(255) DEFAULT 'none',
            ADD COLUMN version bigint DEFAULT 0"""),
    sql("blob: index on status", "CREATE INDEX idx_status ON blob (status)"),
    sql("blob: index on version", "CREATE INDEX idx_version ON blob (version)"),
    sql("p2p_preheat_instance: new table", """
        CREATE TABLE p2p_preheat_instance (
            id SERIAL PRIMARY KEY NOT NULL,
            name varchar(255) NOT NULL,
            description varchar(255),
            vendor varchar(255) NOT NULL,
            endpoint varchar(255) NOT NULL,
            auth_mode varchar(255),
            auth_data text,
            enabled boolean,
            is_default boolean,
            insecure boolean,
            setup_timestamp int,
            UNIQUE (name))"""),
    sql("p2p_preheat_policy: new table", """
        CREATE TABLE p2p_preheat_policy (
            id SERIAL PRIMARY KEY NOT NULL,
            name varchar(255) NOT NULL,
            description varchar(1024),
            project_id int NOT NULL,
            provider_id int NOT NULL,
            filters varchar(1024),
            trigger varchar(255),
            enabled boolean,
            creation_time timestamp,
            update_time timestamp,
            UNIQUE (name, project_id))"""),
    sql("schedule: vendor, cron and callback columns", """
        ALTER TABLE schedule
            ADD COLUMN vendor_type varchar(16),
            ADD COLUMN vendor_id int,
            ADD COLUMN cron varchar(64),
            ADD COLUMN callback_func_name varchar(128),
            ADD COLUMN callback_func_param text"""),
    # Upstream updates policy by policy, so when two policies name one schedule the
    # later policy wins.
    sql("schedule: retention schedules get vendor RETENTION, their cron and callback", """
        UPDATE schedule AS s SET
            vendor_type = 'RETENTION',
            vendor_id = p.id,
            cron = p.data::json #>> '{trigger,settings,cron}',
            callback_func_name = 'RETENTION',
            callback_func_param = concat('{"PolicyID":', p.id, ',"Trigger":"Schedule"}')
        FROM (SELECT DISTINCT ON (job_id) id, data, job_id
              FROM (SELECT id, data, (data::json #>> '{trigger,references,job_id}')::int AS job_id
                    FROM retention_policy) AS x
              WHERE job_id IS NOT NULL
              ORDER BY job_id, id DESC) AS p
        WHERE p.job_id = s.id"""),
    # Execution ids are taken first so that each task can point at its execution
    # without a row-by-row loop.
    sql("execution + task: one SCHEDULER execution and task per schedule", f"""
        WITH s AS (
            SELECT id, job_id, status, nextval('execution_id_seq') AS execution_id FROM schedule
        ), e AS (
            INSERT INTO execution (id, vendor_type, vendor_id, trigger)
            SELECT execution_id, 'SCHEDULER', id, 'MANUAL' FROM s
        )
        INSERT INTO task (execution_id, job_id, status, status_code, status_revision, run_count)
        SELECT execution_id, job_id, status, {SCHEDULE_STATUS_CODE.format(st='status')}, 0, 0
        FROM s"""),
    sql("schedule: job_id and status dropped (now in task)",
        "ALTER TABLE schedule DROP COLUMN job_id, DROP COLUMN status"),
    sql("registry: quay-io renamed quay", "UPDATE registry SET type = 'quay' WHERE type = 'quay-io'"),
    sql("artifact: new column icon", "ALTER TABLE artifact ADD COLUMN icon varchar(255)"),
    sql("notification_policy: name unique per project", """
        ALTER TABLE notification_policy DROP CONSTRAINT notification_policy_name_key,
            ADD UNIQUE (name, project_id)"""),
    sql("data_migrations: new table", """
        CREATE TABLE data_migrations (
            id SERIAL PRIMARY KEY NOT NULL,
            version int,
            creation_time timestamp DEFAULT CURRENT_TIMESTAMP,
            update_time timestamp DEFAULT CURRENT_TIMESTAMP)"""),
    # The 2.0 data version was lost when schema_migrations was rewritten, so 2.1 guesses:
    # only the artifact abstraction fills extra_attrs.
    sql("data_migrations: 30 if artifacts were already abstracted, else 0", """
        INSERT INTO data_migrations (version)
        SELECT CASE WHEN EXISTS (SELECT 1 FROM artifact WHERE extra_attrs IS NOT NULL
                                                         AND extra_attrs <> '')
                    THEN 30 ELSE 0 END
        WHERE NOT EXISTS (SELECT 1 FROM data_migrations)"""),
    sql("schema_migrations: data_version dropped",
        "ALTER TABLE schema_migrations DROP COLUMN data_version"),
))

V41 = SchemaFile(41, (
    sql("execution: schedule executions get revision 0 and their task's status", """
        UPDATE execution AS e SET revision = 0, status = t.status
        FROM task t
        WHERE t.execution_id = e.id AND e.vendor_type = 'SCHEDULER' AND e.revision IS NULL"""),
))


def _bad_job_id(data: str | None) -> bool:
    if data is None or not_json(data):
        return False
    doc = json.loads(data)
    job = ((doc.get("trigger") or {}).get("references") or {}).get("job_id") if isinstance(doc, dict) else None
    return job is not None and not_integer(job)


CHECKS = (
    Check("retention_policy",
          "retention policy data that is not JSON, or a schedule job_id that is not an integer",
          "fix the policy in the Harbor UI before upgrading, or "
          "UPDATE retention_policy SET data = '<valid JSON>' WHERE id = <id>",
          lambda c: "SELECT id, data FROM retention_policy ORDER BY id",
          bad=lambda r: not_json(r["data"]) or _bad_job_id(r["data"]),
          before=40),
    Check("schedule",
          "schedules whose status is NULL or longer than 16 characters (task.status is varchar(16) "
          "NOT NULL)",
          "UPDATE schedule SET status = 'Error' WHERE status IS NULL OR length(status) > 16",
          lambda c: """SELECT id, job_id, status FROM schedule
                       WHERE status IS NULL OR length(status) > 16 ORDER BY id""" if "status" in c else None,
          before=40),
    Check("project_metadata",
          "projects with both reuse_sys_cve_whitelist and reuse_sys_cve_allowlist",
          "DELETE FROM project_metadata WHERE name = 'reuse_sys_cve_allowlist' AND project_id = <id>",
          lambda c: """SELECT project_id FROM project_metadata
                       WHERE name IN ('reuse_sys_cve_whitelist', 'reuse_sys_cve_allowlist')
                       GROUP BY project_id HAVING count(DISTINCT name) = 2 ORDER BY project_id""",
          before=40),
)

STEP = ReleaseStep(
    "2.1.0", (V40, V41),
    harbor_db=(HarborDb("2.1.0", 9),),
    checks=CHECKS,
    markers=((40, (has_table("execution"), has_table("data_migrations"), has_table("cve_allowlist"),
                   no_column("schedule", "job_id"), no_column("schema_migrations", "data_version"))),),
)
