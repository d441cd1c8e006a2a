"""The steps of a run, one module each; STEP_FUNCS maps a step's name to its function."""
from __future__ import annotations

from ..context import StepFn
from .artifacts import step_artifacts
from .backup import step_backup
from .config import step_config
from .database import step_database
from .engine import step_engine
from .scanner import step_scanner
from .verify import step_verify

STEP_FUNCS: dict[str, StepFn] = {
    "backup": step_backup, "config": step_config, "engine": step_engine, "database": step_database,
    "artifacts": step_artifacts, "scanner": step_scanner, "verify": step_verify,
}
