"""The whole upgrade in one command: plan, preflight, the journaled run, resume.

``plan`` describes the installation, the release hops to 2.4.0, every step and the
preflight checks (pass / warn / fail) and writes nothing. ``run`` takes the steps in
order — backup, config, engine (when asked), database, artifacts, scanner, verify —
recording each in the journal inside the backup folder; run again after a crash or a
kill, it skips the steps the journal shows done and continues at the first unfinished
one. Every step is safe to repeat: the backup starts over in an empty folder, the
config is written again from the untouched original, the engine upgrade redoes a
half-made new cluster (the old one is untouched until ``pg-upgrade --cleanup``) and
reuses a finished one, each database release step is one transaction, the artifact
backfill resumes from its checkpoints, and the scanner step is one transaction.

The package follows those parts: ``options`` (what a run is asked to do), ``plan``,
``preflight``, ``context`` (what a step gets), ``steps/`` (one module per step), ``run``
(the lock, the journal, the loop) and ``rollback`` (verify and roll back on their own).
"""
from __future__ import annotations

from .context import Context, StepFn, open_storage
from .lock import LOCK_FILE, InstallationLock, RunLock
from .options import (
                      BACKUP_SUBDIR,
                      ENGINE_MODES,
                      KNOWN_MISSING,
                      STEP_TEXT,
                      STEPS,
                      Options,
                      recorded_engine,
                      start_release,
)
from .plan import engine_args, engine_next_steps, hops, next_steps, plan, planned_engine, step_plan
from .preflight import (
                      DB_UID,
                      HARBOR_OWNED,
                      HARBOR_UID,
                      certificate_has_san,
                      check_clair,
                      check_dirty,
                      check_disk,
                      check_engine,
                      check_internal_tls,
                      check_lint,
                      check_owners,
                      check_start,
                      check_stopped,
                      check_storage,
                      check_versions_agree,
                      free_bytes,
                      preflight,
)
from .rollback import backup_folder, rollback, verify_report
from .run import confirm_default, record_missing_before, restore_engine_server, run
from .steps import STEP_FUNCS
from .steps.artifacts import step_artifacts
from .steps.backup import step_backup
from .steps.config import step_config
from .steps.database import step_database
from .steps.engine import (
                      engine_new_datadir,
                      engine_state,
                      engine_target,
                      old_cluster_usable,
                      remove_half_made,
                      step_engine,
)
from .steps.scanner import step_scanner
from .steps.verify import step_verify

__all__ = [
    "backup_folder", "BACKUP_SUBDIR", "certificate_has_san", "check_clair", "check_dirty", "check_disk",
    "check_engine", "check_internal_tls", "check_lint", "check_owners", "check_start", "check_stopped",
    "check_storage", "check_versions_agree", "confirm_default", "Context", "DB_UID", "engine_args", "ENGINE_MODES",
    "engine_new_datadir", "engine_next_steps", "engine_state", "engine_target", "free_bytes", "HARBOR_OWNED",
    "HARBOR_UID", "hops", "KNOWN_MISSING", "LOCK_FILE", "next_steps", "old_cluster_usable", "open_storage",
    "Options", "plan", "planned_engine", "preflight", "record_missing_before", "recorded_engine",
    "remove_half_made", "restore_engine_server", "rollback", "run", "RunLock", "InstallationLock", "start_release",
    "step_artifacts",
    "step_backup", "step_config", "step_database", "step_engine", "STEP_FUNCS", "step_plan", "step_scanner",
    "STEP_TEXT", "step_verify", "StepFn", "STEPS", "verify_report",
]
