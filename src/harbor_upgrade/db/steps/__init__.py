"""The release steps of the database, oldest first."""
from __future__ import annotations

from . import v2_0_0, v2_1_0, v2_2_0, v2_3_0, v2_4_0
from .base import ReleaseStep, SchemaFile, Statement

STEPS: tuple[ReleaseStep, ...] = (v2_0_0.STEP, v2_1_0.STEP, v2_2_0.STEP, v2_3_0.STEP, v2_4_0.STEP)

__all__ = ["STEPS", "ReleaseStep", "SchemaFile", "Statement"]
