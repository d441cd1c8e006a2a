"""What a step is, what it gets and what it gives: a ``Step`` (name, text, run) gets a
``Context`` (the options, the installation, the journal, the backup folder, the progress
reporter) and returns a ``StepOutcome`` (summary, what changed, checksums of what it
wrote), which the journal records."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..installation import Installation
from ..journal import Journal
from ..progress import Progress
from ..registry import Storage
from ..registry import open_storage as open_spec
from ..verify import ServedPairs
from .options import Options


def open_installation_storage(inst: Installation) -> Storage:
    """The registry storage, with harbor.yml's own S3 keys when it names the bucket (else the
    usual AWS environment)."""
    keys = inst.s3_keys if inst.storage_kind == "s3" else None
    return open_spec(inst.storage, s3_endpoint=inst.s3_endpoint, s3_region=inst.s3_region,
                     s3_access_key=keys[0] if keys else None, s3_secret_key=keys[1] if keys else None)


@dataclass
class Context:
    opts: Options
    inst: Installation
    journal: Journal
    backup_dir: Path
    progress: Progress
    outcome: dict = field(default_factory=dict)    # per-step results the report shows
    served_at_start: ServedPairs | None = None      # the census of this process: what storage served

    @property
    def dsn(self) -> str:
        # a Context is made by run_on after every check passed: check_stopped fails without a database
        assert self.inst.dsn is not None
        return self.inst.dsn


@dataclass(frozen=True)
class StepOutcome:
    summary: str
    changed: dict = field(default_factory=dict)
    checksums: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """What the journal records with the step's 'done' (and the report shows)."""
        d = {"summary": self.summary, "changed": self.changed}
        if self.checksums:
            d["checksums"] = self.checksums
        return d


def always(_opts: Options) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    """One step of a run: its journal name, what it does (plan and progress), and its runner;
    ``asked`` says whether the options ask for it (the engine step only with --engine-bindir)."""
    name: str
    text: str
    run: Callable[[Context], StepOutcome]
    asked: Callable[[Options], bool] = always
