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
``preflight``, ``context`` (a Step, what it gets and what it gives), ``steps/`` (one module
per step; ``RUN_STEPS`` in their order), ``run`` (the lock, the journal, the loop) and
``rollback`` (verify and roll back on their own). Steps call the runners (config, db,
artifacts, postgres, backup, verify); nothing here runs SQL or pg_ctl. What the package
exports below is its API for the CLI, the demo and the tests.
"""
from __future__ import annotations

from .context import Context, Step, StepOutcome, open_installation_storage
from .lock import InstallationLock, RunLock
from .options import BACKUP_SUBDIR, ENGINE_MODES, KNOWN_MISSING, Options, start_release
from .plan import hops, next_steps, plan, step_plan
from .preflight import (
                        DB_UID,
                        HARBOR_OWNED,
                        HARBOR_UID,
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
                        preflight,
)
from .rollback import rollback, verify_report
from .run import run
from .steps import RUN_STEPS, steps_for
from .steps.artifacts import step_artifacts
from .steps.backup import step_backup
from .steps.config import step_config
from .steps.database import step_database
from .steps.engine import engine_new_datadir, step_engine
from .steps.scanner import step_scanner
from .steps.verify import step_verify

__all__ = [
    "BACKUP_SUBDIR", "DB_UID", "ENGINE_MODES", "HARBOR_OWNED", "HARBOR_UID", "KNOWN_MISSING", "RUN_STEPS",
    "Context", "InstallationLock", "Options", "RunLock", "Step", "StepOutcome",
    "check_clair", "check_dirty", "check_disk", "check_engine", "check_internal_tls", "check_lint", "check_owners",
    "check_start", "check_stopped", "check_storage", "check_versions_agree", "engine_new_datadir", "hops",
    "next_steps", "open_installation_storage", "plan", "preflight", "rollback", "run", "start_release",
    "step_artifacts", "step_backup", "step_config", "step_database", "step_engine", "step_plan", "step_scanner",
    "step_verify", "steps_for", "verify_report",
]
