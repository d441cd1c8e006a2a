"""Harbor 2.10.0 (schema 130): labels on projects and repositories are gone.

``harbor_resource_label`` (labels attached to projects and repositories; artifact labels
live in ``label_reference`` since 2.0) is dropped with its rows: a loss by design,
counted before the step (``plan`` and the migrate report say how many rows go).
Accessories are indexed by subject.
"""
from __future__ import annotations

from ..probes import has_index, no_table
from .base import HarborDb, Loss, ReleaseStep, SchemaFile, sql

V130 = SchemaFile(130, (
    sql("harbor_resource_label: dropped (labels of projects and repositories are lost)",
        "DROP TABLE IF EXISTS harbor_resource_label"),
    sql("artifact_accessory: index on subject_artifact_id", """
        CREATE INDEX IF NOT EXISTS idx_artifact_accessory_subject_artifact_id
            ON artifact_accessory (subject_artifact_id)"""),
))

STEP = ReleaseStep(
    "2.10.0", (V130,),
    harbor_db=(HarborDb("2.10.0", 14, upgrades_from=13),),
    losses=(Loss("harbor_resource_label", "labels attached to projects and repositories (harbor_resource_label)",
                 "SELECT count(*) FROM harbor_resource_label"),),
    markers=((130, (no_table("harbor_resource_label"), has_index("idx_artifact_accessory_subject_artifact_id"))),),
)
