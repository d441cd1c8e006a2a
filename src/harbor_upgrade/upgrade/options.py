"""What a run is asked to do, and the facts every part of the upgrade shares: where the
backup and the pre-existing gaps go inside the backup folder, and the release the upgrade
starts from."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import versions
from ..installation import Installation
from ..journal import Journal
from ..versions import release_line

ENGINE_MODES = ("copy", "link", "dump")
BACKUP_SUBDIR = "backup"
KNOWN_MISSING = "missing-before.json"


@dataclass
class Options:
    """What plan and run are asked to do (the CLI builds it by keywords)."""
    harbor_yml: str
    backup_dir: str | None = None
    dsn: str | None = None
    storage: str | None = None
    config_out: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    jobs: int = 4
    yes: bool = False
    dry_run: bool = False
    engine_bindir: str | None = None        # asks for the engine step: the new major's bin folder
    engine_mode: str = "copy"
    engine_old_bindir: str | None = None    # default: found by the old cluster's major
    stop_harbor: bool = False               # a running Compose stack is stopped first (else run refuses)
    to: str | None = None                   # the target release (default: the newest the tool knows)
    drop_chartmuseum: bool = False          # crossing 2.8 with charts in ChartMuseum's storage is confirmed
    prepare: bool = False                   # run --prepare: the part that needs no stop (artifact prefetch)

    @property
    def target(self) -> str:
        """The release line the run goes to: ``--to`` (a release such as 2.10 or 2.10.0), else
        the newest the tool knows; UnsupportedVersion for anything else."""
        if self.to is None:
            return versions.TARGET
        return release_line(target_text(self.to), where="--to: ")

    def output_config(self, inst: Installation) -> Path:
        return Path(self.config_out) if self.config_out else Path(inst.harbor_dir) / f"harbor-{self.target}.yml"


def target_text(text: str) -> str:
    """'2.10' -> '2.10.0': a release line may be given without its patch."""
    return f"{text}.0" if re.fullmatch(r"\d+\.\d+", text.strip()) else text


def start_release(inst: Installation) -> str | None:
    """The release the upgrade starts from: the database's when known, else harbor.yml's."""
    if inst.database and inst.database.release:
        return inst.database.release
    return inst.release


def recorded_engine(backup_dir: Path | None) -> dict | None:
    """The engine step's plan as a run on this backup folder recorded it."""
    if backup_dir is None or not (backup_dir / "journal.jsonl").exists():
        return None
    return Journal.read(backup_dir).last("engine-plan")
