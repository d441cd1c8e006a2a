"""Recognise which schema version a database really has, to clear a dirty flag safely.

Each known version is recognised by the schema objects its upstream file adds or
removes: the probes each release step declares beside its files
(``ReleaseStep.markers``). Data-only files (0031, 0041, 0061 ...) look like the file
before them; repair then picks the lower one, whose next file is safe to apply again.
"""
from __future__ import annotations

import psycopg

from .probes import Probe
from .steps import STEPS


def markers() -> tuple[tuple[int, tuple[Probe, ...]], ...]:
    """What each file leaves in the schema, every known version oldest first."""
    return tuple((v, step.probes(v)) for step in STEPS for v in step.schema_versions)


def matching_versions(conn: psycopg.Connection) -> list[int]:
    """The versions whose schema this database has: the newest schema-changing file whose
    markers all hold, followed by the data-only files after it. Empty: no known schema."""
    known = markers()
    for i in range(len(known) - 1, -1, -1):
        v, probes = known[i]
        if probes and all(p(conn) for p in probes):
            out = [v]
            for w, later in known[i + 1:]:
                if later:
                    break
                out.append(w)
            return out
    return []
