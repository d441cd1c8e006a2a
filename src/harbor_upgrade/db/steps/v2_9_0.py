"""Harbor 2.9.0 (schema 120): vulnerability summaries and faster CVE queries.

Image-scan executions point at the scanned artifact instead of the scanner (so that
the execution sweep finds them), CVSS v3 scores are taken from the vendor attributes
when no record has one yet, the vulnerability tables get lookup indexes, every scan
report gets its vulnerability counts by severity (critical, high, medium, low and
unknown; `none_cnt` and `fixable_cnt` are added but never filled), and replication
schedules carry their policy as ``{"policy_id": N}`` instead of a bare id. Notary is
gone from this release on.

Upstream counts each report's vulnerabilities in a row-by-row loop; here one grouped
join does it. Upstream fails on a replication schedule whose parameter is not an
integer, on an image-scan execution whose artifact id is not an integer, and on a
CVSS v3 score that is not a number: the checks below list those rows first.
"""
from __future__ import annotations

import re

from ..checks import Check
from ..probes import has_column, has_index
from .base import HarborDb, ReleaseStep, SchemaFile, sql

SEVERITIES = (("critical_cnt", "Critical"), ("high_cnt", "High"), ("medium_cnt", "Medium"),
              ("low_cnt", "Low"), ("unknown_cnt", "Unknown"))
COUNT_COLUMNS = ("critical_cnt", "high_cnt", "medium_cnt", "low_cnt", "none_cnt", "unknown_cnt", "fixable_cnt")

V120 = SchemaFile(120, (
    sql("task: GIN index on extra_attrs -> report_uuids (as in 2.8.1)", """
        CREATE INDEX IF NOT EXISTS idx_task_extra_attrs_report_uuids
            ON task USING gin ((extra_attrs::jsonb -> 'report_uuids'))"""),
    sql("execution: image-scan executions point at the scanned artifact instead of the scanner", """
        UPDATE execution SET vendor_id = (extra_attrs -> 'artifact' ->> 'id')::integer
        WHERE vendor_type = 'IMAGE_SCAN'
          AND vendor_id IN (SELECT id FROM scanner_registration)
          AND jsonb_path_exists(extra_attrs::jsonb, '$.artifact.id')"""),
    sql("vulnerability_record: CVSS v3 score from the vendor attributes (when no record has one)", """
        UPDATE vulnerability_record
        SET cvss_score_v3 = (vendor_attributes -> 'CVSS' -> 'nvd' ->> 'V3Score')::double precision
        WHERE jsonb_path_exists(vendor_attributes::jsonb, '$.CVSS.nvd.V3Score')
          AND NOT EXISTS (SELECT 1 FROM vulnerability_record WHERE cvss_score_v3 IS NOT NULL)"""),
    sql("report_vulnerability_record, vulnerability_record: lookup indexes", """
        CREATE INDEX IF NOT EXISTS idx_report_vulnerability_record_vuln_record_id
            ON report_vulnerability_record (vuln_record_id);
        CREATE INDEX IF NOT EXISTS idx_vulnerability_record_cvss_score_v3 ON vulnerability_record (cvss_score_v3);
        CREATE INDEX IF NOT EXISTS idx_vulnerability_registration_uuid ON vulnerability_record (registration_uuid);
        CREATE INDEX IF NOT EXISTS idx_vulnerability_record_cve_id ON vulnerability_record (cve_id);
        CREATE INDEX IF NOT EXISTS idx_vulnerability_record_severity ON vulnerability_record (severity);
        CREATE INDEX IF NOT EXISTS idx_vulnerability_record_package ON vulnerability_record (package)"""),
    sql("scan_report: new vulnerability count columns",
        "ALTER TABLE scan_report " + ", ".join(f"ADD COLUMN IF NOT EXISTS {c} bigint" for c in COUNT_COLUMNS)),
    sql("scan_report: vulnerabilities counted by severity for every report", f"""
        UPDATE scan_report s
        SET {", ".join(f"{col} = coalesce(n.{col}, 0)" for col, _ in SEVERITIES)}
        FROM scan_report r
        LEFT JOIN (SELECT rvr.report_uuid,
                          {", ".join(f"count(*) FILTER (WHERE vr.severity = '{sev}') AS {col}"
                                     for col, sev in SEVERITIES)}
                   FROM report_vulnerability_record rvr
                   JOIN vulnerability_record vr ON vr.id = rvr.vuln_record_id
                   GROUP BY rvr.report_uuid) n ON n.report_uuid = r.uuid
        WHERE r.id = s.id
          AND NOT EXISTS (SELECT 1 FROM scan_report
                          WHERE {" AND ".join(f"{c} IS NOT NULL" for c in COUNT_COLUMNS if c != "none_cnt")})"""),
    sql("schedule: replication schedules carry {\"policy_id\": N} instead of the bare policy id", """
        UPDATE schedule SET callback_func_param = json_build_object('policy_id', callback_func_param::int)::text
        WHERE vendor_type = 'REPLICATION' AND callback_func_param NOT LIKE '%policy_id%'"""),
))

_PG_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")


def _not_pg_integer(value: object) -> bool:
    """What PostgreSQL's ::integer refuses (NULL passes)."""
    if value is None:
        return False
    return not _PG_INTEGER.match(str(value)) or not -2**31 <= int(str(value)) < 2**31


def _not_pg_float(value: object) -> bool:
    if value is None:
        return False
    text = str(value).strip()
    try:
        float(text)
    except ValueError:
        return True
    return "_" in text


CHECKS = (
    Check("schedule",
          "replication schedules whose parameter (the policy id) is not an integer",
          "UPDATE schedule SET callback_func_param = '<the policy id>' WHERE id = <id>  -- or delete the schedule",
          lambda c: """SELECT id, vendor_id, callback_func_param FROM schedule
                       WHERE vendor_type = 'REPLICATION' AND callback_func_param NOT LIKE '%policy_id%'
                       ORDER BY id""" if "vendor_type" in c else None,
          bad=lambda r: _not_pg_integer(r["callback_func_param"]), before=120),
    Check("execution",
          "image-scan executions whose extra_attrs artifact.id is not an integer",
          "UPDATE execution SET extra_attrs = <with a numeric artifact id> WHERE id = <id>  -- or delete "
          "the execution and its tasks",
          lambda c: """SELECT id, vendor_id, extra_attrs::jsonb -> 'artifact' ->> 'id' AS artifact_id
                       FROM execution
                       WHERE vendor_type = 'IMAGE_SCAN' AND vendor_id IN (SELECT id FROM scanner_registration)
                         AND jsonb_path_exists(extra_attrs::jsonb, '$.artifact.id') ORDER BY id""",
          bad=lambda r: _not_pg_integer(r["artifact_id"]), before=120),
    Check("vulnerability_record",
          "vulnerability records whose CVSS.nvd.V3Score is not a number",
          "UPDATE vulnerability_record SET vendor_attributes = <without the score> WHERE id = <id>",
          lambda c: """SELECT id, cve_id, vendor_attributes::jsonb -> 'CVSS' -> 'nvd' ->> 'V3Score' AS v3_score
                       FROM vulnerability_record
                       WHERE jsonb_path_exists(vendor_attributes::jsonb, '$.CVSS.nvd.V3Score')
                         AND NOT EXISTS (SELECT 1 FROM vulnerability_record WHERE cvss_score_v3 IS NOT NULL)
                       ORDER BY id""",
          bad=lambda r: _not_pg_float(r["v3_score"]), before=120),
)

STEP = ReleaseStep(
    "2.9.0", (V120,),
    harbor_db=(HarborDb("2.9.0", 14, upgrades_from=13),),
    checks=CHECKS,
    removes=("notary",),
    markers=((120, (has_column("scan_report", "critical_cnt"), has_index("idx_vulnerability_record_cve_id"))),),
    at_start=("harbor-core 2.9+ no longer runs the 2.0 artifact abstraction: a database from before 2.0 "
              "keeps empty artifact metadata unless `harbor-upgrade artifacts` fills it",),
)
