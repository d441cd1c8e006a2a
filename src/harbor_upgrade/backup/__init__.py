"""Backup, verify and restore: the rollback Harbor's guide leaves to ``cp -r`` and ``mv``.

A backup folder holds

* ``database/`` — ``pg_dump`` in directory format (parallel jobs), owners and grants kept;
* ``files/harbor/...`` — the harbor folder: harbor.yml, common/config and the rest of the
  installer folder except large files (the offline installer's image archives);
* ``files/data_volume/...`` — the small state Harbor keeps in its data volume:
  ``secret/`` (keys and certificates), job logs, redis, chart storage, CA download ...
  Not copied: ``database/`` (the logical dump replaces it), ``registry/`` (the blobs:
  snapshot that volume or bucket yourself, see ``BLOB_ADVICE``) and ``trivy-adapter/`` (a
  cache Trivy downloads again);
* ``manifest.json`` — Harbor's release, the schema and data versions the database was at,
  the PostgreSQL version, per-table row counts, a digest of the dump's SQL text, and every
  file's size, sha256, owner, mode and mtime; ``manifest.sha256`` (corruption) and
  ``manifest.hmac`` (tampering, see ``manifest``) guard it.

The folder is 0700 and every file in it 0600: it holds Harbor's secrets. While a backup is
being written the folder holds ``backup.incomplete``; a folder without it and with a valid
manifest is a complete backup, which this tool never deletes nor writes over.

``verify_backup`` checks every path and checksum and the manifest's authenticity, then
restores the dump into a scratch cluster and compares the per-table row counts.
``restore_backup`` refuses a backup that fails those checks, restores the dump into a new
database beside the current one, proves it equal to the backup (the SQL text on the same
PostgreSQL major, the data of every table across majors), only then swaps the names (the
old database is kept under another name), and puts every file back without ever writing
through a symlink.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from .. import __version__
from ..db import ledger
from ..errors import ExternalFailure, HarborUpgradeError, InvalidInput, UnsafeState, ValidationFailed
from ..postgres.cluster import find_binaries
from ..postgres.scratch import scratch_cluster
from ..postgres.tools import Conn, client_binaries, data_fingerprint, run_tool, server_version, sql_digest, table_counts
from ..private import check_writable, private_dir, write_private
from ..progress import Note
from ..versions import release_of_schema
from .datadir import AREA as DATADIR_AREA
from .datadir import Census, binaries_for, copy_and_prove, restore_datadir, verify_copy
from .files import CHUNK, copy_hashing, extra_files, file_problems, open_regular, restore_area, sha256_of, walk
from .manifest import (
    DUMP_DIR,
    FILES_DIR,
    FORMAT,
    MANIFEST,
    MANIFEST_MAC,
    MANIFEST_SUM,
    BackupManifest,
    FileEntry,
    StoredFile,
    authenticate,
    backup_key_path,
    entry_problems,
    sign,
)
from .prepared import take_prepared

__all__ = ["FORMAT", "MANIFEST", "MANIFEST_SUM", "MANIFEST_MAC", "INCOMPLETE", "BackupManifest", "FileEntry",
           "StoredFile", "BackupCheck", "RestoreResult", "create_backup", "read_manifest", "verify_backup",
           "restore_backup", "backup_state", "manifest_sha256", "backup_key_path", "file_problems",
           "harbor_version_of", "blob_advice", "create_datadir_backup", "Census"]

INCOMPLETE = "backup.incomplete"
MANIFEST_MAX = 256 << 20

# data_volume entries that are not copied, and why (shown in the report).
DATA_VOLUME_SKIPPED = {
    "database": "PostgreSQL data folder: backed up as a logical dump in database/",
    "registry": "registry blobs: not copied (see the advice on snapshots)",
    "trivy-adapter": "Trivy's vulnerability DB cache: Trivy downloads it again",
}
# Files of the harbor folder larger than this are the offline installer's image archives.
HARBOR_DIR_MAX_FILE = 64 << 20
BLOB_ADVICE = ("Registry blobs are not in this backup. Set Harbor read-only (System Settings > "
               "Repository Read Only), then snapshot {where} (LVM/ZFS/cloud disk snapshot, or "
               "`rsync -aHAX --numeric-ids`), or enable versioning on the S3/GCS/Azure bucket.")


@dataclass
class BackupCheck:
    backup_dir: Path
    problems: list[str] = field(default_factory=list)
    checked_files: int = 0
    restored_tables: int = 0
    authenticated: str | None = None   # how the manifest was proved authentic

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class RestoreResult:
    backup_dir: Path
    database: str
    dump_identical: bool
    files_restored: int
    problems: list[str]
    extra_files: list[str]   # present now, absent from the backup: left in place, listed here
    compared: str = "pg_dump text"     # or "data" (restored into another PostgreSQL major)
    kept_database: str | None = None   # the database as it was before, renamed

    @property
    def ok(self) -> bool:
        return self.dump_identical and not self.problems


# -- small pure helpers --------------------------------------------------------------------

def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def harbor_version_of(harbor_dir: Path) -> str | None:
    """``_version`` of harbor.yml (written by Harbor since 1.10), if present."""
    from ..config.view import read_harbor_yml
    yml = harbor_dir / "harbor.yml"
    if not yml.is_file():
        return None
    try:
        return read_harbor_yml(yml, require_release=False).version
    except HarborUpgradeError:  # an unreadable harbor.yml is reported by config checks, not here
        return None


# -- reading the database --------------------------------------------------------------------

def _migration_state(conn) -> tuple[int | None, bool | None, int | None]:
    """(schema_version, dirty, data_version) as db.ledger reads them; all None without a ledger."""
    state = ledger.read_state(conn)
    if state.version is None:
        return None, None, None
    return state.version, state.dirty, state.data_version


# -- backup ---------------------------------------------------------------------------------

def _backup_area(area: str, root: Path, dest: Path, skip, skipped: list[dict[str, str]],
                 progress: Note) -> list[FileEntry]:
    entries = []
    for rel, p, st in walk(root, skip, skipped, area):
        e = FileEntry(area=area, path=rel, type="dir", uid=st.st_uid, gid=st.st_gid,
                      mode=stat.S_IMODE(st.st_mode), mtime_ns=st.st_mtime_ns)
        target = dest / area / rel
        if stat.S_ISDIR(st.st_mode):
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif stat.S_ISLNK(st.st_mode):
            e.type, e.target = "symlink", os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            e.type = "file"
            e.size, e.sha256 = copy_hashing(p, target)
        else:
            skipped.append({"path": f"{area}/{rel}", "reason": "not a regular file, folder or symlink"})
            continue
        entries.append(e)
    progress(f"copied {sum(1 for e in entries if e.type == 'file')} files of {root}")
    return entries


def _harbor_dir_skip(backup_to: Path, data_volume: Path | None, extra: tuple[Path, ...] = ()):
    def skip(p: Path, st: os.stat_result) -> str | None:
        if any(_inside(p, x) for x in extra):
            return "the data folder: backed up under datadir/"
        if _inside(p, backup_to):
            return "the backup folder itself"
        if data_volume is not None and _inside(p, data_volume):
            return "the data volume: backed up under data_volume/"
        if stat.S_ISREG(st.st_mode) and st.st_size > HARBOR_DIR_MAX_FILE:
            return f"large file ({st.st_size >> 20} MiB, the installer's image archive): download it again"
        return None
    return skip


def _data_volume_skip(data_volume: Path, harbor_dir: Path, backup_to: Path, datadirs: tuple[Path, ...] = ()):
    def skip(p: Path, st: os.stat_result) -> str | None:
        if p.parent == data_volume and p.name == "database" and datadirs:
            return "PostgreSQL data folder: its cluster is backed up as a copy in files/datadir/"
        if any(_inside(p, x) for x in datadirs):
            return "the data folder: backed up under files/datadir/"
        if p.parent == data_volume and p.name in DATA_VOLUME_SKIPPED:
            return DATA_VOLUME_SKIPPED[p.name]
        if _inside(p, backup_to):
            return "the backup folder itself"
        if _inside(p, harbor_dir):
            return "inside the harbor folder, backed up there"
        return None
    return skip



def _stored_files(backup_dir: Path, sub: str) -> list[StoredFile]:
    out = []
    for p in sorted((backup_dir / sub).rglob("*")):
        if p.is_file() and not p.is_symlink():
            out.append(StoredFile(str(p.relative_to(backup_dir)), p.stat().st_size, sha256_of(p)))
    return out


def _lock_down(backup_dir: Path) -> None:
    """0700 folders and 0600 files, except the data folder copy: it keeps its own modes (its
    server refuses other ones), behind the backup folder's 0700."""
    datadir = backup_dir / FILES_DIR / DATADIR_AREA
    for dirpath, dirnames, filenames in os.walk(backup_dir):
        here = Path(dirpath)
        if here == datadir.parent and DATADIR_AREA in dirnames:
            dirnames.remove(DATADIR_AREA)
        here.chmod(0o700)
        for name in filenames:
            if not (here / name).is_symlink():
                (here / name).chmod(0o600)


def backup_state(backup_dir: str | os.PathLike) -> str:
    """'absent' (no folder or an empty one), 'incomplete' (a backup this tool started and
    did not finish), 'complete' (a manifest and no incomplete marker), or 'foreign' (other
    content: not ours to touch)."""
    d = Path(backup_dir)
    if not d.is_dir() or d.is_symlink():
        return "absent" if not os.path.lexists(d) else "foreign"
    names = set(os.listdir(d))
    if not names:
        return "absent"
    if INCOMPLETE in names:
        return "incomplete"
    if MANIFEST in names:
        return "complete"
    return "foreign"


def _begin(to: Path, say: Note) -> None:
    """An empty, private backup folder marked incomplete (one an interruption left is started over)."""
    if backup_state(to) == "incomplete":   # ours, cut short: nothing in it is usable
        say(f"removing {to}, a backup cut short by an interruption, and starting it over")
        shutil.rmtree(to)
    if backup_state(to) != "absent":
        raise InvalidInput(f"backup folder {to} is not empty", hint="choose a new folder for each backup",
                           reference="backup-exists")
    check_writable(to, "backup folder", is_dir=True)
    private_dir(to)
    to.chmod(0o700)
    write_private(to / INCOMPLETE, "a backup is being written here; it is not usable\n")


def _files(harbor_dir: Path, dv: Path | None, to: Path, say: Note,
           dv_skip_extra: tuple[Path, ...] = ()) -> tuple[list[FileEntry], dict[str, str], list[dict[str, str]]]:
    """The harbor folder's and the data volume's files into the backup: (entries, roots, skipped)."""
    skipped: list[dict[str, str]] = []
    files = _backup_area("harbor", harbor_dir, to / FILES_DIR, _harbor_dir_skip(to, dv, dv_skip_extra),
                         skipped, say)
    roots = {"harbor": str(harbor_dir)}
    if dv is not None:
        files += _backup_area("data_volume", dv, to / FILES_DIR, _data_volume_skip(dv, harbor_dir, to, dv_skip_extra),
                              skipped, say)
        roots["data_volume"] = str(dv)
    return files, roots, skipped


def _finish(to: Path, manifest: BackupManifest, say: Note) -> None:
    text = manifest.to_json().encode()
    write_private(to / MANIFEST, text)
    manifest_sha256 = sign(to, text)
    _lock_down(to)
    (to / INCOMPLETE).unlink()
    say(f"backup written to {to}; its manifest's sha256 is {manifest_sha256} (record it elsewhere: "
        "restore --manifest-sha256 proves the backup unchanged with it)")


def create_backup(dsn: str, harbor_dir: str | os.PathLike, to: str | os.PathLike,
                  data_volume: str | os.PathLike | None = None, jobs: int = 2,
                  progress: Note | None = None) -> BackupManifest:
    """Back up the database, the harbor folder and the data volume's small state into ``to``
    (a new or empty folder)."""
    say = progress or (lambda _msg: None)
    harbor_dir, to = Path(harbor_dir).resolve(), Path(to).resolve()
    dv = Path(data_volume).resolve() if data_volume else None
    if not harbor_dir.is_dir():
        raise InvalidInput(f"harbor folder {harbor_dir} does not exist", reference="harbor-dir-missing")
    if dv is not None and not dv.is_dir():
        raise InvalidInput(f"data volume {dv} does not exist", reference="data-volume-missing")
    _begin(to, say)

    conn = Conn.parse(dsn)
    with conn.connect() as c:
        pg_version, pg_major = server_version(c)
        schema_version, dirty, data_version = _migration_state(c)
        counts = table_counts(c)
    tools = client_binaries(pg_major)
    pg_dump_version = run_tool([tools.tool("pg_dump"), "--version"]).stdout.strip()

    say(f"dumping database {conn.dbname} (PostgreSQL {pg_version}, {jobs} jobs)")
    run_tool([tools.tool("pg_dump"), "-Fd", "-j", str(max(1, jobs)), "-f", str(to / DUMP_DIR),
              "-d", conn.conninfo], conn, what=f"dumping {conn.dbname}")
    say("computing the digest of the dump's SQL text (restore compares a fresh dump with it)")
    digest = sql_digest([tools.tool("pg_restore"), "-f", "-", str(to / DUMP_DIR)])

    files, roots, skipped = _files(harbor_dir, dv, to, say)
    manifest = BackupManifest(
        created=_now(), tool_version=__version__,
        harbor_version=harbor_version_of(harbor_dir) or (release_of_schema(schema_version)
                                                         if schema_version is not None else None),
        schema_version=schema_version, dirty=dirty, data_version=data_version,
        pg_version=pg_version, pg_major=pg_major, pg_dump_version=pg_dump_version,
        database=conn.dbname, dump_sql_sha256=digest, table_counts=counts, roots=roots,
        skipped=skipped, files=files, stored=_stored_files(to, DUMP_DIR))
    _finish(to, manifest, say)
    return manifest


def create_datadir_backup(datadir: str | os.PathLike, harbor_dir: str | os.PathLike, to: str | os.PathLike,
                          data_volume: str | os.PathLike | None = None, *, database: str = "registry",
                          db_user: str = "postgres", expect: Census | None = None, jobs: int = 4,
                          bindir: str | os.PathLike | None = None, progress: Note | None = None,
                          prepared_in: str | os.PathLike | None = None, stats: dict | None = None) -> BackupManifest:
    """Back up a clean-stopped cluster as a copy of its data folder (see ``datadir``), with the
    harbor folder and the data volume's small state, into ``to`` (a new or empty folder); the
    copy is proved by a throwaway server before the manifest is written. ``expect``, the
    census of the database read before its server stopped, must equal the copy's.
    ``prepared_in``: a folder where ``run --prepare`` may have left a copy of the data folder
    taken while its server ran (``prepared``): when its record proves it, it is finished at
    the cost of what changed since instead of copied in full. ``stats`` (when given) is filled
    with what the copy and its proof took."""
    say = progress or (lambda _msg: None)
    datadir, harbor_dir, to = Path(datadir).resolve(), Path(harbor_dir).resolve(), Path(to).resolve()
    dv = Path(data_volume).resolve() if data_volume else None
    if not harbor_dir.is_dir():
        raise InvalidInput(f"harbor folder {harbor_dir} does not exist", reference="harbor-dir-missing")
    if dv is not None and not dv.is_dir():
        raise InvalidInput(f"data volume {dv} does not exist", reference="data-volume-missing")
    if _inside(to, datadir) or _inside(datadir, to):
        raise InvalidInput(f"backup folder {to} and data folder {datadir} must not contain one another",
                           reference="datadir-nested")
    binaries = binaries_for(datadir, bindir)
    _begin(to, say)
    (to / FILES_DIR).mkdir(mode=0o700)
    wal_skipped: list[dict[str, str]] = []
    prepared = take_prepared(Path(prepared_in), datadir, say) if prepared_in is not None else None
    entries, census, problems = copy_and_prove(datadir, to / FILES_DIR / DATADIR_AREA, binaries, jobs, say,
                                               wal_skipped, database, db_user, prepared, stats)
    if census is None or problems:
        raise ExternalFailure(f"the data folder copy in {to} does not serve the database: " + "; ".join(problems[:5]),
                              reference="backup-unverified",
                              hint="check free space and the PostgreSQL binaries, then run again (it starts over)")
    files, roots, skipped = _files(harbor_dir, dv, to, say, dv_skip_extra=(datadir,))
    skipped += wal_skipped
    roots["datadir"] = str(datadir)
    manifest = BackupManifest(
        created=_now(), tool_version=__version__, harbor_version=harbor_version_of(harbor_dir),
        schema_version=None, dirty=None, data_version=None, pg_version="", pg_major=binaries.major,
        pg_dump_version="", database=database, dump_sql_sha256="", table_counts={}, roots=roots,
        skipped=skipped, files=entries + files, stored=[], kind="datadir", db_user=db_user)
    if expect is not None:
        differ = census.differences(expect, "the copy", f"{database} before its server stopped")
        if differ:
            raise ExternalFailure(f"the data folder copy in {to} is not the database {database}: "
                                   + "; ".join(differ[:5]), reference="backup-unverified",
                                   hint="is the data folder the one the DSN's server runs on?")
    manifest.pg_version, manifest.table_counts = census.pg_version, census.table_counts
    manifest.schema_version, manifest.dirty = census.schema_version, census.dirty
    manifest.data_version = census.data_version
    if manifest.harbor_version is None and census.schema_version is not None:
        manifest.harbor_version = release_of_schema(census.schema_version)
    _finish(to, manifest, say)
    return manifest


def manifest_sha256(backup_dir: str | os.PathLike) -> str:
    return sha256_of(Path(backup_dir) / MANIFEST)


def _manifest_bytes(path: Path) -> bytes:
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            raw = f.read(MANIFEST_MAX + 1)
    except OSError as e:
        raise ValidationFailed(f"{path} cannot be read: {e.strerror}", reference="backup-corrupt") from None
    if len(raw) > MANIFEST_MAX:
        raise ValidationFailed(f"{path} is larger than {MANIFEST_MAX >> 20} MiB", reference="backup-corrupt")
    return raw


def read_manifest(backup_dir: str | os.PathLike) -> BackupManifest:
    path = Path(backup_dir) / MANIFEST
    if not os.path.lexists(path):
        raise InvalidInput(f"{path} not found: {backup_dir} is not a harbor-upgrade backup",
                           reference="backup-missing")
    raw = _manifest_bytes(path)
    try:
        return BackupManifest.from_json(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValidationFailed(f"{path} is damaged: {e}", reference="backup-corrupt") from None
    except ValidationFailed as e:
        raise ValidationFailed(f"{path} is damaged: {e.message}", reference="backup-corrupt") from None


def blob_advice(manifest: BackupManifest) -> str:
    where = (Path(manifest.roots["data_volume"]) / "registry") if "data_volume" in manifest.roots \
        else "the registry storage"
    return BLOB_ADVICE.format(where=where)



# -- verify ---------------------------------------------------------------------------------

@dataclass
class _Checked:
    problems: list[str]
    manifest: BackupManifest | None = None
    files: int = 0
    authenticated: str | None = None


def _check(backup_dir: Path, expect_sha256: str | None = None) -> _Checked:
    """Everything that can be checked without PostgreSQL: the manifest's integrity and
    authenticity, that every path stays inside its root, every checksum, nothing extra. The
    files of a data folder copy are only checked to be there with their size here: their
    checksums are compared as they are copied out (verify's scratch copy, restore)."""
    sum_file, man_file = backup_dir / MANIFEST_SUM, backup_dir / MANIFEST
    if os.path.lexists(backup_dir / INCOMPLETE):
        return _Checked([f"{backup_dir}: the backup was never finished ({INCOMPLETE} is there)"])
    if not os.path.lexists(man_file):
        return _Checked([f"{man_file} is missing"])
    try:
        raw = _manifest_bytes(man_file)
    except ValidationFailed as e:
        return _Checked([e.message])
    try:
        want = _manifest_bytes(sum_file).decode("ascii", "replace").split()
    except ValidationFailed as e:
        return _Checked([e.message])
    if hashlib.sha256(raw).hexdigest() != (want[0] if want else ""):
        return _Checked([f"{man_file}: sha256 differs from {sum_file.name} (the manifest was changed)"])
    try:
        manifest = read_manifest(backup_dir)
    except (ValidationFailed, InvalidInput) as e:
        return _Checked([e.message])
    unsafe = entry_problems(manifest)
    if unsafe:
        return _Checked([f"refused: {p}" for p in unsafe])
    result = _Checked([], manifest)
    result.authenticated, why = authenticate(backup_dir, raw, expect_sha256)
    if why:
        result.problems.append(why)
    expected = [(s.path, s.size, s.sha256) for s in manifest.stored] + \
               [(f.stored, f.size, f.sha256) for f in manifest.files if f.type == "file"]
    later = {f.stored for f in manifest.files if f.type == "file" and f.area == DATADIR_AREA}
    for rel, size, digest in expected:
        result.files += 1
        try:
            fd = open_regular(backup_dir / rel)
        except FileNotFoundError:
            result.problems.append(f"{rel}: missing from the backup")
            continue
        except OSError as e:
            result.problems.append(f"{rel}: {e.strerror} (not a regular file of the backup)")
            continue
        with os.fdopen(fd, "rb") as f:
            actual = os.fstat(f.fileno()).st_size
            if actual != size:
                result.problems.append(f"{rel}: size {actual}, recorded {size}")
                continue
            if rel in later:
                continue
            h = hashlib.sha256()
            while chunk := f.read(CHUNK):
                h.update(chunk)
        if h.hexdigest() != digest:
            result.problems.append(f"{rel}: sha256 differs from the manifest")
    known = {rel for rel, _, _ in expected} | {MANIFEST, MANIFEST_SUM, MANIFEST_MAC}
    for dirpath, dirnames, filenames in os.walk(backup_dir):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath, name)
            rel = str(p.relative_to(backup_dir))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                result.problems.append(f"{rel}: a symlink inside the backup")
            elif not stat.S_ISDIR(st.st_mode) and rel not in known:
                result.problems.append(f"{rel}: not in the manifest")
    return result


def _restore_check(backup_dir: Path, manifest: BackupManifest, result: BackupCheck) -> None:
    try:
        binaries = find_binaries(major=manifest.pg_major)
    except ExternalFailure:
        binaries = client_binaries(manifest.pg_major)
    tools = client_binaries(max(binaries.major, manifest.pg_major))
    with scratch_cluster(binaries, f"backup verify {backup_dir}") as scratch:
        # The scratch cluster's own locale, not the dump's: Harbor's databases are created with
        # en_US.UTF-8, which a host may lack ("invalid locale name"); row counts do not depend on it.
        scratch.createdb(manifest.database)
        run_tool([tools.tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                  "-j", "2", "-d", scratch.dsn(manifest.database), str(backup_dir / DUMP_DIR)],
                 what="restoring into a scratch cluster")
        with Conn.parse(scratch.dsn(manifest.database)).connect() as c:
            counts = table_counts(c)
    result.restored_tables = len(counts)
    for table in sorted(set(counts) | set(manifest.table_counts)):
        got, want = counts.get(table), manifest.table_counts.get(table)
        if got != want:
            result.problems.append(f"table {table}: {got} rows after a scratch restore, {want} in the manifest")


def verify_backup(backup_dir: str | os.PathLike, restore_check: bool = True,
                  expect_manifest_sha256: str | None = None) -> BackupCheck:
    """Paths, checksums and the manifest's authenticity, then (restore_check) a restore into a
    scratch cluster whose per-table row counts must equal the manifest's — for a data folder
    copy, a throwaway server on a checked copy of it whose census must equal the manifest's
    (restore_check False: the data folder's checksums are not read)."""
    backup_dir = Path(backup_dir)
    checked = _check(backup_dir, expect_manifest_sha256)
    result = BackupCheck(backup_dir, checked.problems, checked.files, authenticated=checked.authenticated)
    if restore_check and checked.manifest is not None and not checked.problems:
        if checked.manifest.kind == "datadir":
            result.restored_tables, problems = verify_copy(backup_dir, checked.manifest)
            result.problems += problems
        else:
            _restore_check(backup_dir, checked.manifest, result)
    return result


# -- restore --------------------------------------------------------------------------------

def _name_with(base: str, suffix: str) -> str:
    """base + suffix within PostgreSQL's 63-byte identifiers."""
    room = 63 - len(suffix.encode())
    cut = base.encode()[:room].decode("utf-8", "ignore")
    return cut + suffix


SESSIONS_SETTLE_S = 2.0


def _sessions(c: psycopg.Connection, dbname: str) -> list[tuple]:
    client_only = " and backend_type = 'client backend'" if server_version(c)[1] >= 10 else ""
    return c.execute("select pid, usename, application_name, client_addr::text from pg_stat_activity "
                     f"where datname = %s and pid <> pg_backend_pid(){client_only} order by pid",
                     [dbname]).fetchall()


def _database_exists(c: psycopg.Connection, dbname: str) -> bool:
    return c.execute("select 1 from pg_database where datname = %s", [dbname]).fetchone() is not None


_DB_STATEMENT = re.compile(r"^(CREATE DATABASE |ALTER DATABASE |COMMENT ON DATABASE |SECURITY LABEL .*ON DATABASE |"
                           r"(GRANT|REVOKE) .* ON DATABASE )")


def _database_statements(tools, backup_dir: Path, dump_name: str, new_name: str) -> str:
    """The dump's database-level statements (CREATE DATABASE with its encoding and locale,
    owner, settings, comment, grants), for a database called new_name."""
    script = run_tool([tools.tool("pg_restore"), "--create", "--schema-only", "-f", "-",
                       str(backup_dir / DUMP_DIR)], what="reading the database's definition").stdout
    names = {dump_name, '"' + dump_name.replace('"', '""') + '"'}
    ident = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    rename = re.compile(r"(DATABASE )(?:" + ident + r")(?=[ ;])")
    new_ident = '"' + new_name.replace('"', '""') + '"'
    out: list[str] = []
    statement: list[str] = []   # the lines of the statement being read
    for line in script.splitlines():
        if statement or _DB_STATEMENT.match(line):
            statement.append(line)
            if line.rstrip().endswith(";"):
                out.append(rename.sub(lambda m: m.group(1) + new_ident, "\n".join(statement), count=1))
                statement = []
    if not out or not out[0].startswith("CREATE DATABASE "):
        raise ValidationFailed(f"the dump in {backup_dir / DUMP_DIR} holds no CREATE DATABASE statement",
                               reference="backup-corrupt")
    return "\n".join(out) + "\n"


def _restore_into_staging(conn: Conn, maintenance: Conn, tools, backup_dir: Path, manifest: BackupManifest,
                          staging: str, jobs: int) -> None:
    with maintenance.connect() as c:
        if _database_exists(c, staging):  # a restore killed before it swapped: ours to drop
            c.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(staging)))
    script = _database_statements(tools, backup_dir, manifest.database, staging)
    try:
        run_tool([tools.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", maintenance.conninfo],
                 maintenance, what=f"creating database {staging}", input=script)
        run_tool([tools.tool("pg_restore"), "--exit-on-error", "-j", str(max(1, jobs)),
                  "-d", conn.with_db(staging).conninfo, str(backup_dir / DUMP_DIR)], conn,
                 what=f"restoring into {staging}")
    except BaseException:
        _drop_quietly(maintenance, staging)
        raise


def _drop_quietly(maintenance: Conn, dbname: str) -> None:
    try:
        with maintenance.connect() as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
    except (psycopg.Error, ExternalFailure):
        pass


def _prove_database(conn: Conn, tools, backup_dir: Path, manifest: BackupManifest, major: int) -> tuple[str, list[str]]:
    """(what was compared, differences) between the restored database and the backup."""
    if major == manifest.pg_major:
        fresh = sql_digest([tools.tool("pg_dump"), "-d", conn.conninfo], conn)
        same = fresh == manifest.dump_sql_sha256
        return "pg_dump text", [] if same else [f"a fresh pg_dump of {conn.dbname} differs from the dump in the backup"]
    # Another major prints the same schema differently; the data must be the same row for row.
    want = data_fingerprint([tools.tool("pg_restore"), "--data-only", "-f", "-", str(backup_dir / DUMP_DIR)])
    got = data_fingerprint([tools.tool("pg_dump"), "--data-only", "-d", conn.conninfo], conn)
    differ = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    return "data", [f"{k}: the data differs from the backup's" for k in differ]


def _swap(maintenance: Conn, target: str, staging: str, force_connected: bool) -> str | None:
    """Rename target away and staging to target in one transaction; returns the old one's new name."""
    kept = _name_with(target, "_before_restore_" + _dt.datetime.now().strftime("%Y%m%d%H%M%S"))
    with maintenance.connect() as c:
        exists = _database_exists(c, target)
        if exists and force_connected:
            c.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s "
                      "and pid <> pg_backend_pid()", [target])
        try:
            with c.transaction():
                if exists:
                    c.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(target),
                                                                               sql.Identifier(kept)))
                c.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging),
                                                                           sql.Identifier(target)))
        except psycopg.errors.ObjectInUse:
            _drop_quietly(maintenance, staging)
            raise UnsafeState(f"a client connected to {target} while the backup was restored beside it; "
                              f"{target} was not replaced", reference="db-in-use",
                              hint="stop Harbor, then run again (or pass --force-connected)") from None
    return kept if exists else None


def _check_target(conn: Conn, maintenance: Conn, force_connected: bool) -> int:
    with maintenance.connect() as c:
        major = server_version(c)[1]
        sessions = _sessions(c, conn.dbname)
        # A session closed a moment ago (a psql, a pg_dump just before) is listed until its server
        # process exits, which a loaded machine may take a while to schedule: ask again for a moment.
        deadline = time.monotonic() + SESSIONS_SETTLE_S
        while sessions and not force_connected and time.monotonic() < deadline:
            time.sleep(0.1)
            c.execute("select pg_stat_clear_snapshot()")   # a transaction reads a snapshot otherwise
            sessions = _sessions(c, conn.dbname)
    if sessions and not force_connected:
        raise UnsafeState(f"{len(sessions)} sessions are connected to database {conn.dbname} (is Harbor "
                          "running?): " + "; ".join(f"pid {p} user {u} application {a or '-'} from "
                                                    f"{addr or 'local socket'}" for p, u, a, addr in sessions[:5]),
                          reference="db-in-use",
                          hint="stop Harbor (docker compose down) and run again, or pass --force-connected to end "
                               "those sessions when the restored database takes the name; nothing was changed")
    return major


def restore_backup(backup_dir: str | os.PathLike, dsn: str | None, harbor_dir: str | os.PathLike,
                   data_volume: str | os.PathLike | None = None, jobs: int = 2,
                   progress: Note | None = None, force_connected: bool = False,
                   expect_manifest_sha256: str | None = None,
                   datadir: str | os.PathLike | None = None) -> RestoreResult:
    """Put the database and the files of a backup back, exactly, and prove it. The current
    database is replaced only once the backup's copy is restored and proved; it is kept,
    renamed (``RestoreResult.kept_database``). A data folder copy goes back to ``datadir``
    (default: the folder it was taken from), which no server may run on; dsn is not used."""
    say = progress or (lambda _msg: None)
    backup_dir = Path(backup_dir)
    checked = _check(backup_dir, expect_manifest_sha256)
    manifest = checked.manifest
    if checked.problems or manifest is None:
        problems = checked.problems
        raise ValidationFailed(f"backup {backup_dir} fails its checks, nothing was restored: "
                               + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""),
                               hint=f"harbor-upgrade backup verify {backup_dir} lists every problem; a backup moved "
                                    "from another machine needs its key (see README) or --manifest-sha256",
                               reference="backup-corrupt")
    roots = {"harbor": Path(harbor_dir)}
    if data_volume:
        roots["data_volume"] = Path(data_volume)
    areas = sorted({e.area for e in manifest.files} - {DATADIR_AREA})
    missing = [a for a in areas if a not in roots]
    if missing:
        raise InvalidInput(f"the backup holds files of {', '.join(missing)} but no folder was given for them",
                           hint=f"add --data-volume {manifest.roots.get('data_volume', 'DIR')}",
                           reference="restore-target-missing")
    if manifest.kind == "datadir":
        target = Path(datadir or manifest.roots[DATADIR_AREA])
        kept = restore_datadir(backup_dir, manifest, target, jobs, say)
        database, identical, compared, kept_name = str(target), True, "data folder sha256", str(kept) if kept else None
    else:
        if dsn is None:
            raise InvalidInput(f"the backup in {backup_dir} holds a dump: restoring it needs the database's DSN",
                               reference="dsn-missing")
        database, identical, compared, kept_name = _restore_dump(backup_dir, manifest, dsn, jobs, say, force_connected)

    restored = 0
    for area in areas:
        entries = [e for e in manifest.files if e.area == area]
        say(f"restoring {len(entries)} entries into {roots[area]}")
        restore_area(backup_dir, roots[area], entries)
        restored += len(entries)

    say("checking the restored files against the backup")
    file_issues, extra = [], []
    for area in areas:
        entries = [e for e in manifest.files if e.area == area]
        file_issues += file_problems(roots[area], entries)
        extra += extra_files(roots[area], area, entries, manifest.skipped)
    if manifest.kind == "datadir" and kept_name:
        extra = [e for e in extra if not _names_kept(e, Path(kept_name), roots)]
    return RestoreResult(backup_dir, database, identical, restored, file_issues, extra, compared, kept_name)


def _names_kept(extra: str, kept: Path, roots: dict[str, Path]) -> bool:
    """Whether a file left in place is the data folder the restore itself kept (or inside it): that
    folder is reported once as kept, not file by file as something the backup does not hold."""
    area, _, rel = extra.partition("/")
    root = roots.get(area)
    if root is None or not kept.is_relative_to(root):
        return False
    kept_rel = kept.relative_to(root).as_posix()
    return rel == kept_rel or rel.startswith(kept_rel + "/")


def _restore_dump(backup_dir: Path, manifest: BackupManifest, dsn: str, jobs: int, say: Note,
                  force_connected: bool) -> tuple[str, bool, str, str | None]:
    """The dump into a new database beside the current one, proved, then the names swapped."""
    conn = Conn.parse(dsn)
    maintenance = conn.with_db("postgres" if conn.dbname != "postgres" else "template1")
    major = _check_target(conn, maintenance, force_connected)
    tools = client_binaries(max(major, manifest.pg_major))
    staging = _name_with(conn.dbname, "_restoring")
    say(f"restoring the backup's database into a new database {staging} (the current {conn.dbname} "
        "stays until it is proved)")
    _restore_into_staging(conn, maintenance, tools, backup_dir, manifest, staging, jobs)
    say(f"checking {staging} against the backup")
    try:
        compared, differences = _prove_database(conn.with_db(staging), tools, backup_dir, manifest, major)
    except BaseException:
        _drop_quietly(maintenance, staging)
        raise
    if differences:
        _drop_quietly(maintenance, staging)
        raise ValidationFailed(f"the backup's database restored into {staging} is not equal to the backup "
                               f"({compared}): " + "; ".join(differences[:5]) + f"; {conn.dbname} was not replaced",
                               reference="restore-mismatch")
    kept = _swap(maintenance, conn.dbname, staging, force_connected)
    say(f"{staging} is now {conn.dbname}" + (f"; the database as it was is kept as {kept}" if kept else ""))
    return conn.dbname, True, compared, kept
