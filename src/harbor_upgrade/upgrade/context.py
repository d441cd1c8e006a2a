"""What every step gets: the options, the installation, the journal, the backup folder,
the progress reporter, and the installation's registry storage."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..installation import Installation
from ..journal import Journal
from ..registry import Storage
from ..registry import open_storage as open_spec
from ..report import ProgressReporter
from .options import Options


def open_storage(inst: Installation) -> Storage:
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
    progress: ProgressReporter
    outcome: dict = field(default_factory=dict)    # per-step results the report shows

    @property
    def dsn(self) -> str:
        return self.inst.dsn


StepFn = Callable[[Context], dict]
