"""Harbor 2.8.0 (schema 110) and 2.8.1 (111): ChartMuseum goes, webhooks become executions.

2.8.0 deletes artifact blob links whose artifact digest has no blob row, records each
accessory's subject by digest and repository (the subject's foreign key goes; the
unique key becomes artifact + subject digest), and removes ChartMuseum: registries of
type helm-hub/artifact-hub get a deprecation note; replication policies that use them
or filter on resource `chart` are disabled, noted and lose the chart filter; the
helm-chart permissions go; chart events leave the webhook policies (a policy left
without events is disabled and noted). Every `http` webhook target gets the payload
format "Default". The webhook job history becomes executions: for each policy and
(non-chart) event type, the newest job in a final state becomes one WEBHOOK (or SLACK)
execution with one task; every other job is lost with ``notification_job``.
2.8.1 indexes the report uuids in task.extra_attrs.

Upstream fills the accessories and converts the jobs row by row; here both are
set-based. Upstream fails on a webhook policy whose targets is not a JSON array, on
event types or replication filters that are not JSON, and on a converted job without
job detail: the checks below list those rows first.
"""
from __future__ import annotations

import json

from ..checks import Check, not_json
from ..probes import has_column, has_index, no_table
from .base import HarborDb, Loss, ReleaseStep, SchemaFile, sql
from .common import ARTIFACT_BLOB_WITHOUT_BLOB_AGAIN

CHART_EVENTS = "('UPLOAD_CHART', 'DOWNLOAD_CHART', 'DELETE_CHART')"
FINAL_JOB_STATES = "('stopped', 'finished', 'error')"
CHART_HUBS = "('artifact-hub', 'helm-hub')"
IS_CHART_FILTER = "(f ->> 'type' = 'resource' AND f ->> 'value' = 'chart')"
IS_CHART_EVENT = """(e @> '"UPLOAD_CHART"'::jsonb OR e @> '"DOWNLOAD_CHART"'::jsonb
                     OR e @> '"DELETE_CHART"'::jsonb)"""
# the jobs 0110 carries over: the newest one in a final state per (policy, event type)
CARRIED_JOBS = f"""
    SELECT DISTINCT ON (policy_id, event_type) *
    FROM notification_job
    WHERE event_type NOT IN {CHART_EVENTS} AND status IN {FINAL_JOB_STATES}
    ORDER BY policy_id, event_type, creation_time DESC, id DESC"""
ARRAY_OF = "CASE WHEN {c} <> '' AND jsonb_typeof({c}::jsonb) = 'array' THEN {c}::jsonb END"

V110 = SchemaFile(110, (
    ARTIFACT_BLOB_WITHOUT_BLOB_AGAIN,
    sql("artifact_accessory: new columns subject_artifact_digest and subject_artifact_repo", """
        ALTER TABLE artifact_accessory ADD COLUMN IF NOT EXISTS subject_artifact_digest varchar(1024),
                                       ADD COLUMN IF NOT EXISTS subject_artifact_repo varchar(1024)"""),
    sql("artifact_accessory: subject digest and repository from the subject artifact", """
        UPDATE artifact_accessory acc
        SET subject_artifact_digest = a.digest, subject_artifact_repo = a.repository_name
        FROM artifact a WHERE a.id = acc.subject_artifact_id"""),
    sql("artifact_accessory: subject foreign key dropped, unique key on (artifact_id, "
        "subject_artifact_digest)", """
        ALTER TABLE artifact_accessory
            DROP CONSTRAINT IF EXISTS artifact_accessory_subject_artifact_id_fkey,
            DROP CONSTRAINT IF EXISTS unique_artifact_accessory,
            ADD CONSTRAINT unique_artifact_accessory UNIQUE (artifact_id, subject_artifact_digest)"""),
    sql("registry: helm-hub and artifact-hub registries get a deprecation note", f"""
        UPDATE registry
        SET description = 'Chartmuseum has been deprecated in Harbor v2.8.0, please delete this registry.'
        WHERE type IN {CHART_HUBS}"""),
    sql("replication_policy: policies on a chart hub or with a chart filter disabled, noted, "
        "chart filter removed", f"""
        UPDATE replication_policy p
        SET enabled = false,
            filters = (SELECT coalesce(jsonb_agg(f)::text, '')
                       FROM jsonb_array_elements({ARRAY_OF.format(c='p.filters')}) AS f
                       WHERE NOT {IS_CHART_FILTER}),
            description = 'Chartmuseum is deprecated in Harbor v2.8.0, because the Source resource '
                          'filter of this rule is chart(chartmuseum), so please update this rule.'
        WHERE p.id IN (
            SELECT x.id FROM replication_policy x,
                   jsonb_array_elements({ARRAY_OF.format(c='x.filters')}) AS f
            WHERE {IS_CHART_FILTER}
            UNION
            SELECT x.id FROM replication_policy x
            JOIN registry r ON r.id IN (x.dest_registry_id, x.src_registry_id)
            WHERE r.type IN {CHART_HUBS})"""),
    sql("role_permission: helm-chart permissions deleted", """
        DELETE FROM role_permission WHERE permission_policy_id IN (
            SELECT id FROM permission_policy
            WHERE resource IN ('helm-chart', 'helm-chart-version', 'helm-chart-version-label'))"""),
    sql("permission_policy: helm-chart policies deleted", """
        DELETE FROM permission_policy
        WHERE resource IN ('helm-chart', 'helm-chart-version', 'helm-chart-version-label')"""),
    sql("notification_policy: chart events removed from the event types", f"""
        UPDATE notification_policy p
        SET event_types = (SELECT coalesce(jsonb_agg(e), '[]'::jsonb)
                           FROM jsonb_array_elements(p.event_types::jsonb) AS e
                           WHERE NOT {IS_CHART_EVENT})
        WHERE EXISTS (SELECT 1 FROM jsonb_array_elements({ARRAY_OF.format(c='p.event_types')}) AS e
                      WHERE {IS_CHART_EVENT})"""),
    sql("notification_policy: policies left without events disabled and noted", """
        UPDATE notification_policy
        SET enabled = false,
            description = 'Chartmuseum is deprecated in Harbor v2.8.0, because this notification policy '
                          'only has event type about Chartmuseum, so please update or delete this '
                          'notification policy.'
        WHERE event_types = '[]'"""),
    sql("notification_policy: http targets get payload_format Default", """
        UPDATE notification_policy p SET targets = t.targets
        FROM (SELECT n.id,
                     jsonb_agg(CASE WHEN x.target ->> 'type' = 'http' AND NOT x.target ? 'payload_format'
                                    THEN x.target || '{"payload_format":"Default"}'::jsonb
                                    ELSE x.target END ORDER BY x.n) AS targets
              FROM notification_policy n,
                   jsonb_array_elements(n.targets::jsonb) WITH ORDINALITY AS x(target, n)
              GROUP BY n.id) t
        WHERE p.id = t.id"""),
    sql("notification_job: the newest finished/failed/stopped job per policy and event type "
        "picked, with a new execution id", f"""
        CREATE TEMP TABLE webhook_job_map ON COMMIT DROP AS
        SELECT nextval('execution_id_seq') AS execution_id,
               CASE j.notify_type WHEN 'slack' THEN 'SLACK' ELSE 'WEBHOOK' END AS vendor_type,
               CASE j.status WHEN 'stopped' THEN 'Stopped' WHEN 'error' THEN 'Error'
                             ELSE 'Success' END AS status,
               j.policy_id, j.event_type, j.job_detail, j.job_uuid, j.creation_time, j.update_time
        FROM ({CARRIED_JOBS}) j
        ORDER BY j.policy_id, j.event_type"""),
    sql("execution: one webhook execution per picked job (event type and job detail as payload)", """
        INSERT INTO execution (id, vendor_type, vendor_id, status, trigger, extra_attrs, start_time,
                               end_time, update_time)
        SELECT execution_id, vendor_type, policy_id, status, 'EVENT',
               format('{"event_type": "%s", "payload": %s}', event_type, to_json(job_detail)::text)::json,
               creation_time, update_time, update_time
        FROM webhook_job_map"""),
    sql("task: one task per webhook execution", """
        INSERT INTO task (execution_id, job_id, status, status_code, run_count, creation_time, start_time,
                          update_time, end_time, vendor_type)
        SELECT execution_id, job_uuid, status, 3, 1, creation_time, update_time, update_time, update_time,
               vendor_type
        FROM webhook_job_map ORDER BY execution_id"""),
    sql("notification_job: dropped (the rest of the webhook job history is lost)",
        "DROP TABLE IF EXISTS notification_job"),
))

V111 = SchemaFile(111, (
    sql("task: GIN index on extra_attrs -> report_uuids", """
        CREATE INDEX IF NOT EXISTS idx_task_extra_attrs_report_uuids
            ON task USING gin ((extra_attrs::jsonb -> 'report_uuids'))"""),
))


def _not_json_array(value: str | None) -> bool:
    if value is None:
        return False
    return not_json(value) or not isinstance(json.loads(value), list)


CHECKS = (
    Check("notification_policy",
          "webhook policies whose targets is not a JSON array (0110 expands every policy's targets)",
          "UPDATE notification_policy SET targets = '[]' WHERE id = <id>  -- or write the targets as "
          "a JSON array, e.g. [{\"type\":\"http\",\"address\":\"https://...\"}]",
          lambda c: "SELECT id, name, project_id, targets FROM notification_policy ORDER BY id",
          bad=lambda r: _not_json_array(r["targets"]), before=110),
    Check("notification_policy",
          "webhook policies whose event_types is not JSON",
          "UPDATE notification_policy SET event_types = '[]' WHERE id = <id>  -- or a JSON array of events",
          lambda c: """SELECT id, name, project_id, event_types FROM notification_policy
                       WHERE event_types <> '' ORDER BY id""",
          bad=lambda r: not_json(r["event_types"]), before=110, since=30),
    Check("replication_policy",
          "replication policies whose filters is not JSON",
          "UPDATE replication_policy SET filters = '' WHERE id = <id>  -- or a JSON array of filters",
          lambda c: "SELECT id, name, filters FROM replication_policy WHERE filters <> '' ORDER BY id",
          bad=lambda r: not_json(r["filters"]), before=110),
    Check("notification_job",
          "webhook jobs that 0110 turns into executions whose payload would not be JSON (no job_detail, "
          "or an event type with a quote, backslash or control character)",
          "UPDATE notification_job SET job_detail = '' WHERE id = <id>  -- or delete the job",
          lambda c: f"""SELECT id, policy_id, event_type, status, creation_time FROM ({CARRIED_JOBS}) j
                        WHERE job_detail IS NULL OR event_type ~ '["\\\\\\x01-\\x1f]' ORDER BY id""",
          before=110),
    Check("artifact_accessory",
          "accessories of one artifact whose subjects have the same digest (new unique key on artifact "
          "and subject digest)",
          "DELETE FROM artifact_accessory WHERE id = <all but one of the group>",
          lambda c: """SELECT acc.id, acc.artifact_id, acc.subject_artifact_id, a.digest AS subject_digest
                       FROM artifact_accessory acc JOIN artifact a ON a.id = acc.subject_artifact_id
                       WHERE (acc.artifact_id, a.digest) IN (
                           SELECT x.artifact_id, y.digest FROM artifact_accessory x
                           JOIN artifact y ON y.id = x.subject_artifact_id
                           GROUP BY 1, 2 HAVING count(*) > 1)
                       ORDER BY acc.artifact_id, acc.id""",
          before=110),
)

STEP = ReleaseStep(
    "2.8.0", (V110, V111),
    harbor_db=(HarborDb("2.8.0", 13),),
    checks=CHECKS,
    removes=("chartmuseum",),
    losses=(Loss("notification_job", "webhook job history (all jobs but the newest finished one per "
                                     "policy and event type)",
                 f"SELECT (SELECT count(*) FROM notification_job) - (SELECT count(*) FROM ({CARRIED_JOBS}) j)"),),
    markers=(
        (110, (has_column("artifact_accessory", "subject_artifact_digest"), no_table("notification_job"))),
        (111, (has_column("artifact_accessory", "subject_artifact_digest"),
               has_index("idx_task_extra_attrs_report_uuids"))),
    ),
    at_start=("harbor-core 2.8+ schedules the execution sweep job (a schedule row) at its start",),
)
