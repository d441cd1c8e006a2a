"""The backup step: pg_dump, harbor.yml, common/config and the data volume's small state,
then restored into a scratch cluster to prove it."""
from __future__ import annotations

import shutil
from pathlib import Path

from ...backup import create_backup, verify_backup
from ...errors import HarborUpgradeError
from ...journal import sha256_file
from ..context import Context
from ..options import BACKUP_SUBDIR


def step_backup(ctx: Context) -> dict:
    to = ctx.backup_dir / BACKUP_SUBDIR
    if to.exists():
        shutil.rmtree(to)  # a backup cut short by a crash: start it over
    dv = Path(ctx.inst.data_volume)
    manifest = create_backup(ctx.dsn, ctx.inst.harbor_dir, to, data_volume=dv if dv.is_dir() else None,
                             jobs=min(ctx.opts.jobs, 4), progress=ctx.progress.note)
    checked = verify_backup(to)
    if not checked.ok:
        raise HarborUpgradeError(f"the backup in {to} does not restore cleanly: " + "; ".join(checked.problems[:5]),
                                 reference="backup-unverified", hint="check free space and PostgreSQL tools, "
                                 "then run again (the backup starts over)")
    return {"summary": f"{sum(manifest.table_counts.values()):,} rows in {len(manifest.table_counts)} tables, "
                       f"{len(manifest.files)} files; restored into a scratch cluster and checked",
            "changed": {"backup": str(to)},
            "checksums": {"manifest.json": sha256_file(to / "manifest.json")}}
