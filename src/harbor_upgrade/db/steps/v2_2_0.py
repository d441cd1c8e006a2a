"""Harbor 2.2.0 (schema 50), 2.2.1 (51), 2.2.2 (52), 2.2.3 (53): one task framework.

2.2.0 moves replication executions/tasks, replication schedules, garbage-collection
schedules and history, scan-all schedules and retention executions/tasks into the
generic ``execution``/``task``/``schedule`` tables and drops the old ones; it fixes
the role ids of maintainer and limited guest, gives project 1 a CVE allowlist,
deletes quotas of missing projects, drops Clair when it is fully registered, deletes
every scan report (reports move to per-vulnerability rows), adds robot v2 and RBAC
tables, and turns robot_token_duration from minutes into days.
2.2.1 renames the execution status Succeed to Success and indexes task.execution_id,
2.2.2 adds schedule.revision, 2.2.3 adds indexes for tag and artifact lookups.

Upstream walks executions and tasks row by row; the statements below do the same
mapping set-based, taking new ids from the sequences first so that tasks can point
at their new executions.
"""
from __future__ import annotations

from ..checks import Check, not_integer, not_json
from ..probes import has_column, has_index, has_table, no_table
from .base import HarborDb, ReleaseStep, SchemaFile, sql

# 1.x job statuses (admin_job, replication_schedule_job) -> (execution, task, code).
JOB_EXECUTION_STATUS = """CASE {st} WHEN 'stopped' THEN 'Stopped' WHEN 'error' THEN 'Error'
    WHEN 'finished' THEN 'Success' ELSE 'Running' END"""
JOB_TASK_STATUS = """CASE {st} WHEN 'stopped' THEN 'Stopped' WHEN 'error' THEN 'Error'
    WHEN 'finished' THEN 'Success' WHEN 'running' THEN 'Running'
    WHEN 'scheduled' THEN 'Scheduled' ELSE 'Pending' END"""
JOB_TASK_STATUS_CODE = """CASE {st} WHEN 'stopped' THEN 3 WHEN 'error' THEN 3
    WHEN 'finished' THEN 3 WHEN 'running' THEN 2 WHEN 'scheduled' THEN 1 ELSE 0 END"""


def scheduler_execution_and_task(source: str) -> str:
    """SQL that gives each new schedule in ``source`` (columns schedule_id,
    execution_id, job_id, status, creation_time, update_time) its SCHEDULER
    execution and task, as 2.2 does for every migrated schedule."""
    return f"""
        WITH e AS (
            INSERT INTO execution (id, vendor_type, vendor_id, status, revision, trigger,
                                   start_time, end_time)
            SELECT execution_id, 'SCHEDULER', schedule_id, {JOB_EXECUTION_STATUS.format(st='status')},
                   0, 'MANUAL', creation_time, update_time
            FROM {source}
        )
        INSERT INTO task (vendor_type, execution_id, job_id, status, status_code, status_revision,
                          run_count, creation_time, start_time, update_time, end_time)
        SELECT 'SCHEDULER', execution_id, job_id, {JOB_TASK_STATUS.format(st='status')},
               {JOB_TASK_STATUS_CODE.format(st='status')}, 0, 1,
               creation_time, creation_time, update_time, update_time
        FROM {source}"""


V50 = SchemaFile(50, (
    sql("role: maintainer gets role id 4", """
        UPDATE role SET role_id = 4 WHERE name = 'maintainer' AND role_id <> 4"""),
    sql("role: limitedGuest gets role id 5", """
        UPDATE role SET role_id = 5 WHERE name = 'limitedGuest' AND role_id <> 5"""),
    sql("cve_allowlist: an empty system allowlist for project 1 when it has none", """
        INSERT INTO cve_allowlist (project_id, items)
        SELECT 1, '[]' WHERE NOT EXISTS (SELECT 1 FROM cve_allowlist WHERE project_id = 1)"""),
    sql("quota: quotas of deleted or missing projects deleted", """
        DELETE FROM quota WHERE reference = 'project' AND reference_id::integer NOT IN
            (SELECT project_id FROM project WHERE deleted = false)"""),
    sql("quota_usage: usages of deleted or missing projects deleted", """
        DELETE FROM quota_usage WHERE reference = 'project' AND reference_id::integer NOT IN
            (SELECT project_id FROM project WHERE deleted = false)"""),
    sql("schedule: new column cron_type", "ALTER TABLE schedule ADD COLUMN cron_type varchar(64)"),
    sql("robot: secret, salt and duration (robot accounts v2)", """
        ALTER TABLE robot ADD COLUMN secret varchar(2048), ADD COLUMN salt varchar(64),
            ADD COLUMN duration int"""),
    sql("execution: new column update_time", "ALTER TABLE execution ADD COLUMN update_time timestamp"),
    sql("task: new column vendor_type", "ALTER TABLE task ADD COLUMN vendor_type varchar(16)"),
    sql("task: vendor_type from the task's execution", """
        UPDATE task AS t SET vendor_type = e.vendor_type FROM execution e WHERE e.id = t.execution_id"""),
    sql("task: vendor_type NOT NULL", "ALTER TABLE task ALTER COLUMN vendor_type SET NOT NULL"),
    sql("artifact: size 0 recomputed from its blobs (each blob once)", """
        UPDATE artifact AS a SET size = (
            SELECT sum(b.size) FROM blob b
            WHERE b.digest IN (SELECT ab.digest_blob FROM artifact_blob ab WHERE ab.digest_af = a.digest))
        WHERE a.size = 0"""),
    sql("role_permission: new table", """
        CREATE TABLE role_permission (
            id SERIAL PRIMARY KEY NOT NULL,
            role_type varchar(255) NOT NULL,
            role_id int NOT NULL,
            permission_policy_id int NOT NULL,
            creation_time timestamp DEFAULT CURRENT_TIMESTAMP,
            CONSTRAINT unique_role_permission UNIQUE (role_type, role_id, permission_policy_id))"""),
    sql("permission_policy: new table", """
        CREATE TABLE permission_policy (
            id SERIAL PRIMARY KEY NOT NULL,
            scope varchar(255) NOT NULL,
            resource varchar(255),
            action varchar(255),
            effect varchar(255),
            creation_time timestamp DEFAULT CURRENT_TIMESTAMP,
            CONSTRAINT unique_rbac_policy UNIQUE (scope, resource, action, effect))"""),
    sql("replication_execution: executions of deleted policies deleted", """
        DELETE FROM replication_execution
        WHERE policy_id NOT IN (SELECT id FROM replication_policy)"""),
    # Upstream first deletes the tasks of deleted executions; here they are left out of
    # the copy below (it joins the executions kept) and go when the table is dropped.
    # task's foreign key is dropped while the tasks are copied and added back after
    # the last copy: one check of all rows instead of one per copied row.
    sql("task: foreign key to execution dropped while tasks are copied (added back below)",
        "ALTER TABLE task DROP CONSTRAINT task_execution_id_fkey"),
    # Upstream recounts tasks per status for every unfinished execution: Stopped,
    # Failed and Succeed counters take their task counts, every other status group
    # lands in in_progress (so in_progress > 0 as soon as one exists); counters of
    # statuses without tasks keep their stored value. The status follows from the
    # counters, and a final status takes the latest task end_time.
    sql("replication executions and tasks mapped to new execution ids", """
        CREATE TEMP TABLE replication_execution_map ON COMMIT DROP AS
        SELECT x.id AS old_id, nextval('execution_id_seq') AS new_id, x.policy_id, x.status_text,
               x.trigger, x.start_time,
               CASE WHEN x.final THEN x.status
                    WHEN x.in_progress > 0 THEN 'InProgress'
                    WHEN x.failed > 0 THEN 'Failed'
                    WHEN x.stopped > 0 THEN 'Stopped'
                    ELSE 'Succeed' END AS status,
               CASE WHEN x.final OR x.in_progress > 0 THEN x.end_time ELSE x.last_end END AS end_time
        FROM (
            SELECT e.id, e.policy_id, e.status_text, e.trigger, e.start_time, e.end_time, e.status,
                   coalesce(e.status IN ('Stopped', 'Failed', 'Succeed'), false) AS final,
                   CASE WHEN c.others > 0 THEN 1 ELSE e.in_progress END AS in_progress,
                   CASE WHEN c.failed > 0 THEN c.failed ELSE e.failed END AS failed,
                   CASE WHEN c.stopped > 0 THEN c.stopped ELSE e.stopped END AS stopped,
                   c.last_end
            FROM replication_execution e
            LEFT JOIN (
                SELECT execution_id,
                       count(*) FILTER (WHERE status = 'Failed') AS failed,
                       count(*) FILTER (WHERE status = 'Stopped') AS stopped,
                       count(*) FILTER (WHERE status IS NULL
                                        OR status NOT IN ('Failed', 'Stopped', 'Succeed')) AS others,
                       max(end_time) AS last_end
                FROM replication_task GROUP BY execution_id) AS c ON c.execution_id = e.id
        ) AS x"""),
    sql("execution: replication executions", """
        INSERT INTO execution (id, vendor_type, vendor_id, status, status_message, revision, trigger,
                               start_time, end_time)
        SELECT new_id, 'REPLICATION', policy_id,
               CASE status WHEN 'InProgress' THEN 'Running' WHEN 'Stopped' THEN 'Stopped'
                           WHEN 'Failed' THEN 'Error' WHEN 'Succeed' THEN 'Success' END,
               status_text, 0,
               CASE trigger WHEN 'scheduled' THEN 'SCHEDULE' WHEN 'event_based' THEN 'EVENT'
                            ELSE 'MANUAL' END,
               start_time, end_time
        FROM replication_execution_map"""),
    # extra_attrs is built by string concatenation without escaping, as upstream.
    sql("task: replication tasks", """
        INSERT INTO task (vendor_type, execution_id, job_id, status, status_code, status_revision,
                          run_count, extra_attrs, creation_time, start_time, update_time, end_time)
        SELECT 'REPLICATION', m.new_id, t.job_id,
               CASE t.status WHEN 'InProgress' THEN 'Running' WHEN 'Stopped' THEN 'Stopped'
                             WHEN 'Failed' THEN 'Error' WHEN 'Succeed' THEN 'Success'
                             ELSE 'Pending' END,
               CASE t.status WHEN 'InProgress' THEN 2 WHEN 'Stopped' THEN 3 WHEN 'Failed' THEN 3
                             WHEN 'Succeed' THEN 3 ELSE 0 END,
               t.status_revision, 1,
               ('{"resource_type":"' || coalesce(t.resource_type, '')
                || '","source_resource":"' || coalesce(t.src_resource, '')
                || '","destination_resource":"' || coalesce(t.dst_resource, '')
                || '","operation":"' || coalesce(t.operation, '') || '"}')::json,
               t.start_time, t.start_time, t.end_time, t.end_time
        FROM replication_task t JOIN replication_execution_map m ON m.old_id = t.execution_id"""),
    sql("replication_task and replication_execution dropped",
        "DROP TABLE replication_task, replication_execution"),
    sql("replication schedule jobs mapped to new schedule and execution ids", """
        CREATE TEMP TABLE replication_schedule_map ON COMMIT DROP AS
        SELECT nextval('schedule_id_seq') AS schedule_id, nextval('execution_id_seq') AS execution_id,
               j.policy_id, j.job_id, j.status, j.creation_time, j.update_time,
               p.trigger::json #>> '{trigger_settings,cron}' AS cron
        FROM replication_schedule_job j LEFT JOIN replication_policy p ON p.id = j.policy_id"""),
    sql("schedule: replication schedules", """
        INSERT INTO schedule (id, vendor_type, vendor_id, cron, callback_func_name, callback_func_param,
                              creation_time, update_time)
        SELECT schedule_id, 'REPLICATION', policy_id, cron, 'REPLICATION_CALLBACK', policy_id::text,
               creation_time, update_time
        FROM replication_schedule_map"""),
    sql("execution + task: one SCHEDULER execution and task per replication schedule",
        scheduler_execution_and_task("replication_schedule_map")),
    sql("replication_schedule_job dropped", "DROP TABLE replication_schedule_job"),
    # The row test "clair IS NOT NULL" of upstream holds only when every column is
    # set; a Clair registration with any NULL column is kept.
    # Upstream deletes Clair's reports here and every other report further on: one
    # pass over scan_report deletes them all.
    sql("scan_report: every report deleted", "DELETE FROM scan_report"),
    sql("scanner_registration: fully registered immutable Clair deleted", """
        WITH clair AS (
            SELECT s.id, s.is_default FROM scanner_registration s
            WHERE s.name = 'Clair' AND s.immutable AND s IS NOT NULL
            ORDER BY s.id LIMIT 1
        ), gone AS (
            DELETE FROM scanner_registration WHERE id IN (SELECT id FROM clair)
        )
        UPDATE scanner_registration SET is_default = true
        WHERE name = 'Trivy' AND immutable AND EXISTS (SELECT 1 FROM clair WHERE is_default)"""),
    sql("execution, schedule, task: vendor_type widened to 64; schedule.extra_attrs", """
        ALTER TABLE execution ALTER COLUMN vendor_type TYPE varchar(64);
        ALTER TABLE schedule ALTER COLUMN vendor_type TYPE varchar(64);
        ALTER TABLE schedule ADD COLUMN extra_attrs json;
        ALTER TABLE task ALTER COLUMN vendor_type TYPE varchar(64)"""),
    sql("scan_report: job columns dropped", """
        ALTER TABLE scan_report DROP COLUMN job_id, DROP COLUMN track_id, DROP COLUMN requester,
            DROP COLUMN status, DROP COLUMN status_code, DROP COLUMN status_rev,
            DROP COLUMN start_time, DROP COLUMN end_time"""),
    sql("schedule: one schedule per vendor",
        "ALTER TABLE schedule ADD CONSTRAINT unique_schedule UNIQUE (vendor_type, vendor_id)"),
    sql("garbage-collection schedules mapped to new schedule and execution ids", """
        CREATE TEMP TABLE gc_schedule_map ON COMMIT DROP AS
        SELECT nextval('schedule_id_seq') AS schedule_id, nextval('execution_id_seq') AS execution_id,
               j.job_uuid AS job_id, j.status, j.creation_time, j.update_time,
               j.cron_str::json ->> 'cron' AS cron, j.cron_str::json ->> 'type' AS cron_type,
               nullif(j.job_parameters, '')::json AS params
        FROM admin_job j
        WHERE j.job_name = 'IMAGE_GC' AND j.job_kind = 'Periodic' AND j.deleted = false"""),
    sql("schedule: garbage-collection schedule", """
        INSERT INTO schedule (id, vendor_type, vendor_id, cron, cron_type, callback_func_name,
                              callback_func_param, extra_attrs, creation_time, update_time)
        SELECT schedule_id, 'GARBAGE_COLLECTION', -1, cron, cron_type, 'GARBAGE_COLLECTION',
               CASE WHEN params IS NULL
                    THEN json_build_object('trigger', null, 'deleteuntagged', true, 'dryrun', false,
                                           'extra_attrs', '{}'::json)
                    ELSE json_build_object('trigger', null, 'deleteuntagged', params -> 'delete_untagged',
                                           'dryrun', false, 'extra_attrs', params) END::text,
               CASE WHEN params IS NULL THEN json_build_object('delete_untagged', true)
                    ELSE json_build_object('delete_untagged', params -> 'delete_untagged') END,
               creation_time, update_time
        FROM gc_schedule_map"""),
    sql("execution + task: one SCHEDULER execution and task per garbage-collection schedule",
        scheduler_execution_and_task("gc_schedule_map")),
    sql("garbage-collection history mapped to new execution ids", """
        CREATE TEMP TABLE gc_history_map ON COMMIT DROP AS
        SELECT nextval('execution_id_seq') AS execution_id, j.job_uuid, j.status,
               j.creation_time, j.update_time,
               coalesce(nullif(j.job_parameters, '')::json, '{}'::json) AS extra_attrs
        FROM admin_job j
        WHERE j.job_name = 'IMAGE_GC' AND j.job_kind = 'Generic' AND j.deleted = false"""),
    sql("execution: garbage-collection history", f"""
        INSERT INTO execution (id, vendor_type, vendor_id, status, revision, extra_attrs, trigger,
                               start_time, end_time)
        SELECT execution_id, 'GARBAGE_COLLECTION', -1, {JOB_EXECUTION_STATUS.format(st='status')}, 0,
               extra_attrs, 'MANUAL', creation_time, update_time
        FROM gc_history_map"""),
    sql("task: garbage-collection history", f"""
        INSERT INTO task (vendor_type, execution_id, job_id, status, status_code, status_revision,
                          run_count, extra_attrs, creation_time, start_time, update_time, end_time)
        SELECT 'GARBAGE_COLLECTION', execution_id, job_uuid, {JOB_TASK_STATUS.format(st='status')},
               {JOB_TASK_STATUS_CODE.format(st='status')}, 0, 1, extra_attrs,
               creation_time, creation_time, update_time, update_time
        FROM gc_history_map"""),
    sql("scan-all schedules mapped to new schedule and execution ids", """
        CREATE TEMP TABLE scan_all_schedule_map ON COMMIT DROP AS
        SELECT nextval('schedule_id_seq') AS schedule_id, nextval('execution_id_seq') AS execution_id,
               j.job_uuid AS job_id, j.status, j.creation_time, j.update_time,
               j.cron_str::json ->> 'cron' AS cron, j.cron_str::json ->> 'type' AS cron_type
        FROM admin_job j
        WHERE j.job_name = 'IMAGE_SCAN_ALL' AND j.job_kind = 'Periodic' AND j.deleted = false"""),
    sql("schedule: scan-all schedule", """
        INSERT INTO schedule (id, vendor_type, vendor_id, cron, cron_type, callback_func_name,
                              creation_time, update_time)
        SELECT schedule_id, 'SCAN_ALL', 0, cron, cron_type, 'scanAll', creation_time, update_time
        FROM scan_all_schedule_map"""),
    sql("execution + task: one SCHEDULER execution and task per scan-all schedule",
        scheduler_execution_and_task("scan_all_schedule_map")),
    sql("admin_job dropped (scan-all history is not migrated)", "DROP TABLE admin_job"),
    sql("properties: robot_token_duration from minutes to whole days", """
        UPDATE properties SET v = (v::integer / 60 / 24)::text WHERE k = 'robot_token_duration'"""),
    sql("vulnerability_record: new table", """
        CREATE TABLE vulnerability_record (
            id SERIAL PRIMARY KEY NOT NULL,
            cve_id text NOT NULL DEFAULT '',
            registration_uuid text NOT NULL DEFAULT '',
            package text NOT NULL DEFAULT '',
            package_version text NOT NULL DEFAULT '',
            package_type text NOT NULL DEFAULT '',
            severity text NOT NULL DEFAULT '',
            fixed_version text,
            urls text,
            cvss_score_v3 double precision,
            cvss_score_v2 double precision,
            cvss_vector_v3 text,
            cvss_vector_v2 text,
            description text,
            cwe_ids text,
            vendor_attributes json,
            UNIQUE (cve_id, registration_uuid, package, package_version),
            CONSTRAINT fk_registration_uuid FOREIGN KEY (registration_uuid)
                REFERENCES scanner_registration(uuid) ON DELETE CASCADE)"""),
    sql("report_vulnerability_record: new table", """
        CREATE TABLE report_vulnerability_record (
            id SERIAL PRIMARY KEY NOT NULL,
            report_uuid text NOT NULL DEFAULT '',
            vuln_record_id bigint NOT NULL DEFAULT 0,
            UNIQUE (report_uuid, vuln_record_id),
            CONSTRAINT fk_vuln_record_id FOREIGN KEY (vuln_record_id)
                REFERENCES vulnerability_record(id) ON DELETE CASCADE,
            CONSTRAINT fk_report_uuid FOREIGN KEY (report_uuid)
                REFERENCES scan_report(uuid) ON DELETE CASCADE)"""),
    sql("execution: revision NULL becomes 0", "UPDATE execution SET revision = 0 WHERE revision IS NULL"),
    sql("retention_execution: executions of missing policies deleted", """
        DELETE FROM retention_execution
        WHERE policy_id IS NULL OR policy_id NOT IN (SELECT id FROM retention_policy)"""),
    sql("retention_task: tasks of missing executions deleted", """
        DELETE FROM retention_task
        WHERE execution_id IS NULL OR execution_id NOT IN (SELECT id FROM retention_execution)"""),
    # Upstream's counters start as NULL, so every migrated retention execution ends
    # as Succeed whatever its tasks did.
    sql("retention executions mapped to new execution ids", """
        CREATE TEMP TABLE retention_execution_map ON COMMIT DROP AS
        SELECT nextval('execution_id_seq') AS new_id, e.id AS old_id, e.policy_id, e.dry_run,
               e.trigger, e.start_time, t.end_time
        FROM retention_execution e
        LEFT JOIN (SELECT execution_id, max(end_time) AS end_time FROM retention_task
                   GROUP BY execution_id) AS t ON t.execution_id = e.id"""),
    sql("execution: retention executions (all Succeed)", """
        INSERT INTO execution (id, vendor_type, vendor_id, status, revision, extra_attrs, trigger,
                               start_time, end_time)
        SELECT new_id, 'RETENTION', policy_id, 'Succeed', 0,
               CASE WHEN dry_run THEN '{"dry_run": true}' ELSE '{"dry_run": false}' END::json,
               trigger, start_time, end_time
        FROM retention_execution_map"""),
    sql("task: retention tasks", """
        INSERT INTO task (vendor_type, execution_id, job_id, status, status_code, status_revision,
                          run_count, extra_attrs, creation_time, start_time, update_time, end_time)
        SELECT 'RETENTION', m.new_id, t.job_id, t.status,
               CASE t.status WHEN 'Pending' THEN 0 WHEN 'Scheduled' THEN 1 WHEN 'Running' THEN 2
                             ELSE 3 END,
               coalesce(t.status_revision, 0), 1,
               ('{"total":"' || coalesce(t.total::text, '') || '","retained":"'
                || coalesce(t.retained::text, '') || '"}')::json,
               t.start_time, t.start_time, t.end_time, t.end_time
        FROM retention_task t JOIN retention_execution_map m ON m.old_id = t.execution_id"""),
    sql("task: foreign key to execution added back (one check of every task)", """
        ALTER TABLE task ADD CONSTRAINT task_execution_id_fkey
            FOREIGN KEY (execution_id) REFERENCES execution(id)"""),
    sql("retention_task and retention_execution dropped",
        "DROP TABLE retention_task, retention_execution"),
))

V51 = SchemaFile(51, (
    sql("execution: status Succeed renamed Success",
        "UPDATE execution SET status = 'Success' WHERE status = 'Succeed'"),
    sql("task: index on execution_id",
        "CREATE INDEX IF NOT EXISTS task_execution_id_idx ON task (execution_id)"),
))

V52 = SchemaFile(52, (
    sql("schedule: new column revision, 0 everywhere", """
        ALTER TABLE schedule ADD COLUMN revision integer;
        UPDATE schedule SET revision = 0"""),
))

V53 = SchemaFile(53, (
    sql("artifact, tag, artifact_reference: lookup indexes", """
        CREATE INDEX IF NOT EXISTS idx_artifact_push_time ON artifact (push_time);
        CREATE INDEX IF NOT EXISTS idx_tag_push_time ON tag (push_time);
        CREATE INDEX IF NOT EXISTS idx_tag_artifact_id ON tag (artifact_id);
        CREATE INDEX IF NOT EXISTS idx_artifact_reference_child_id ON artifact_reference (child_id)"""),
))

CHECKS = (
    Check("role",
          "role ids 4/5 are taken by roles other than maintainer/limitedGuest",
          "renumber the conflicting role (and project_member.role) to a free id",
          lambda c: """SELECT role_id, name FROM role
                       WHERE (role_id = 4 AND name NOT IN ('maintainer', 'master')
                              AND EXISTS (SELECT 1 FROM role WHERE name IN ('maintainer', 'master')
                                          AND role_id <> 4))
                          OR (role_id = 5 AND name <> 'limitedGuest'
                              AND EXISTS (SELECT 1 FROM role WHERE name = 'limitedGuest'
                                          AND role_id <> 5)) ORDER BY role_id""",
          before=50),
    Check("quota",
          "project quotas whose reference_id is not an integer",
          "DELETE FROM quota WHERE reference = 'project' AND reference_id !~ '^\\s*[-+]?[0-9]+\\s*$'",
          lambda c: """SELECT id, reference, reference_id FROM quota
                       WHERE reference = 'project' ORDER BY id""",
          bad=lambda r: not_integer(r["reference_id"]), before=50),
    Check("quota_usage",
          "project quota usages whose reference_id is not an integer",
          "DELETE FROM quota_usage WHERE reference = 'project' AND reference_id !~ '^\\s*[-+]?[0-9]+\\s*$'",
          lambda c: """SELECT id, reference, reference_id FROM quota_usage
                       WHERE reference = 'project' ORDER BY id""",
          bad=lambda r: not_integer(r["reference_id"]), before=50),
    Check("replication_policy",
          "scheduled replication policies whose trigger is not JSON",
          "fix the policy's trigger in the Harbor UI, or UPDATE replication_policy SET trigger = "
          "'<valid JSON>' WHERE id = <id>",
          lambda c: """SELECT p.id, p.name, p.trigger FROM replication_policy p
                       WHERE p.id IN (SELECT policy_id FROM replication_schedule_job)
                       ORDER BY p.id""",
          bad=lambda r: r["trigger"] is not None and not_json(r["trigger"]), before=50),
    Check("replication_schedule_job",
          "several schedule jobs for one replication policy (one schedule per policy)",
          "DELETE FROM replication_schedule_job WHERE id = <all but the newest of the policy>",
          lambda c: """SELECT id, policy_id, status, update_time FROM replication_schedule_job
                       WHERE policy_id IN (SELECT policy_id FROM replication_schedule_job
                                           GROUP BY policy_id HAVING count(*) > 1)
                       ORDER BY policy_id, id""",
          before=50),
    Check("admin_job",
          "several periodic garbage-collection or scan-all jobs (one schedule each)",
          "UPDATE admin_job SET deleted = true WHERE id = <all but the newest periodic job>",
          lambda c: """SELECT id, job_name, cron_str, update_time FROM admin_job
                       WHERE job_kind = 'Periodic' AND NOT deleted
                         AND job_name IN (SELECT job_name FROM admin_job
                                          WHERE job_kind = 'Periodic' AND NOT deleted
                                            AND job_name IN ('IMAGE_GC', 'IMAGE_SCAN_ALL')
                                          GROUP BY job_name HAVING count(*) > 1)
                       ORDER BY job_name, id""",
          before=50),
    Check("admin_job",
          "periodic garbage-collection or scan-all jobs whose cron_str is not JSON",
          "UPDATE admin_job SET cron_str = '{\"type\":\"None\",\"cron\":\"\"}' WHERE id = <id>",
          lambda c: """SELECT id, job_name, cron_str FROM admin_job
                       WHERE job_kind = 'Periodic' AND NOT deleted
                         AND job_name IN ('IMAGE_GC', 'IMAGE_SCAN_ALL') ORDER BY id""",
          bad=lambda r: r["cron_str"] is not None and not_json(r["cron_str"]), before=50),
    Check("admin_job",
          "garbage-collection jobs whose job_parameters is not JSON",
          "UPDATE admin_job SET job_parameters = '' WHERE id = <id>",
          lambda c: """SELECT id, job_name, job_kind, job_parameters FROM admin_job
                       WHERE job_name = 'IMAGE_GC' AND job_kind IN ('Periodic', 'Generic')
                         AND NOT deleted AND job_parameters <> '' ORDER BY id"""
          if "job_parameters" in c else None,
          bad=lambda r: not_json(r["job_parameters"]), before=50),
    Check("replication_task",
          "replication tasks whose resource, type or operation contains a quote, backslash or "
          "control character (2.2 writes them into JSON without escaping)",
          "UPDATE replication_task SET src_resource = <without the character> WHERE id = <id>, "
          "or delete the finished task",
          lambda c: r"""SELECT t.id, t.execution_id, t.resource_type, t.src_resource, t.dst_resource,
                              t.operation FROM replication_task t
                       WHERE t.execution_id IN (SELECT e.id FROM replication_execution e
                                                JOIN replication_policy p ON p.id = e.policy_id)
                         AND concat(t.resource_type, t.src_resource, t.dst_resource, t.operation)
                             ~ '["\\\x01-\x1f]' ORDER BY t.id""",
          before=50),
    Check("retention_execution",
          "retention executions whose trigger is NULL or longer than 16 characters",
          "UPDATE retention_execution SET trigger = 'Manual' WHERE id = <id>",
          lambda c: """SELECT id, policy_id, trigger FROM retention_execution
                       WHERE (trigger IS NULL OR length(trigger) > 16)
                         AND policy_id IN (SELECT id FROM retention_policy) ORDER BY id""",
          before=50),
    Check("retention_task",
          "retention tasks whose status is NULL or longer than 16 characters",
          "UPDATE retention_task SET status = 'Error' WHERE id = <id>",
          lambda c: """SELECT t.id, t.execution_id, t.status FROM retention_task t
                       JOIN retention_execution e ON e.id = t.execution_id
                       WHERE (t.status IS NULL OR length(t.status) > 16)
                         AND e.policy_id IN (SELECT id FROM retention_policy) ORDER BY t.id""",
          before=50),
    Check("properties",
          "robot_token_duration that is not a whole number of minutes",
          "UPDATE properties SET v = '43200' WHERE k = 'robot_token_duration'",
          lambda c: "SELECT id, k, v FROM properties WHERE k = 'robot_token_duration'",
          bad=lambda r: not_integer(r["v"]), before=50),
)

STEP = ReleaseStep(
    "2.2.0", (V50, V51, V52, V53),
    harbor_db=(HarborDb("2.2.0", 9),),
    checks=CHECKS,
    removes=("clair",),
    markers=(
        (50, (has_table("vulnerability_record"), no_table("admin_job"), no_table("replication_execution"),
              no_table("retention_task"), has_column("robot", "secret"))),
        (51, (has_index("task_execution_id_idx"),)),
        (52, (has_column("schedule", "revision"),)),
        (53, (has_index("idx_tag_artifact_id"),)),
    ),
)
