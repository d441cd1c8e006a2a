"""Artifact metadata straight from registry storage (``harbor-upgrade artifacts``).

``backfill`` fills every artifact row of a 2.4.0 database with what Harbor 2.4 stores
when that artifact is pushed (the abstraction in ``abstraction``), creates the children
of manifest lists and indexes with their references, checkpoints as it goes, and sets
the data version so harbor-core does not walk the registry again.
"""
from __future__ import annotations

from ..progress import Progress
from .abstraction import Artifact, Failure, Reference, RepositoryAbstractor
from .backfill import BackfillReport, Problem, backfill

__all__ = ["Artifact", "BackfillReport", "Failure", "Problem", "Progress", "Reference",
           "RepositoryAbstractor", "backfill"]
