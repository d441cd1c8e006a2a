"""The backup step: pg_dump, harbor.yml, common/config and the data volume's small state,
then restored into a scratch cluster to prove it.

A complete backup already in the folder is never deleted nor written over: it may be the
only way back to the release the installation started from. The step adopts it — after
verifying it — only when it holds the database as it is now (same schema and data versions,
same row counts: a run whose journal was lost before it changed anything); otherwise it
refuses. Only a backup this tool left unfinished (``backup.incomplete``) is started over
(by create_backup).
"""
from __future__ import annotations

from pathlib import Path

from ...backup import INCOMPLETE, backup_state, create_backup, read_manifest, verify_backup
from ...errors import HarborUpgradeError, InvalidInput, UnsafeState
from ...journal import sha256_file
from ...postgres.tools import Conn, table_counts
from ...private import write_private
from ..context import Context, StepOutcome
from ..options import BACKUP_SUBDIR


def _summary(manifest, how: str) -> str:
    return (f"{sum(manifest.table_counts.values()):,} rows in {len(manifest.table_counts)} tables, "
            f"{len(manifest.files)} files; {how}")


def _adopt(ctx: Context, to: Path) -> StepOutcome:
    """Use the complete backup found in the folder, if it holds the database as it is now."""
    ctx.progress.note(f"  {to} holds a complete backup the journal does not record: verifying it before "
                      "anything else (it is kept whatever happens)")
    keep = (f"{to} is kept untouched; if it is the backup of an earlier run, it is that run's rollback point "
            f"(harbor-upgrade rollback --backup-dir {ctx.backup_dir}); to back up and upgrade the database as it is "
            "now, run again with a new, empty --backup-dir")
    checked = verify_backup(to)
    if not checked.ok:
        raise UnsafeState(f"{to} holds a backup that fails verification: " + "; ".join(checked.problems[:5]),
                          reference="backup-not-adopted", hint=keep)
    manifest = read_manifest(to)
    db = ctx.inst.database
    now = (db.schema_version, db.data_version) if db else (None, None)
    held = (manifest.schema_version, manifest.data_version)
    if now != held:
        raise UnsafeState(f"the database is at schema {now[0]} (data version {now[1]}) but the backup in {to} holds "
                          f"schema {held[0]} (data version {held[1]}, Harbor {manifest.harbor_version}): it is not a "
                          "backup of the database as it is now, and this run will not replace it",
                          reference="backup-not-adopted", hint=keep)
    with Conn.parse(ctx.dsn).connect() as c:
        counts = table_counts(c)
    held_counts = manifest.table_counts
    differ = sorted(t for t in set(counts) | set(held_counts) if counts.get(t) != held_counts.get(t))
    if differ:
        raise UnsafeState(f"the database changed since the backup in {to} was taken (row counts differ in "
                          f"{', '.join(differ[:10])})", reference="backup-not-adopted", hint=keep)
    return StepOutcome(_summary(manifest, "a verified backup of this very database found in the folder, adopted"),
                       changed={"backup": str(to), "adopted": True},
                       checksums={"manifest.json": sha256_file(to / "manifest.json")})


def step_backup(ctx: Context) -> StepOutcome:
    to = ctx.backup_dir / BACKUP_SUBDIR
    state = backup_state(to)
    if state == "complete":
        return _adopt(ctx, to)
    if state == "foreign":
        raise InvalidInput(f"{to} holds files that are not a backup of this tool; they are not touched",
                          reference="backup-exists", hint="move them away or choose another --backup-dir")
    dv = Path(ctx.inst.data_volume)
    manifest = create_backup(ctx.dsn, ctx.inst.harbor_dir, to, data_volume=dv if dv.is_dir() else None,
                             jobs=min(ctx.opts.jobs, 4), progress=ctx.progress.note)
    checked = verify_backup(to)
    if not checked.ok:
        write_private(to / INCOMPLETE, "this backup failed its verification: the next run starts it over\n")
        raise HarborUpgradeError(f"the backup in {to} does not restore cleanly: " + "; ".join(checked.problems[:5]),
                                 reference="backup-unverified", hint="check free space and PostgreSQL tools, "
                                 "then run again (the backup starts over)")
    return StepOutcome(_summary(manifest, "restored into a scratch cluster and checked"),
                       changed={"backup": str(to)},
                       checksums={"manifest.json": sha256_file(to / "manifest.json")})
