"""Read-only checks for rows that would make a later release step fail.

Each check belongs to the release step that would fail, runs only while that step is
pending, and returns every offending row with the fix. The checks read the tables as
they are before the step (the shape of the database's current release).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Callable

import psycopg
from psycopg.rows import dict_row

from .connection import columns, table_exists

MAX_ROWS = 1000


@dataclass
class LintFinding:
    step: str            # release step that would fail, e.g. "2.0.0"
    table: str
    problem: str
    rows: list[dict]     # the offending rows (at most MAX_ROWS)
    fix: str             # the SQL or action that resolves it
    count: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    step: str
    table: str
    problem: str
    fix: str
    query: Callable[[set[str]], str | None]   # columns of `table` -> SQL (None: not applicable)
    bad: Callable[[dict], bool] | None = None  # row filter done in Python (JSON validity)
    before: int = 999                          # applies while the schema version is below this


def not_json(value: str | None) -> bool:
    if value is None:
        return False
    try:
        json.loads(value)
    except ValueError:
        return True
    return False


def not_integer(value: object) -> bool:
    try:
        int(str(value).strip())
    except ValueError:
        return True
    return False


def _repo_col(cols: set[str]) -> str:
    return "repo" if "repo" in cols else "repository_name"


CHECKS: tuple[Check, ...] = (
    # -- 2.0.0 ------------------------------------------------------------------------
    Check("2.0.0", "access_log",
          "project create/delete entries without a project name (audit_log.resource is NOT NULL)",
          "UPDATE access_log SET repo_name = '' WHERE repo_name IS NULL AND repo_tag = 'N/A' "
          "AND operation IN ('create', 'delete')  -- or delete these entries",
          lambda c: """SELECT log_id, project_id, operation, username, op_time FROM access_log
                       WHERE repo_name IS NULL AND repo_tag = 'N/A'
                         AND operation IN ('create', 'delete') ORDER BY log_id""",
          before=30),
    Check("2.0.0", "harbor_resource_label",
          "labels of images that point at a label that does not exist (label_reference foreign key)",
          "DELETE FROM harbor_resource_label WHERE resource_type = 'i' "
          "AND label_id NOT IN (SELECT id FROM harbor_label)",
          # only labels of tags that 2.0 can resolve are moved (and then fail); labels of
          # orphan images are dropped silently
          lambda c: """SELECT l.id, l.label_id, l.resource_name FROM harbor_resource_label l
                       WHERE l.resource_type = 'i'
                         AND l.label_id NOT IN (SELECT id FROM harbor_label)
                         AND EXISTS (SELECT 1 FROM artifact a
                                     JOIN repository r ON r.name = a.repo
                                     JOIN blob b ON b.digest = a.digest
                                     WHERE a.repo || ':' || a.tag = l.resource_name)
                       ORDER BY l.id""",
          before=30),
    Check("2.0.0", "scanner_registration",
          "immutable scanners whose names become equal when cut at the first hyphen "
          "(scanner names are unique)",
          "rename or delete all but one of these scanners (UPDATE scanner_registration SET name = ...)",
          lambda c: """SELECT id, name, uuid FROM scanner_registration WHERE immutable
                         AND split_part(name, '-', 1) IN (
                           SELECT split_part(name, '-', 1) FROM scanner_registration WHERE immutable
                           GROUP BY 1 HAVING count(*) > 1) ORDER BY id""",
          before=30),
    Check("2.0.0", "artifact",
          "one repository and tag listed under several projects (new unique tag per repository)",
          "DELETE FROM artifact WHERE id = <the row of the wrong project>",
          lambda c: """SELECT a.id, a.project_id, a.repo, a.tag, a.digest FROM artifact a
                       JOIN (SELECT x.repo, x.tag FROM artifact x
                             JOIN repository r ON r.name = x.repo
                             JOIN blob b ON b.digest = x.digest
                             GROUP BY x.repo, x.tag HAVING count(*) > 1) d
                         ON d.repo = a.repo AND d.tag = a.tag
                       ORDER BY a.repo, a.tag, a.id""" if "tag" in c else None,
          before=30),
    Check("2.0.0", "artifact",
          "artifacts of one missing repository under several projects (2.0.3 recreates the "
          "repository once per project; repository names are unique)",
          "INSERT INTO repository (name, project_id) VALUES ('<name>', <the right project id>) "
          "before upgrading",
          lambda c: f"""SELECT {_repo_col(c)} AS repository_name,
                               array_agg(DISTINCT project_id ORDER BY project_id) AS project_ids
                        FROM artifact
                        WHERE {_repo_col(c)} NOT IN (SELECT name FROM repository)
                        {"AND repository_id < 0" if "repository_id" in c else ""}
                        GROUP BY 1 HAVING count(DISTINCT project_id) > 1 ORDER BY 1""",
          before=31),
    # -- 2.1.0 ------------------------------------------------------------------------
    Check("2.1.0", "retention_policy",
          "retention policy data that is not JSON, or a schedule job_id that is not an integer",
          "fix the policy in the Harbor UI before upgrading, or "
          "UPDATE retention_policy SET data = '<valid JSON>' WHERE id = <id>",
          lambda c: "SELECT id, data FROM retention_policy ORDER BY id",
          bad=lambda r: not_json(r["data"]) or _bad_job_id(r["data"]),
          before=40),
    Check("2.1.0", "schedule",
          "schedules whose status is NULL or longer than 16 characters (task.status is varchar(16) "
          "NOT NULL)",
          "UPDATE schedule SET status = 'Error' WHERE status IS NULL OR length(status) > 16",
          lambda c: """SELECT id, job_id, status FROM schedule
                       WHERE status IS NULL OR length(status) > 16 ORDER BY id""" if "status" in c else None,
          before=40),
    Check("2.1.0", "project_metadata",
          "projects with both reuse_sys_cve_whitelist and reuse_sys_cve_allowlist",
          "DELETE FROM project_metadata WHERE name = 'reuse_sys_cve_allowlist' AND project_id = <id>",
          lambda c: """SELECT project_id FROM project_metadata
                       WHERE name IN ('reuse_sys_cve_whitelist', 'reuse_sys_cve_allowlist')
                       GROUP BY project_id HAVING count(DISTINCT name) = 2 ORDER BY project_id""",
          before=40),
    # -- 2.2.0 ------------------------------------------------------------------------
    Check("2.2.0", "role",
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
    Check("2.2.0", "quota",
          "project quotas whose reference_id is not an integer",
          "DELETE FROM quota WHERE reference = 'project' AND reference_id !~ '^\\s*[-+]?[0-9]+\\s*$'",
          lambda c: """SELECT id, reference, reference_id FROM quota
                       WHERE reference = 'project' ORDER BY id""",
          bad=lambda r: not_integer(r["reference_id"]), before=50),
    Check("2.2.0", "quota_usage",
          "project quota usages whose reference_id is not an integer",
          "DELETE FROM quota_usage WHERE reference = 'project' AND reference_id !~ '^\\s*[-+]?[0-9]+\\s*$'",
          lambda c: """SELECT id, reference, reference_id FROM quota_usage
                       WHERE reference = 'project' ORDER BY id""",
          bad=lambda r: not_integer(r["reference_id"]), before=50),
    Check("2.2.0", "replication_policy",
          "scheduled replication policies whose trigger is not JSON",
          "fix the policy's trigger in the Harbor UI, or UPDATE replication_policy SET trigger = "
          "'<valid JSON>' WHERE id = <id>",
          lambda c: """SELECT p.id, p.name, p.trigger FROM replication_policy p
                       WHERE p.id IN (SELECT policy_id FROM replication_schedule_job)
                       ORDER BY p.id""",
          bad=lambda r: r["trigger"] is not None and not_json(r["trigger"]), before=50),
    Check("2.2.0", "replication_schedule_job",
          "several schedule jobs for one replication policy (one schedule per policy)",
          "DELETE FROM replication_schedule_job WHERE id = <all but the newest of the policy>",
          lambda c: """SELECT id, policy_id, status, update_time FROM replication_schedule_job
                       WHERE policy_id IN (SELECT policy_id FROM replication_schedule_job
                                           GROUP BY policy_id HAVING count(*) > 1)
                       ORDER BY policy_id, id""",
          before=50),
    Check("2.2.0", "admin_job",
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
    Check("2.2.0", "admin_job",
          "periodic garbage-collection or scan-all jobs whose cron_str is not JSON",
          "UPDATE admin_job SET cron_str = '{\"type\":\"None\",\"cron\":\"\"}' WHERE id = <id>",
          lambda c: """SELECT id, job_name, cron_str FROM admin_job
                       WHERE job_kind = 'Periodic' AND NOT deleted
                         AND job_name IN ('IMAGE_GC', 'IMAGE_SCAN_ALL') ORDER BY id""",
          bad=lambda r: r["cron_str"] is not None and not_json(r["cron_str"]), before=50),
    Check("2.2.0", "admin_job",
          "garbage-collection jobs whose job_parameters is not JSON",
          "UPDATE admin_job SET job_parameters = '' WHERE id = <id>",
          lambda c: """SELECT id, job_name, job_kind, job_parameters FROM admin_job
                       WHERE job_name = 'IMAGE_GC' AND job_kind IN ('Periodic', 'Generic')
                         AND NOT deleted AND job_parameters <> '' ORDER BY id"""
          if "job_parameters" in c else None,
          bad=lambda r: not_json(r["job_parameters"]), before=50),
    Check("2.2.0", "replication_task",
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
    Check("2.2.0", "retention_execution",
          "retention executions whose trigger is NULL or longer than 16 characters",
          "UPDATE retention_execution SET trigger = 'Manual' WHERE id = <id>",
          lambda c: """SELECT id, policy_id, trigger FROM retention_execution
                       WHERE (trigger IS NULL OR length(trigger) > 16)
                         AND policy_id IN (SELECT id FROM retention_policy) ORDER BY id""",
          before=50),
    Check("2.2.0", "retention_task",
          "retention tasks whose status is NULL or longer than 16 characters",
          "UPDATE retention_task SET status = 'Error' WHERE id = <id>",
          lambda c: """SELECT t.id, t.execution_id, t.status FROM retention_task t
                       JOIN retention_execution e ON e.id = t.execution_id
                       WHERE (t.status IS NULL OR length(t.status) > 16)
                         AND e.policy_id IN (SELECT id FROM retention_policy) ORDER BY t.id""",
          before=50),
    Check("2.2.0", "properties",
          "robot_token_duration that is not a whole number of minutes",
          "UPDATE properties SET v = '43200' WHERE k = 'robot_token_duration'",
          lambda c: "SELECT id, k, v FROM properties WHERE k = 'robot_token_duration'",
          bad=lambda r: not_integer(r["v"]), before=50),
)


def _bad_job_id(data: str | None) -> bool:
    if data is None or not_json(data):
        return False
    doc = json.loads(data)
    job = ((doc.get("trigger") or {}).get("references") or {}).get("job_id") if isinstance(doc, dict) else None
    return job is not None and not_integer(job)


def run_checks(conn: psycopg.Connection, schema_version: int, pending: set[str]) -> list[LintFinding]:
    """Every finding for the pending release steps of a database at schema_version."""
    findings = []
    for check in CHECKS:
        if check.step not in pending or schema_version >= check.before:
            continue
        if not table_exists(conn, check.table):
            continue
        sql = check.query(columns(conn, check.table))
        if sql is None:
            continue
        with conn.cursor(row_factory=dict_row) as cur:
            rows = [r for r in cur.execute(sql) if check.bad is None or check.bad(r)]
        if rows:
            findings.append(LintFinding(check.step, check.table, check.problem,
                                        [_plain(r) for r in rows[:MAX_ROWS]], check.fix, len(rows)))
    return findings


def _plain(row: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else str(v))
            for k, v in row.items()}
