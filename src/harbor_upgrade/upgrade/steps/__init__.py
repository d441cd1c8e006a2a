"""The steps of a run, in their order: one ``Step`` each (its module has the runner)."""
from __future__ import annotations

from ..context import Step
from ..options import Options
from .artifacts import step_artifacts
from .backup import step_backup
from .config import step_config
from .database import step_database
from .engine import step_engine
from .scanner import step_scanner
from .verify import step_verify

RUN_STEPS: tuple[Step, ...] = (
    Step("backup", "back up the database (a copy of its data folder, its server stopped meanwhile, when the run can "
                   "stop it; else pg_dump), harbor.yml, common/config and the data volume's small state; then prove "
                   "it (a throwaway server on the copy, or a restore of the dump)", step_backup),
    Step("config", "write harbor.yml migrated to the target release next to the original (comments and order kept)",
         step_config),
    Step("engine", "upgrade the PostgreSQL cluster in data_volume/database to a new major, beside the old one "
                   "(kept), and serve the database from it", step_engine,
         asked=lambda opts: bool(opts.engine_bindir)),
    Step("database", "apply the database release steps (one transaction each)", step_database),
    Step("artifacts", "read every manifest from registry storage and fill in the artifact metadata", step_artifacts),
    Step("scanner", "remove the Clair registration and its reports; register Trivy and make it the default",
         step_scanner),
    Step("verify", "compare counts with the backup and check the invariants", step_verify),
)
# run --prepare's steps, before the window (not steps of the journaled run)
PREPARE_DATADIR_TEXT = ("copy the database's data folder while its server runs, recording the sha256 of every file "
                        "(the window's backup reads every file again but copies only those that changed), when the "
                        "window's backup is a copy of that folder")
PREFETCH_TEXT = ("read every repository's listing and manifests while Harbor serves, abstract them and record them "
                 "with each repository's listing fingerprint (the window reads again only what changed)")
# What a run recorded before the journal named its steps took: the steps asked for by default.
DEFAULT_STEP_NAMES = [s.name for s in RUN_STEPS if s.asked(Options(""))]


def steps_for(opts: Options) -> tuple[Step, ...]:
    """The steps a run with these options takes, in order."""
    return tuple(s for s in RUN_STEPS if s.asked(opts))


def step_names(opts: Options) -> list[str]:
    return [s.name for s in steps_for(opts)]
