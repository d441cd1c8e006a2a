"""The verify step: counts against the backup's and the invariants of the target."""
from __future__ import annotations

from ...backup import read_manifest
from ...errors import HarborUpgradeError
from ...results import WARN
from ...verify import load_known_missing, verify
from ..context import Context, StepOutcome, open_installation_storage
from ..options import BACKUP_SUBDIR, KNOWN_MISSING


def step_verify(ctx: Context) -> StepOutcome:
    manifest = read_manifest(ctx.backup_dir / BACKUP_SUBDIR)
    storage = open_installation_storage(ctx.inst)
    try:
        result = verify(ctx.dsn, storage, manifest.table_counts, load_known_missing(ctx.backup_dir / KNOWN_MISSING),
                        target=ctx.opts.target, served_at_start=ctx.served_at_start)
    finally:
        storage.close()
    ctx.outcome["verify"] = result.to_dict()
    if not result.ok:
        raise HarborUpgradeError("verification failed: " + "; ".join(result.failures),
                                 reference="verify-failed",
                                 hint=f"harbor-upgrade verify --dsn DSN --backup-dir {ctx.backup_dir} shows the "
                                      "details; to go back: harbor-upgrade rollback")
    warnings = sum(1 for c in result.checks if c.status == WARN)
    return StepOutcome(f"{len(result.counts)} counts and {len(result.checks)} checks pass"
                       + (f" ({warnings} with warnings)" if warnings else ""))
