"""The database backed up as a copy of its stopped cluster's data folder (Harbor's guide:
``cp -r /data/database``), proved by a throwaway server started on a copy of that copy.

Taking it: the cluster must be shut down clean (no ``postmaster.pid``, control data "shut
down") before and after the copy, with the same checkpoint: nothing ran on it meanwhile.
Its folders and regular files are copied into ``files/datadir/`` in parallel threads, each
file's sha256 computed in the same pass, owner (when root), mode and times kept. A data
folder holding anything else — a symlink (``pg_wal`` or a tablespace kept elsewhere), a
socket — is not copied this way: a restore would have to write outside the folder (the run
takes a dump instead; ``manifest.entry_problems`` refuses such an entry in a manifest).

Proving it: a server writes into its folder, and the backup must stay byte for byte what its
manifest says, so the server runs on a twin in a recorded scratch folder: when the backup is
taken, written from the same buffers as the backup's files (whose sha256 the manifest
records); when a backup is verified later, copied from the backup's files and compared with
their checksums on the way. A server of the cluster's major is started
there as a non-root user, on a unix socket in a private folder, with no TCP listener, no
archiving and its own pg_hba (local trust); the database must answer, the ledger must read
the recorded schema and data version, and every table the recorded row count.

Restoring it: never while a server runs on the folder; the backup's files are copied into a
new folder beside it and compared with their checksums, only then the folder is renamed
away (kept) and the copy renamed into its place.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from ..db import ledger
from ..errors import ExternalFailure, HarborUpgradeError, UnsafeState, ValidationFailed
from ..postgres.cluster import PgBinaries, find_binaries
from ..postgres.layout import read_pg_version
from ..postgres.scratch import scratch_folder
from ..postgres.server import Server
from ..postgres.tools import server_version, table_counts
from .files import SyncStats, copy_checked, copy_tree, scan_tree, sync_tree
from .manifest import FILES_DIR, BackupManifest, FileEntry

if TYPE_CHECKING:   # prepared reads this module's recycled_wal
    from .prepared import Prepared

AREA = "datadir"
_WAL_NAME = re.compile(r"[0-9A-F]{24}")
CLEAN_STATES = ("shut down", "shut down in recovery")
# What the throwaway server is started with, over the copy's own postgresql.conf: nothing of
# the installation's archiving, replication, TLS files or TCP reaches it.
SCRATCH_SETTINGS = {"listen_addresses": "", "archive_mode": "off", "ssl": "off", "fsync": "off",
                    "synchronous_commit": "off", "full_page_writes": "off", "max_wal_senders": "0",
                    "logging_collector": "off", "shared_preload_libraries": ""}


@dataclass(frozen=True)
class Census:
    """What a database holds, for comparing one copy with another."""
    pg_version: str
    pg_major: int
    schema_version: int | None
    dirty: bool | None
    data_version: int | None
    table_counts: dict[str, int]

    @classmethod
    def read(cls, conn: psycopg.Connection) -> Census:
        version, major = server_version(conn)
        state = ledger.read_state(conn)
        if state.version is None:
            return cls(version, major, None, None, None, table_counts(conn))
        return cls(version, major, state.version, state.dirty, state.data_version, table_counts(conn))

    def differences(self, other: Census, mine: str, theirs: str) -> list[str]:
        out = []
        if self.pg_major != other.pg_major:
            out.append(f"PostgreSQL {self.pg_major} in {mine}, {other.pg_major} in {theirs}")
        for what in ("schema_version", "dirty", "data_version"):
            a, b = getattr(self, what), getattr(other, what)
            if a != b:
                out.append(f"{what} {a} in {mine}, {b} in {theirs}")
        for t in sorted(set(self.table_counts) | set(other.table_counts)):
            a, b = self.table_counts.get(t), other.table_counts.get(t)
            if a != b:
                out.append(f"table {t}: {a} rows in {mine}, {b} in {theirs}")
        return out


def binaries_for(datadir: Path, bindir: str | os.PathLike | None = None) -> PgBinaries:
    version = read_pg_version(datadir)
    if version is None:
        raise UnsafeState(f"{datadir} holds no PostgreSQL cluster (no PG_VERSION)", reference="datadir-empty")
    return find_binaries(major=int(version.split(".")[0]), bindir=bindir)


def shutdown_state(server: Server) -> dict[str, str]:
    """The control data of a cluster shut down clean; refused while a server runs on it (or
    after one crashed: the copy would need crash recovery)."""
    if os.path.lexists(server.datadir / "postmaster.pid"):
        raise UnsafeState(f"{server.datadir} has a postmaster.pid: a PostgreSQL server runs on it (or crashed)",
                          reference="postgres-running",
                          hint="stop that server (Harbor: docker compose down) and run again")
    data = server.controldata()
    state = data.get("Database cluster state", "?")
    if state not in CLEAN_STATES:
        raise UnsafeState(f"{server.datadir} was not shut down clean (cluster state: {state})",
                          reference="postgres-running",
                          hint="start its server once and stop it (pg_ctl stop -m fast), then run again")
    return data


def scan_datadir(datadir: Path, live: bool = False) -> tuple[list[FileEntry], list[str]]:
    """The data folder's folders and files, and what is neither (symlinks, sockets ...); live:
    its server runs (what vanishes meanwhile is left out)."""
    return scan_tree(datadir, AREA, live=live)


def recycled_wal(entries: list[FileEntry], controldata: dict[str, str]) -> list[FileEntry]:
    """WAL segments named past the one holding the shutdown checkpoint: segments recycled
    for reuse (renamed old ones), holding nothing the cluster needs after a clean shutdown.
    Older segments are kept: a checkpoint left them for a reason (wal_keep_size, a slot,
    archiving)."""
    redo = controldata.get("Latest checkpoint's REDO WAL file", "")
    if not _WAL_NAME.fullmatch(redo):
        return []
    return [e for e in entries if e.type == "file" and e.parts[:1] in (["pg_wal"], ["pg_xlog"])
            and len(e.parts) == 2 and _WAL_NAME.fullmatch(e.parts[1]) and e.parts[1][8:] > redo[8:]
            and e.parts[1][:8] == redo[:8]]


def _stopped_entries(datadir: Path, before: dict[str, str], skipped: list[dict[str, str]]
                     ) -> tuple[list[FileEntry], list[FileEntry]]:
    """(entries to copy, recycled WAL segments left out) of a clean-stopped cluster's folder;
    refused when it holds anything but folders and regular files."""
    entries, other = scan_datadir(datadir)
    recycled = recycled_wal(entries, before)
    if recycled:
        gone = {e.path for e in recycled}
        entries = [e for e in entries if e.path not in gone]
        skipped += [{"path": f"{AREA}/{e.path}", "reason": "a recycled WAL segment past the shutdown checkpoint: "
                     "no data the cluster needs"} for e in recycled]
    if other:
        raise UnsafeState(f"{datadir} holds entries that are neither folders nor regular files: "
                          + ", ".join(other[:10]) + " (a pg_wal or tablespace symlink is not followed)",
                          reference="datadir-has-links",
                          hint="back it up with pg_dump instead (the backup command given the DSN)")
    return entries, recycled


def _same_checkpoint(server: Server, before: dict[str, str]) -> None:
    after = shutdown_state(server)
    if after.get("Latest checkpoint location") != before.get("Latest checkpoint location"):
        raise UnsafeState(f"a server ran on {server.datadir} while it was copied", reference="postgres-running",
                          hint="stop it (Harbor: docker compose down) and run again")


def copy_datadir(datadir: Path, dest: Path, binaries: PgBinaries, jobs: int, say: Callable[[str], None],
                 skipped: list[dict[str, str]], also: Path | None = None) -> list[FileEntry]:
    """Copy the clean-stopped cluster in datadir into dest (new), hashing in the same pass;
    recycled WAL segments are left out (listed in skipped)."""
    server = Server(binaries.bindir, datadir)
    before = shutdown_state(server)
    entries, recycled = _stopped_entries(datadir, before, skipped)
    size = sum(e.size for e in entries)
    say(f"copying {datadir} ({size / 2**20:,.0f} MiB in {len(entries):,} entries, {jobs} threads, sha256 "
        f"in the same pass; {len(recycled)} recycled WAL segments left out)")
    t0 = time.monotonic()
    copied = copy_tree(entries, datadir, dest, jobs, durable=True, also=also)
    _same_checkpoint(server, before)
    say(f"copied in {time.monotonic() - t0:.1f}s")
    return copied


def finish_prepared(prepared: Prepared, datadir: Path, dest: Path, twin: Path, binaries: PgBinaries, jobs: int,
                    say: Callable[[str], None], skipped: list[dict[str, str]]) -> tuple[list[FileEntry], SyncStats]:
    """The copy run --prepare took while the server ran (proved against its record), made
    equal to the clean-stopped cluster in datadir: moved to dest, its twin to twin, every file
    of datadir read and hashed, those that differ from the record written again into both
    from the same buffers, what is gone removed (see ``prepared``)."""
    server = Server(binaries.bindir, datadir)
    before = shutdown_state(server)
    entries, recycled = _stopped_entries(datadir, before, skipped)
    prepared.consume()
    os.rename(prepared.copy, dest)
    try:
        os.rename(prepared.twin, twin)
        twin_complete = True
    except OSError:   # another file system: the twin is written again, from the same buffers
        shutil.rmtree(prepared.twin, ignore_errors=True)
        twin.mkdir(mode=0o700)
        twin_complete = False
    size = sum(e.size for e in entries)
    say(f"finishing the copy run --prepare took of {datadir} while its server ran: every file of the stopped "
        f"folder ({size / 2**20:,.0f} MiB in {len(entries):,} entries) read and each MiB compared with the record, "
        f"those that differ copied again ({jobs} threads; {len(recycled)} recycled WAL segments left out)"
        + ("" if twin_complete else "; the twin is written again (the backup folder is on another file system "
                                    "than the scratch folder)"))
    t0 = time.monotonic()
    copied, stats = sync_tree(entries, datadir, dest, twin, prepared.files, jobs, also_complete=twin_complete)
    _same_checkpoint(server, before)
    shutil.rmtree(prepared.folder, ignore_errors=True)
    say(f"finished in {time.monotonic() - t0:.1f}s: {stats.copied:,} of {stats.files:,} files written again "
        f"({stats.bytes_copied / 2**20:,.1f} MiB of {stats.bytes_read / 2**20:,.0f}), {stats.removed:,} entries "
        "removed")
    return copied, stats


def _hba(folder: Path) -> Path:
    path = folder / "pg_hba.conf"
    path.write_text("local all all trust\n")
    return path


def serve_census(folder: Path, bindir: Path, database: str, user: str,
                 say: Callable[[str], None]) -> tuple[Census | None, list[str]]:
    """Serve the cluster copied into folder/data (a scratch folder) and read its census:
    as the copy's owner (never root), on a unix socket in a private folder, no TCP."""
    data = folder / "data"
    server = Server(bindir, data)
    owner = server.owner   # the copy's owner: never root (see server.data_owner)
    sock = folder / "socket"
    sock.mkdir(mode=0o700)
    owner.chown(sock)
    hba = _hba(folder)
    owner.chown(hba)
    (data / "postmaster.opts").unlink(missing_ok=True)
    for signal_file in ("standby.signal", "recovery.signal", "recovery.conf"):
        if (data / signal_file).exists():
            return None, [f"datadir/{signal_file}: the copy is a standby's or recovering cluster"]
    port = "5432"
    say("starting a throwaway server on the copy (unix socket only)")
    server.start({**SCRATCH_SETTINGS, "port": port, "unix_socket_directories": str(sock), "hba_file": str(hba)})
    try:
        with psycopg.connect(host=str(sock), port=port, user=user, dbname=database, autocommit=True,
                             connect_timeout=30) as conn:
            return Census.read(conn), []
    except psycopg.Error as e:
        return None, [f"the throwaway server on the copy does not answer for database {database}: "
                      f"{str(e).strip()[:500]}"]
    finally:
        server.stop()


def census_of_copy(backup_dir: Path, manifest: BackupManifest, jobs: int, say: Callable[[str], None],
                   bindir: str | os.PathLike | None = None) -> tuple[Census | None, list[str]]:
    """Copy the backup's data folder into a scratch folder (checksums compared on the way),
    serve it there and read its census; (None, problems) when the copy differs."""
    binaries = find_binaries(major=manifest.pg_major, bindir=bindir)
    entries = [e for e in manifest.files if e.area == AREA]
    with scratch_folder(binaries.bindir, f"backup verify {backup_dir}") as folder:
        say(f"copying the backup's data folder into {folder} (checksums compared on the way)")
        problems = copy_checked(entries, backup_dir / FILES_DIR / AREA, folder / "data", jobs, durable=False)
        if problems:
            return None, problems
        return serve_census(folder, binaries.bindir, manifest.database, manifest.db_user or "postgres", say)


def copy_and_prove(datadir: Path, dest: Path, binaries: PgBinaries, jobs: int, say: Callable[[str], None],
                   skipped: list[dict[str, str]], database: str, user: str, prepared: Prepared | None = None,
                   stats: dict | None = None) -> tuple[list[FileEntry], Census | None, list[str]]:
    """Copy the stopped cluster into dest and, from the same buffers, into a scratch folder
    (or finish the copy run --prepare took: ``finish_prepared``), then serve the scratch copy
    and read its census: (entries, census, problems). stats, when given, is filled with what
    the copy and the proof took."""
    stats = {} if stats is None else stats
    with scratch_folder(binaries.bindir, f"backup of {datadir}") as folder:
        t0 = time.monotonic()
        if prepared is not None:
            entries, synced = finish_prepared(prepared, datadir, dest, folder / "data", binaries, jobs, say, skipped)
            stats["prepared"] = {"files": synced.files, "copied": synced.copied, "bytes_copied": synced.bytes_copied,
                                 "removed": synced.removed}
        else:
            entries = copy_datadir(datadir, dest, binaries, jobs, say, skipped, also=folder / "data")
        stats["copy_seconds"] = round(time.monotonic() - t0, 3)
        say("proving the copy: a throwaway server on its twin (written from the same buffers, whose sha256 "
            "the manifest records) must answer with the database's census")
        t0 = time.monotonic()
        census, problems = serve_census(folder, binaries.bindir, database, user, say)
        stats["prove_seconds"] = round(time.monotonic() - t0, 3)
    return entries, census, problems


def manifest_census(manifest: BackupManifest) -> Census:
    return Census(manifest.pg_version, manifest.pg_major, manifest.schema_version, manifest.dirty,
                  manifest.data_version, manifest.table_counts)


def verify_copy(backup_dir: Path, manifest: BackupManifest, jobs: int = 2,
                say: Callable[[str], None] = lambda _m: None) -> tuple[int, list[str]]:
    """(tables checked, problems) of a throwaway server on a copy of the backup's data folder
    against the manifest's census."""
    census, problems = census_of_copy(backup_dir, manifest, jobs, say)
    if census is None:
        return 0, problems
    return len(census.table_counts), census.differences(manifest_census(manifest), "the copy", "the manifest")


# -- the server of a data folder ------------------------------------------------------------------

def local_postmaster(datadir: Path) -> bool:
    """Whether postmaster.pid names a process of this machine serving datadir (a server in a
    container shows a pid of its own namespace, which is not it)."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return False
    want = {str(datadir).encode(), os.path.realpath(datadir).encode()}
    return any(arg in want for arg in cmdline)


def stoppable_server(dsn: str) -> tuple[Server, dict[str, str]] | str:
    """(the server the DSN reaches, its listen settings) when it runs from a data folder of this
    machine as a process pg_ctl can stop; else why not."""
    from ..db.connection import connect, one
    from ..db.identity import served_cluster
    try:
        with connect(dsn) as conn:
            datadir = Path(str(one(conn.execute("SHOW data_directory"))[0]))
            major = conn.info.server_version // 10000
        _sysid, listen = served_cluster(dsn)
    except (HarborUpgradeError, psycopg.Error) as e:
        return f"the DSN's server does not tell its data folder ({getattr(e, 'message', e)})"
    if not local_postmaster(datadir):
        return f"the DSN's server ({datadir}) is not a process of this machine the tool can stop (a container?)"
    try:
        return Server(find_binaries(major=major).bindir, datadir), listen
    except HarborUpgradeError as e:
        return e.message


# -- restore ----------------------------------------------------------------------------------

def staging_of(target: Path) -> Path:
    return target.with_name(f".{target.name}.harbor-upgrade-restoring")


def restore_datadir(backup_dir: Path, manifest: BackupManifest, target: Path, jobs: int,
                    say: Callable[[str], None]) -> Path | None:
    """Put the backup's data folder at target: copied beside it and checked first, then the
    folder there renamed away (returned: kept) and the copy renamed in. Refused while a server
    runs on target."""
    if os.path.lexists(target / "postmaster.pid"):
        raise UnsafeState(f"{target} has a postmaster.pid: a PostgreSQL server runs on it; nothing was restored",
                          reference="postgres-running",
                          hint="stop it (Harbor: docker compose down; else pg_ctl stop), then run again")
    if target.is_symlink():
        raise UnsafeState(f"{target} is a symlink: the data folder is not put back through it",
                          reference="restore-unsafe-path")
    staging = staging_of(target)
    if os.path.lexists(staging):   # a restore killed before its swap
        say(f"removing {staging}, left by an interrupted restore")
        shutil.rmtree(staging)
    entries = [e for e in manifest.files if e.area == AREA]
    say(f"copying the backup's data folder into {staging} (checksums compared on the way)")
    try:
        problems = copy_checked(entries, backup_dir / FILES_DIR / AREA, staging, jobs, durable=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if problems:
        shutil.rmtree(staging, ignore_errors=True)
        raise ValidationFailed(f"the backup's data folder differs from its manifest: {'; '.join(problems[:5])}; "
                               f"{target} was not replaced", reference="restore-mismatch")
    kept = None
    if os.path.lexists(target):
        kept = target.with_name(f"{target.name}.before-restore-{_dt.datetime.now().strftime('%Y%m%d%H%M%S')}")
        os.rename(target, kept)
    os.rename(staging, target)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    say(f"{target} is the backup's data folder now" + (f"; the one that was there is kept as {kept}" if kept else ""))
    return kept


def no_server_binaries(major: int) -> bool:
    try:
        find_binaries(major=major)
    except ExternalFailure:
        return True
    return False
