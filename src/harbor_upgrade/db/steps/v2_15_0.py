"""Harbor 2.15.0 (schema 180): registries may carry their own CA certificate.

harbor-db runs PostgreSQL 15 in 2.15.0 and 2.15.1, and PostgreSQL 18 from 2.15.2 on (its
image upgrades a PostgreSQL 15 data folder).
"""
from __future__ import annotations

from ..probes import has_column
from .base import HarborDb, ReleaseStep, SchemaFile, sql

V180 = SchemaFile(180, (
    sql("registry: new column ca_certificate",
        "ALTER TABLE registry ADD COLUMN IF NOT EXISTS ca_certificate text"),
))

STEP = ReleaseStep(
    "2.15.0", (V180,),
    harbor_db=(HarborDb("2.15.0", 15, upgrades_from=14), HarborDb("2.15.2", 18, upgrades_from=15)),
    markers=((180, (has_column("registry", "ca_certificate"),)),),
)
