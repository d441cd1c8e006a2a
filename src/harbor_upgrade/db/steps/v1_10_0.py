"""Harbor 1.10 (schema 15): the oldest database the tool upgrades.

Its files 0001 ... 0015 are not applied here: a database below 15 is refused (upgrade
to 1.10 first with Harbor's own migrator). The module declares what a 1.10 schema
looks like, for ``db repair``, and the harbor-db image of 1.10.
"""
from __future__ import annotations

from ..probes import has_column, has_table
from .base import HarborDb, ReleaseStep

STEP = ReleaseStep(
    "1.10.0", (),
    harbor_db=(HarborDb("1.10.0", 9),),
    baseline=15,
    markers=((15, (has_table("access_log"), has_column("artifact", "tag"), has_column("artifact", "kind"))),),
)
