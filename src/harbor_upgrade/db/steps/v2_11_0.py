"""Harbor 2.11.0 (schema 140): artifact types and SBOM reports.

Every artifact gets an ``artifact_type`` (for the OCI 1.1 referrers API), set to its
media type and then required; SBOM reports get their own table.
Scale: filling artifact_type rewrites the artifact table (once).
"""
from __future__ import annotations

from ..probes import has_column, has_table
from .base import HarborDb, ReleaseStep, SchemaFile, sql

V140 = SchemaFile(140, (
    sql("artifact: new column artifact_type",
        "ALTER TABLE artifact ADD COLUMN IF NOT EXISTS artifact_type varchar(255)"),
    # Upstream UPDATEs every row, then checks NOT NULL in a second pass. Here one
    # ALTER TABLE writes the table once with the column filled (the same values: a
    # value already there stays), rebuilds its indexes and checks NOT NULL on the way:
    # several times faster than an UPDATE of every row, and no dead row versions.
    sql("artifact: artifact_type set to the media type and made NOT NULL (rewrites the table)", """
        ALTER TABLE artifact
            ALTER COLUMN artifact_type TYPE varchar(255) USING coalesce(artifact_type, media_type),
            ALTER COLUMN artifact_type SET NOT NULL"""),
    sql("sbom_report: new table", """
        CREATE TABLE IF NOT EXISTS sbom_report (
            id SERIAL PRIMARY KEY NOT NULL,
            uuid varchar(64) UNIQUE NOT NULL,
            artifact_id int NOT NULL,
            registration_uuid varchar(64) NOT NULL,
            mime_type varchar(256) NOT NULL,
            media_type varchar(256) NOT NULL,
            report json,
            UNIQUE (artifact_id, registration_uuid, mime_type, media_type))"""),
))

STEP = ReleaseStep(
    "2.11.0", (V140,),
    harbor_db=(HarborDb("2.11.0", 15, upgrades_from=14),),
    markers=((140, (has_column("artifact", "artifact_type"), has_table("sbom_report"))),),
)
