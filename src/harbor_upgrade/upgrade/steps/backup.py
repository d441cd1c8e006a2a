"""The backup step: the database, harbor.yml, common/config and the data volume's small state,
proved before anything else happens.

The database is backed up one of two ways (the report says which):

* a copy of its data folder, when the DSN's server runs from the installation's own cluster
  (data_volume/database) as a process of this machine the run can stop: the server is stopped
  clean, the folder copied (parallel, sha256 in the same pass), the server started again with
  the same port and socket, and the copy proved by a throwaway server on its twin (written
  from the same buffers whose sha256 the manifest records) whose census (schema version, row
  counts) must equal the database's read just before the stop. Seconds where a dump takes
  half a minute (bench/bench_backup.py). After ``run --prepare`` (``prepare_datadir_copy``:
  the folder copied while its server ran, ``backup.prepared``) the copy is finished instead:
  every file read, only the MiB that differ from its record written again
  (bench/bench_window_backup.py).
* a pg_dump otherwise (an external database, a server in a container, a data folder holding
  symlinks or with no server binaries of its major here), restored into a scratch cluster to
  prove it.

A run killed while the server is stopped for the copy leaves a ``backup-stopped`` record:
the next run starts the server again first (``restore_backup_server``), then starts the
backup over.

A complete backup already in the folder is never deleted nor written over: it may be the
only way back to the release the installation started from. The step adopts it — after
verifying it — only when it holds the database as it is now (same schema and data versions,
same row counts: a run whose journal was lost before it changed anything); otherwise it
refuses. Only a backup this tool left unfinished (``backup.incomplete``) is started over
(by create_backup).
"""
from __future__ import annotations

import time
from pathlib import Path

from ...backup import (
    INCOMPLETE,
    Census,
    backup_state,
    create_backup,
    create_datadir_backup,
    read_manifest,
    verify_backup,
)
from ...backup.datadir import binaries_for, local_postmaster, scan_datadir
from ...backup.prepared import prepare_datadir, remove_prepared
from ...db.identity import served_cluster
from ...errors import HarborUpgradeError, InvalidInput, UnsafeState
from ...installation import Installation
from ...journal import Journal, sha256_file
from ...postgres.layout import harbor_cluster
from ...postgres.server import Server
from ...postgres.tools import Conn, table_counts
from ...private import write_private
from ...progress import Note
from ...results import StepResult
from ..context import Context, StepOutcome
from ..lock import RunLock
from ..options import BACKUP_SUBDIR


def _summary(manifest, how: str) -> str:
    kind = "data folder copy" if manifest.kind == "datadir" else "pg_dump"
    return (f"{kind}: {sum(manifest.table_counts.values()):,} rows in {len(manifest.table_counts)} tables, "
            f"{len(manifest.files)} files; {how}")


def datadir_choice(ctx: Context) -> tuple[Server, dict[str, str]] | str:
    """(the server to stop, its listen settings) when the database may be backed up as a copy
    of its data folder; else why not (the dump is taken)."""
    return datadir_choice_of(ctx.inst, ctx.dsn)


def datadir_choice_of(inst: Installation, dsn: str) -> tuple[Server, dict[str, str]] | str:
    """datadir_choice for an installation and the DSN of its database (run --prepare asks it too)."""
    db_dir = Path(inst.data_volume) / "database"
    if not db_dir.is_dir():
        return f"{db_dir} is not on this machine"
    try:
        cluster = harbor_cluster(db_dir)
        binaries = binaries_for(cluster.path)
        server = Server(binaries.bindir, cluster.path)
        if not server.running() or not local_postmaster(cluster.path):
            return f"the server of {cluster.path} is not a process of this machine the run can stop (a container?)"
        sysid, listen = served_cluster(dsn)
        if sysid != server.system_id():
            return f"the DSN's server does not run from {cluster.path}"
        _entries, other = scan_datadir(cluster.path, live=True)   # its server runs
    except HarborUpgradeError as e:
        return f"{db_dir}: {e.message}"
    if other:
        return f"{cluster.path} holds symlinks or other entries ({', '.join(other[:3])}), not followed"
    return server, listen


def restore_backup_server(backup_dir: Path) -> str | None:
    """A run killed while the backup step had the server stopped: serve the database again as
    the DSN expects (the step then starts the backup over)."""
    if not (backup_dir / "journal.jsonl").exists():
        return None
    with RunLock(backup_dir):
        journal = Journal.open(backup_dir)
        stopped = journal.last("backup-stopped")
        if stopped is None or journal.last("rollback"):
            return None
        served = journal.last("backup-served")
        if served is not None and served["seq"] > stopped["seq"]:
            return None
        server = Server(stopped["bindir"], Path(stopped["datadir"]))
        how = server.ensure_serving(stopped["listen"])
        journal.write("backup-served", "backup", datadir=stopped["datadir"], how=how)
        return stopped["datadir"]


def _datadir_backup(ctx: Context, to: Path, server: Server, listen: dict[str, str]) -> StepOutcome:
    """Stop the server, copy its folder, start it again; the copy proved against the census
    read just before the stop."""
    say = ctx.progress.note
    conn = Conn.parse(ctx.dsn)
    with conn.connect() as c:
        census = Census.read(c)
        user = c.info.user
    dv = Path(ctx.inst.data_volume)
    say(f"  stopping the PostgreSQL server of {server.datadir} to copy its data folder")
    ctx.journal.write("backup-stopped", "backup", datadir=str(server.datadir), bindir=str(server.bindir),
                      listen=listen)
    server.stop()
    stats: dict = {}
    try:
        manifest = create_datadir_backup(server.datadir, ctx.inst.harbor_dir, to,
                                         data_volume=dv if dv.is_dir() else None, database=conn.dbname,
                                         db_user=user, expect=census,
                                         jobs=max(2, min(ctx.opts.jobs, 8)), bindir=server.bindir,
                                         progress=lambda m: say(f"  {m}"), prepared_in=ctx.backup_dir,
                                         stats=stats)
    finally:
        how = server.ensure_serving(listen)
        ctx.journal.write("backup-served", "backup", datadir=str(server.datadir), how=how)
        say(f"  the server of {server.datadir}: {how}")
    prepared = stats.get("prepared")
    copied = (f"the copy run --prepare took while it served finished ({prepared['copied']:,} of {prepared['files']:,} "
              f"files copied again, {prepared['removed']:,} entries removed)" if prepared else "copied")
    return StepOutcome(_summary(manifest, f"the server was stopped, the data folder {copied}, the server started "
                                          "again; proved by a throwaway server on its twin copy (schema version and "
                                          "row counts equal)"),
                       changed={"backup": str(to), "kind": "datadir", "datadir": str(server.datadir), **stats},
                       checksums={"manifest.json": sha256_file(to / "manifest.json")})


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
        if remove_prepared(ctx.backup_dir):
            ctx.progress.note("  removed the data folder copy run --prepare took: a complete backup is there")
        return _adopt(ctx, to)
    if state == "foreign":
        raise InvalidInput(f"{to} holds files that are not a backup of this tool; they are not touched",
                          reference="backup-exists", hint="move them away or choose another --backup-dir")
    choice = datadir_choice(ctx)
    if not isinstance(choice, str):
        return _datadir_backup(ctx, to, *choice)
    ctx.progress.note(f"  backing up the database with pg_dump: {choice}")
    if remove_prepared(ctx.backup_dir):
        ctx.progress.note("  removed the data folder copy run --prepare took: the backup is a dump")
    dv = Path(ctx.inst.data_volume)
    manifest = create_backup(ctx.dsn, ctx.inst.harbor_dir, to, data_volume=dv if dv.is_dir() else None,
                             jobs=min(ctx.opts.jobs, 4), progress=ctx.progress.note)
    checked = verify_backup(to)
    if not checked.ok:
        write_private(to / INCOMPLETE, "this backup failed its verification: the next run starts it over\n")
        raise HarborUpgradeError(f"the backup in {to} does not restore cleanly: " + "; ".join(checked.problems[:5]),
                                 reference="backup-unverified", hint="check free space and PostgreSQL tools, "
                                 "then run again (the backup starts over)")
    return StepOutcome(_summary(manifest, f"restored into a scratch cluster and checked (no data folder copy: "
                                          f"{choice})"),
                       changed={"backup": str(to), "kind": "dump"},
                       checksums={"manifest.json": sha256_file(to / "manifest.json")})


def prepare_datadir_copy(inst: Installation, backup_dir: Path, jobs: int, note: Note) -> StepResult:
    """run --prepare's copy of the data folder while its server runs (``backup.prepared``), when
    the window's backup will be a copy of that folder; else why not (nothing is written)."""
    t0 = time.monotonic()
    choice = datadir_choice_of(inst, inst.dsn) if inst.dsn else "no database DSN to tell its server"
    if isinstance(choice, str):
        removed = remove_prepared(backup_dir)
        return StepResult("datadir copy", True, f"not taken: the window's backup is a pg_dump ({choice})"
                          + ("; the copy an earlier run --prepare took removed" if removed else ""),
                          seconds=time.monotonic() - t0)
    server, _listen = choice
    try:
        made = prepare_datadir(server.datadir, backup_dir, max(2, min(jobs, 8)), lambda m: note(f"  {m}"),
                               controldata=server.controldata())
    except (HarborUpgradeError, OSError) as e:   # the window copies in full: nothing is lost but time
        remove_prepared(backup_dir)
        why = e.message if isinstance(e, HarborUpgradeError) else f"{e.strerror}: {e.filename}"
        return StepResult("datadir copy", True, f"not taken: {why}; the window's backup copies the data folder "
                          "in full", seconds=time.monotonic() - t0)
    return StepResult("datadir copy", True, f"{made.files:,} files ({made.bytes / 2**20:,.0f} MiB) of "
                      f"{server.datadir} copied while its server ran, with their sha256 recorded: in the window only "
                      "the files that differ are copied again", seconds=time.monotonic() - t0,
                      changed=made.to_dict())
