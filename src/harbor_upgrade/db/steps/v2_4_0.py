"""Harbor 2.4.0 (schema 70) and 2.4.2 (schema 71).

Memberships of deleted users go (1.10 kept them), replication policies get a speed
limit, quotas get an optimistic-lock version, and the Trivy severity Negligible is
called None. 2.4.2 deletes the built-in Trivy's scan reports of the old report format
(their vulnerability links go with them).

``--to 2.4.0`` stops at 70 (what 2.4.0 and 2.4.1 run); 0071 is applied on the way to
any later release.
"""
from __future__ import annotations

from ..probes import has_column
from .base import HarborDb, ReleaseStep, SchemaFile, sql

V70 = SchemaFile(70, (
    sql("project_member: memberships of deleted users deleted", """
        DELETE FROM project_member
        WHERE entity_type = 'u'
          AND entity_id IN (SELECT user_id FROM harbor_user WHERE deleted = true)"""),
    sql("replication_policy: new column speed_kb",
        "ALTER TABLE replication_policy ADD COLUMN IF NOT EXISTS speed_kb int"),
    sql("quota, quota_usage: new column version", """
        ALTER TABLE quota ADD COLUMN IF NOT EXISTS version bigint DEFAULT 0;
        ALTER TABLE quota_usage ADD COLUMN IF NOT EXISTS version bigint DEFAULT 0"""),
    sql("vulnerability_record: severity Negligible renamed None",
        "UPDATE vulnerability_record SET severity = 'None' WHERE severity = 'Negligible'"),
))

V71 = SchemaFile(71, (
    sql("scan_report: the built-in Trivy's reports of the old format (version 1.0) deleted, with their "
        "vulnerability links", """
        DELETE FROM scan_report
        WHERE mime_type = 'application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0'
          AND registration_uuid IN (SELECT uuid FROM scanner_registration
                                    WHERE name = 'Trivy' AND immutable = true)"""),
))

STEP = ReleaseStep(
    "2.4.0", (V70, V71),
    harbor_db=(HarborDb("2.4.0", 13, upgrades_from=9),),
    markers=((70, (has_column("replication_policy", "speed_kb"), has_column("quota", "version"))),),
    target=70,
)
