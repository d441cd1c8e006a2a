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
* ``manifest.json`` — Harbor's version, the schema and data versions, the PostgreSQL
  version, per-table row counts, a digest of the dump's SQL text, and every file's size,
  sha256, owner, mode and mtime — with ``manifest.sha256`` guarding the manifest itself.

The folder is 0700 and every file in it 0600: it holds Harbor's secrets.

``verify_backup`` checks every checksum, then restores the dump into a throwaway cluster
and compares the per-table row counts with the manifest. ``restore_backup`` refuses a
backup whose checksums fail, recreates the database from the dump and puts every file
back with its owner, mode and mtime; then it proves the result: a fresh dump of the
database has the recorded digest and every file has its recorded sha256, owner and mode.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from psycopg import sql

from . import __version__
from .db import ledger
from .errors import ExternalFailure, HarborUpgradeError, InvalidInput, UnsafeState, ValidationFailed
from .postgres.cluster import LocalCluster, find_binaries
from .postgres.tools import Conn, client_binaries, run_tool, server_version, sql_digest, table_counts
from .versions import release_of_schema

FORMAT = 1
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"
DUMP_DIR = "database"
FILES_DIR = "files"
CHUNK = 1 << 20

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

Progress = Callable[[str], None]


@dataclass
class FileEntry:
    """One backed-up file system entry: where it came from and how it looked."""
    area: str            # "harbor" or "data_volume"
    path: str            # relative to the area's root, "/"-separated; "." is the root itself
    type: str            # "file", "dir" or "symlink"
    uid: int
    gid: int
    mode: int            # permission bits (stat.S_IMODE)
    mtime_ns: int
    size: int = 0
    sha256: str | None = None
    target: str | None = None   # of a symlink

    @property
    def stored(self) -> str:
        return f"{FILES_DIR}/{self.area}/{self.path}"


@dataclass
class StoredFile:
    """A file of the backup itself (the dump's files), with its checksum."""
    path: str
    size: int
    sha256: str


@dataclass
class BackupManifest:
    created: str
    tool_version: str
    harbor_version: str | None
    schema_version: int | None
    dirty: bool | None
    data_version: int | None
    pg_version: str
    pg_major: int
    pg_dump_version: str
    database: str
    dump_sql_sha256: str
    table_counts: dict[str, int]
    roots: dict[str, str]
    skipped: list[dict[str, str]]
    files: list[FileEntry]
    stored: list[StoredFile]
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackupManifest:
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise InvalidInput(f"backup manifest format {d.get('format')!r} is not {FORMAT}",
                               reference="backup-format")
        d["files"] = [FileEntry(**f) for f in d["files"]]
        d["stored"] = [StoredFile(**f) for f in d["stored"]]
        return cls(**d)


@dataclass
class VerifyResult:
    backup_dir: Path
    problems: list[str] = field(default_factory=list)
    checked_files: int = 0
    restored_tables: int = 0

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

    @property
    def ok(self) -> bool:
        return self.dump_identical and not self.problems


# -- small pure helpers --------------------------------------------------------------------

def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def harbor_version_of(harbor_dir: Path) -> str | None:
    """``_version`` of harbor.yml (written by Harbor since 1.10), if present."""
    from .config.view import read_harbor_yml
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


# -- walking and copying files ---------------------------------------------------------------

def _walk(root: Path, skip: Callable[[Path, os.stat_result], str | None], skipped: list[dict[str, str]],
          area: str):
    """(relative path, absolute path, lstat) of root and everything below, minus skipped entries."""
    def visit(p: Path, rel: str):
        st = p.lstat()
        reason = skip(p, st) if rel != "." else None
        if reason:
            skipped.append({"path": f"{area}/{rel}", "reason": reason})
            return
        yield rel, p, st
        if stat.S_ISDIR(st.st_mode):
            try:
                children = sorted(os.listdir(p))
            except OSError as e:
                raise UnsafeState(f"cannot list {p}: {e.strerror}",
                                  hint="run the backup as root or as the owner of the folder",
                                  reference="backup-unreadable") from None
            for name in children:
                yield from visit(p / name, name if rel == "." else f"{rel}/{name}")
    yield from visit(root, ".")


def _copy_hashing(src: Path, dst: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            fout.write(chunk)
    return size, h.hexdigest()


def _backup_area(area: str, root: Path, dest: Path, skip, skipped: list[dict[str, str]],
                 progress: Progress) -> list[FileEntry]:
    entries = []
    for rel, p, st in _walk(root, skip, skipped, area):
        e = FileEntry(area=area, path=rel, type="dir", uid=st.st_uid, gid=st.st_gid,
                      mode=stat.S_IMODE(st.st_mode), mtime_ns=st.st_mtime_ns)
        target = dest / area / rel
        if stat.S_ISDIR(st.st_mode):
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif stat.S_ISLNK(st.st_mode):
            e.type, e.target = "symlink", os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            e.type = "file"
            e.size, e.sha256 = _copy_hashing(p, target)
        else:
            skipped.append({"path": f"{area}/{rel}", "reason": "not a regular file, folder or symlink"})
            continue
        entries.append(e)
    progress(f"copied {sum(1 for e in entries if e.type == 'file')} files of {root}")
    return entries


def _harbor_dir_skip(backup_to: Path, data_volume: Path | None):
    def skip(p: Path, st: os.stat_result) -> str | None:
        if _inside(p, backup_to):
            return "the backup folder itself"
        if data_volume is not None and _inside(p, data_volume):
            return "the data volume: backed up under data_volume/"
        if stat.S_ISREG(st.st_mode) and st.st_size > HARBOR_DIR_MAX_FILE:
            return f"large file ({st.st_size >> 20} MiB, the installer's image archive): download it again"
        return None
    return skip


def _data_volume_skip(data_volume: Path, harbor_dir: Path, backup_to: Path):
    def skip(p: Path, st: os.stat_result) -> str | None:
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
        if p.is_file():
            out.append(StoredFile(str(p.relative_to(backup_dir)), p.stat().st_size, _sha256_file(p)))
    return out


def _lock_down(backup_dir: Path) -> None:
    for p in [backup_dir, *backup_dir.rglob("*")]:
        if p.is_symlink():
            continue
        p.chmod(0o700 if p.is_dir() else 0o600)


# -- backup ---------------------------------------------------------------------------------

def create_backup(dsn: str, harbor_dir: str | os.PathLike, to: str | os.PathLike,
                  data_volume: str | os.PathLike | None = None, jobs: int = 2,
                  progress: Progress | None = None) -> BackupManifest:
    """Back up the database, the harbor folder and the data volume's small state into ``to``."""
    say = progress or (lambda _msg: None)
    harbor_dir, to = Path(harbor_dir).resolve(), Path(to).resolve()
    dv = Path(data_volume).resolve() if data_volume else None
    if not harbor_dir.is_dir():
        raise InvalidInput(f"harbor folder {harbor_dir} does not exist", reference="harbor-dir-missing")
    if dv is not None and not dv.is_dir():
        raise InvalidInput(f"data volume {dv} does not exist", reference="data-volume-missing")
    if to.exists() and any(to.iterdir()):
        raise InvalidInput(f"backup folder {to} is not empty", hint="choose a new folder for each backup",
                           reference="backup-exists")
    to.mkdir(mode=0o700, parents=True, exist_ok=True)
    to.chmod(0o700)

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

    skipped: list[dict[str, str]] = []
    files = _backup_area("harbor", harbor_dir, to / FILES_DIR, _harbor_dir_skip(to, dv), skipped, say)
    roots = {"harbor": str(harbor_dir)}
    if dv is not None:
        files += _backup_area("data_volume", dv, to / FILES_DIR, _data_volume_skip(dv, harbor_dir, to),
                              skipped, say)
        roots["data_volume"] = str(dv)

    manifest = BackupManifest(
        created=_now(), tool_version=__version__,
        harbor_version=harbor_version_of(harbor_dir) or (release_of_schema(schema_version)
                                                         if schema_version is not None else None),
        schema_version=schema_version, dirty=dirty, data_version=data_version,
        pg_version=pg_version, pg_major=pg_major, pg_dump_version=pg_dump_version,
        database=conn.dbname, dump_sql_sha256=digest, table_counts=counts, roots=roots,
        skipped=skipped, files=files, stored=_stored_files(to, DUMP_DIR))
    text = manifest.to_json()
    (to / MANIFEST).write_text(text)
    (to / MANIFEST_SUM).write_text(hashlib.sha256(text.encode()).hexdigest() + "  " + MANIFEST + "\n")
    _lock_down(to)
    say(f"backup written to {to}")
    return manifest


def read_manifest(backup_dir: str | os.PathLike) -> BackupManifest:
    path = Path(backup_dir) / MANIFEST
    if not path.is_file():
        raise InvalidInput(f"{path} not found: {backup_dir} is not a harbor-upgrade backup",
                           reference="backup-missing")
    try:
        return BackupManifest.from_json(path.read_text())
    except (ValueError, TypeError, KeyError) as e:
        raise ValidationFailed(f"{path} is damaged: {e}", reference="backup-corrupt") from None


def blob_advice(manifest: BackupManifest) -> str:
    where = (Path(manifest.roots["data_volume"]) / "registry") if "data_volume" in manifest.roots \
        else "the registry storage"
    return BLOB_ADVICE.format(where=where)


# -- verify ---------------------------------------------------------------------------------

def _checksum_problems(backup_dir: Path) -> tuple[list[str], BackupManifest | None, int]:
    problems: list[str] = []
    sum_file, man_file = backup_dir / MANIFEST_SUM, backup_dir / MANIFEST
    if not man_file.is_file():
        return [f"{man_file} is missing"], None, 0
    if not sum_file.is_file():
        problems.append(f"{sum_file} is missing")
    else:
        want = sum_file.read_text().split()[0] if sum_file.read_text().split() else ""
        if hashlib.sha256(man_file.read_bytes()).hexdigest() != want:
            return [f"{man_file}: sha256 differs from {sum_file.name} (the manifest was changed)"], None, 0
    try:
        manifest = read_manifest(backup_dir)
    except ValidationFailed as e:
        return problems + [e.message], None, 0
    checked = 0
    expected = [(s.path, s.size, s.sha256) for s in manifest.stored] + \
               [(f.stored, f.size, f.sha256) for f in manifest.files if f.type == "file"]
    for rel, size, digest in expected:
        p = backup_dir / rel
        checked += 1
        if not p.is_file():
            problems.append(f"{rel}: missing from the backup")
        elif p.stat().st_size != size:
            problems.append(f"{rel}: size {p.stat().st_size}, recorded {size}")
        elif _sha256_file(p) != digest:
            problems.append(f"{rel}: sha256 differs from the manifest")
    known = {rel for rel, _, _ in expected} | {MANIFEST, MANIFEST_SUM}
    for p in sorted(backup_dir.rglob("*")):
        rel = str(p.relative_to(backup_dir))
        if p.is_file() and rel not in known:
            problems.append(f"{rel}: not in the manifest")
    return problems, manifest, checked


def _restore_check(backup_dir: Path, manifest: BackupManifest, result: VerifyResult) -> None:
    try:
        binaries = find_binaries(major=manifest.pg_major)
    except ExternalFailure:
        binaries = client_binaries(manifest.pg_major)
    tools = client_binaries(max(binaries.major, manifest.pg_major))
    with LocalCluster.create(binaries=binaries, fast=True) as scratch:
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


def verify_backup(backup_dir: str | os.PathLike, restore_check: bool = True) -> VerifyResult:
    """Checksums of every file, then (restore_check) a restore into a throwaway cluster whose
    per-table row counts must equal the manifest's."""
    backup_dir = Path(backup_dir)
    result = VerifyResult(backup_dir)
    problems, manifest, checked = _checksum_problems(backup_dir)
    result.problems += problems
    result.checked_files = checked
    if restore_check and manifest is not None and not problems:
        _restore_check(backup_dir, manifest, result)
    return result


# -- restore --------------------------------------------------------------------------------

def _recreate_database(conn: Conn, tools, backup_dir: Path, manifest: BackupManifest, jobs: int) -> None:
    """Drop the database and create it again from the dump (with its encoding, locale, owner
    and settings when the name matches the dump's)."""
    maintenance = conn.with_db("postgres" if conn.dbname != "postgres" else "template1")
    with maintenance.connect() as c:
        major = server_version(c)[1]
        if major < 13:
            c.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                      "where datname = %s and pid <> pg_backend_pid()", [conn.dbname])
        force = sql.SQL(" WITH (FORCE)") if major >= 13 else sql.SQL("")
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(conn.dbname)) + force)
        if conn.dbname != manifest.database:
            c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(conn.dbname)))
    args = [tools.tool("pg_restore"), "--exit-on-error", "-j", str(max(1, jobs))]
    if conn.dbname == manifest.database:
        args += ["--create", "-d", maintenance.conninfo]
    else:
        args += ["-d", conn.conninfo]
    run_tool(args + [str(backup_dir / DUMP_DIR)], conn, what=f"restoring {conn.dbname}")


def _write_file(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.harbor-upgrade-restore")
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
    os.replace(tmp, dst)


def _restore_area(backup_dir: Path, root: Path, entries: list[FileEntry]) -> None:
    for e in entries:
        p = root if e.path == "." else root / e.path
        if e.type == "dir":
            if p.is_symlink() or (p.exists() and not p.is_dir()):
                p.unlink()
            p.mkdir(parents=True, exist_ok=True)
        elif e.type == "symlink":
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
            os.symlink(e.target, p)
        else:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.is_symlink():
                p.unlink()
            _write_file(backup_dir / e.stored, p)
    # Owners, modes and times last, deepest first, so a read-only folder or a folder's
    # mtime is not disturbed by writing its children.
    for e in sorted(entries, key=lambda e: e.path.count("/") + (e.path != "."), reverse=True):
        p = root if e.path == "." else root / e.path
        os.lchown(p, e.uid, e.gid)
        if e.type != "symlink":
            os.chmod(p, e.mode)
        os.utime(p, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)


def file_problems(root: Path, entries: list[FileEntry]) -> list[str]:
    """How the files under root differ from their manifest entries (empty when identical)."""
    problems = []
    for e in entries:
        p = root if e.path == "." else root / e.path
        where = f"{e.area}/{e.path}"
        try:
            st = p.lstat()
        except FileNotFoundError:
            problems.append(f"{where}: missing")
            continue
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "file"
        if kind != e.type:
            problems.append(f"{where}: is a {kind}, was a {e.type}")
            continue
        if (st.st_uid, st.st_gid) != (e.uid, e.gid):
            problems.append(f"{where}: owner {st.st_uid}:{st.st_gid}, recorded {e.uid}:{e.gid}")
        if kind != "symlink" and stat.S_IMODE(st.st_mode) != e.mode:
            problems.append(f"{where}: mode {oct(stat.S_IMODE(st.st_mode))}, recorded {oct(e.mode)}")
        if kind == "symlink" and os.readlink(p) != e.target:
            problems.append(f"{where}: points to {os.readlink(p)}, recorded {e.target}")
        if kind == "file" and (st.st_size != e.size or _sha256_file(p) != e.sha256):
            problems.append(f"{where}: content differs from the backup")
    return problems


def _extra_files(root: Path, area: str, entries: list[FileEntry], skipped: list[dict[str, str]]) -> list[str]:
    known = {e.path for e in entries}
    skipped_paths = {s["path"] for s in skipped}
    extra = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if f"{area}/{rel}" in skipped_paths:
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if rel not in known:
                extra.append(f"{area}/{rel}")
    return extra


def restore_backup(backup_dir: str | os.PathLike, dsn: str, harbor_dir: str | os.PathLike,
                   data_volume: str | os.PathLike | None = None, jobs: int = 2,
                   progress: Progress | None = None) -> RestoreResult:
    """Put the database and the files of a backup back, exactly, and prove it."""
    say = progress or (lambda _msg: None)
    backup_dir = Path(backup_dir)
    problems, manifest, _ = _checksum_problems(backup_dir)
    if problems or manifest is None:
        raise ValidationFailed(f"backup {backup_dir} fails its checksums, nothing was restored: "
                               + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""),
                               hint=f"harbor-upgrade backup verify {backup_dir}", reference="backup-corrupt")
    roots = {"harbor": Path(harbor_dir)}
    if data_volume:
        roots["data_volume"] = Path(data_volume)
    areas = sorted({e.area for e in manifest.files})
    missing = [a for a in areas if a not in roots]
    if missing:
        raise InvalidInput(f"the backup holds files of {', '.join(missing)} but no folder was given for them",
                           hint=f"add --data-volume {manifest.roots.get('data_volume', 'DIR')}",
                           reference="restore-target-missing")

    conn = Conn.parse(dsn)
    with conn.connect() as c:
        major = server_version(c)[1]
    tools = client_binaries(max(major, manifest.pg_major))
    say(f"restoring database {conn.dbname} from {backup_dir / DUMP_DIR}")
    _recreate_database(conn, tools, backup_dir, manifest, jobs)

    restored = 0
    for area in areas:
        entries = [e for e in manifest.files if e.area == area]
        say(f"restoring {len(entries)} entries into {roots[area]}")
        _restore_area(backup_dir, roots[area], entries)
        restored += len(entries)

    say("checking the restored database and files against the backup")
    fresh = sql_digest([tools.tool("pg_dump"), "-d", conn.conninfo], conn)
    file_issues, extra = [], []
    for area in areas:
        entries = [e for e in manifest.files if e.area == area]
        file_issues += file_problems(roots[area], entries)
        extra += _extra_files(roots[area], area, entries, manifest.skipped)
    dump_identical = fresh == manifest.dump_sql_sha256
    if not dump_identical:
        file_issues.insert(0, f"a fresh pg_dump of {conn.dbname} differs from the dump in the backup")
    return RestoreResult(backup_dir, conn.dbname, dump_identical, restored, file_issues, extra)
