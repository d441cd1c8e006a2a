"""Harbor 2.12.0 (schema 150): robots know their creator; preheat policies get a scope."""
from __future__ import annotations

from ..probes import has_column
from .base import HarborDb, ReleaseStep, SchemaFile, sql

V150 = SchemaFile(150, (
    sql("robot: new columns creator_ref (default 0) and creator_type", """
        ALTER TABLE robot ADD COLUMN IF NOT EXISTS creator_ref integer DEFAULT 0,
                          ADD COLUMN IF NOT EXISTS creator_type varchar(255)"""),
    sql("p2p_preheat_policy: new column scope",
        "ALTER TABLE p2p_preheat_policy ADD COLUMN IF NOT EXISTS scope varchar(255)"),
))

STEP = ReleaseStep(
    "2.12.0", (V150,),
    harbor_db=(HarborDb("2.12.0", 15, upgrades_from=14),),
    markers=((150, (has_column("robot", "creator_ref"), has_column("p2p_preheat_policy", "scope"))),),
)
