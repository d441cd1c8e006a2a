"""The PostgreSQL major-version upgrade, done the way Harbor 2.3's entrypoint did not.

Harbor 2.3 ran ``pg_upgrade`` inside its container without ``--check``, with the new
cluster inside the old folder, and deleted the old cluster as soon as pg_upgrade said
yes (Harbor issues 15471, 16040, 19522). Here:

1. the old folder must be readable and hold a cluster of the old binaries' major;
2. the new cluster goes beside the old one, initialised with the old one's encoding,
   locale, superuser, checksum setting and WAL segment size;
3. every server and pg_upgrade runs as the data folder's owner, never as root, on a
   private socket with a private trust-only pg_hba (nobody else can connect meanwhile);
4. ``pg_upgrade --check`` (with the chosen transfer mode) runs first;
5. on failure the old cluster is left as it was and startable (in link mode the one file
   pg_upgrade renames is put back), the new folder is removed, the logs are kept;
6. after success the new cluster is started, its per-table row counts and sequence values
   must equal the old one's, statistics are rebuilt, the old pg_hba.conf/pg_ident.conf
   are carried over;
7. the old cluster stays until ``cleanup`` (``pg-upgrade --cleanup``) is run.

``mode="dump"`` replaces pg_upgrade with pg_dumpall --globals-only plus pg_dump/pg_restore
of each database with parallel jobs: slower, but it works across any versions.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from ..db.connection import one
from ..errors import ExternalFailure, InvalidInput, UnsafeState, ValidationFailed
from ..private import private_dir, write_private
from ..progress import Note
from .cluster import LocalCluster, PgBinaries, free_port, major_of
from .layout import check_siblings, harbor_cluster, list_entries, read_pg_version
from .server import Owner, Server, clean_env, data_owner, process_start, run_as, runnable_bindir
from .tools import sequence_values, table_counts

MODES = ("copy", "link", "clone", "dump")
STATE_SUFFIX = ".harbor-upgrade.json"
ATTEMPT_SUFFIX = ".harbor-upgrade-attempt.json"



@dataclass
class ClusterSettings:
    """What the new cluster must share with the old one for pg_upgrade to accept it."""
    superuser: str
    encoding: str
    lc_collate: str
    lc_ctype: str
    locale_provider: str      # "c" (libc), "i" (ICU), "b" (builtin)
    icu_locale: str | None
    checksums: bool
    wal_segsize_mb: int

    def initdb_args(self, new_major: int) -> list[str]:
        args = [f"--lc-collate={self.lc_collate}", f"--lc-ctype={self.lc_ctype}"]
        if self.locale_provider == "i":
            args += ["--locale-provider=icu", f"--icu-locale={self.icu_locale}"]
        elif self.locale_provider == "b":
            args += ["--locale-provider=builtin", f"--builtin-locale={self.icu_locale}"]
        if self.checksums:
            args.append("--data-checksums")
        elif new_major >= 18:  # 18 turned checksums on by default; pg_upgrade needs both equal
            args.append("--no-data-checksums")
        if self.wal_segsize_mb != 16:
            args.append(f"--wal-segsize={self.wal_segsize_mb}")
        return args


@dataclass
class Evidence:
    """Per database: row counts of every table and [last_value, is_called] of every sequence."""
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    sequences: dict[str, dict[str, list]] = field(default_factory=dict)


@dataclass
class EngineUpgradeResult:
    old_datadir: Path
    new_datadir: Path
    old_major: int
    new_major: int
    mode: str
    evidence: Evidence
    seconds: dict[str, float]
    state_file: Path
    notes: list[str]


def compare_evidence(old: Evidence, new: Evidence) -> list[str]:
    """Every difference between the two clusters' row counts and sequence values."""
    problems = []
    for kind, a, b in (("rows", old.tables, new.tables), ("sequence", old.sequences, new.sequences)):
        for db in sorted(set(a) | set(b)):
            if db not in b:
                problems.append(f"database {db} is missing from the new cluster")
                continue
            if db not in a:
                problems.append(f"database {db} is new in the new cluster")
                continue
            for name in sorted(set(a[db]) | set(b[db])):
                if a[db].get(name) != b[db].get(name):
                    problems.append(f"{db}.{name}: {kind} old {a[db].get(name)}, new {b[db].get(name)}")
    return problems


def _run(args: list[str], owner: Owner, cwd: Path, what: str, check: bool = True,
         **kw) -> subprocess.CompletedProcess:
    return run_as(owner, args, cwd=cwd, what=what, check=check, reference="pg-upgrade-failed", env=clean_env(), **kw)


def _bootstrap_superuser(binaries: PgBinaries, datadir: Path, owner: Owner, work: Path) -> str:
    """The role initdb created (oid 10), read in single-user mode: we cannot connect before
    knowing a role name, and pg_upgrade needs exactly this one."""
    r = _run([binaries.tool("postgres"), "--single", "-D", str(datadir), "template1"], owner, work,
             "reading the superuser in single-user mode", input="select rolname from pg_authid where oid = 10\n")
    m = re.search(r'rolname = "([^"]+)"', r.stdout)
    if not m:
        raise ExternalFailure(f"cannot read the bootstrap superuser of {datadir}: {r.stdout[-500:]} {r.stderr[-500:]}",
                              reference="pg-upgrade-failed")
    return m.group(1)


class _PrivateServer:
    """A cluster started on a private socket (no TCP) with a trust-only pg_hba of our own."""

    def __init__(self, datadir: Path, binaries: PgBinaries, work: Path, superuser: str, name: str):
        self.cluster = LocalCluster(datadir, binaries, port=free_port(), socket_dir=work, superuser=superuser)
        self.cluster.logfile = work / f"{name}-server.log"
        self.work, self.superuser = work, superuser

    def __enter__(self) -> _PrivateServer:
        self.cluster.start(settings={"listen_addresses": "''", "hba_file": f"'{self.work / 'pg_hba.conf'}'"})
        return self

    def __exit__(self, *exc) -> None:
        self.cluster.stop()

    def conninfo(self, db: str = "postgres") -> str:
        return f"host={self.work} port={self.cluster.port} user={self.superuser} dbname={db}"

    def connect(self, db: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.conninfo(db), autocommit=True)

    def client_args(self) -> list[str]:
        return ["-h", str(self.work), "-p", str(self.cluster.port), "-U", self.superuser]

    def databases(self) -> list[str]:
        with self.connect() as c:
            return [r[0] for r in c.execute(
                "select datname from pg_database where datallowconn and datname <> 'template0' order by 1")]

    def settings(self, controldata: dict[str, str]) -> ClusterSettings:
        with self.connect() as c:
            major = c.info.server_version // 10000
            provider, icu = "c", None
            if major >= 15:
                col = "datlocale" if major >= 17 else "daticulocale"
                provider, icu = one(c.execute(f"select datlocprovider, {col} from pg_database "
                                          "where datname = 'template0'"))
            enc, collate, ctype = one(c.execute(
                "select pg_encoding_to_char(encoding), datcollate, datctype from pg_database "
                "where datname = 'template0'"))
        return ClusterSettings(self.superuser, enc, collate, ctype, provider, icu,
                               controldata.get("Data page checksum version", "0") != "0",
                               int(controldata.get("Bytes per WAL segment", str(16 << 20))) >> 20)

    def evidence(self) -> Evidence:
        ev = Evidence()
        for db in self.databases():
            with self.connect(db) as c:
                ev.tables[db] = table_counts(c)
                ev.sequences[db] = sequence_values(c)
        return ev


# -- the upgrade --------------------------------------------------------------------------

def _binaries(bindir: str | os.PathLike, owner: Owner, what: str) -> PgBinaries:
    b = Path(bindir)
    if not all((b / n).exists() for n in ("initdb", "pg_ctl", "postgres")):
        raise InvalidInput(f"{what} {b} does not hold PostgreSQL server binaries", reference="bindir-invalid")
    return PgBinaries(runnable_bindir(b, owner.uid, owner.gid), major_of(b))


def _prepare_new_datadir(new: Path, owner: Owner) -> None:
    """An absent or empty folder only: a cluster found there was not made with the old
    cluster's settings (pg_upgrade 15+ no longer compares the template databases)."""
    if list_entries(new):
        raise UnsafeState(f"new data folder {new} is not empty", hint="give a new folder; nothing was changed",
                          reference="datadir-not-empty")
    new.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner.chown(new)


def folder_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # vanished or unreadable while we walk: it does not count
                continue
    return total


def check_space(old: Path, new: Path, mode: str) -> None:
    """copy and dump write a second copy of the data; link and clone share the old files."""
    if mode not in ("copy", "dump"):
        return
    need = folder_size(old)
    parent = next(p for p in [new, *new.parents] if p.exists())
    free = shutil.disk_usage(parent).free
    if free < need * 1.1:
        raise UnsafeState(f"{mode} mode needs about {need >> 20} MiB free at {parent}, only {free >> 20} MiB are",
                          hint="free some space, put --new-datadir on another disk, or use --mode link "
                               "(fast, no copy; only with a verified backup)", reference="disk-space")


def _pg_upgrade_logs(work: Path, new: Path) -> list[Path]:
    logs = list(work.glob("*.log")) + list((new / "pg_upgrade_output.d").rglob("*.log"))
    return sorted(p for p in logs if p.is_file())


def _keep_logs(work: Path, new: Path, dest: Path) -> Path:
    private_dir(dest)
    for p in _pg_upgrade_logs(work, new):
        write_private(dest / p.name, p.read_bytes())
    return dest


def _undo_link_mode(old: Path) -> bool:
    """pg_upgrade --link renames the old global/pg_control to pg_control.old before linking;
    while the new cluster has never started, renaming it back makes the old one usable."""
    control, renamed = old / "global" / "pg_control", old / "global" / "pg_control.old"
    if renamed.exists() and not control.exists():
        renamed.rename(control)
        return True
    return False


def _pg_upgrade(old_bin, new_bin, old, new, settings, owner, work, mode, jobs, check,
                attempt: _Attempt) -> subprocess.CompletedProcess:
    hba = f"-c hba_file='{work / 'pg_hba.conf'}'"
    args = [new_bin.tool("pg_upgrade"), "-b", str(old_bin.bindir), "-B", str(new_bin.bindir),
            "-d", str(old), "-D", str(new), "-U", settings.superuser, "-s", str(work),
            "-p", str(free_port()), "-P", str(free_port()), "-o", hba, "-O", hba, "-j", str(max(1, jobs))]
    args += {"copy": [], "link": ["--link"], "clone": ["--clone"]}[mode]
    if check:
        args.append("--check")
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work,
                          env=clean_env(), **owner.run_kw()) as p:
        attempt.stage(attempt.data["stage"], pg_upgrade_pid=p.pid, pg_upgrade_start=process_start(p.pid))
        out, err = p.communicate()
    return subprocess.CompletedProcess(args, p.returncode, out, err)


def _dump_restore(old_srv: _PrivateServer, new_srv: _PrivateServer, new_bin: PgBinaries, work: Path,
                  jobs: int, say: Note) -> None:
    """Roles and tablespaces with pg_dumpall --globals-only, then each database with parallel
    pg_dump/pg_restore (the newer tools read any older server)."""
    env = clean_env()
    globals_sql = subprocess.run([new_bin.tool("pg_dumpall"), "--globals-only", *old_srv.client_args()],
                                 capture_output=True, text=True, env=env)
    if globals_sql.returncode != 0:
        raise ExternalFailure(f"pg_dumpall --globals-only failed: {globals_sql.stderr[-2000:]}",
                              reference="pg-upgrade-failed")
    # The bootstrap superuser exists already (initdb made it); its ALTER ROLE line still applies.
    own = f"CREATE ROLE {old_srv.superuser};"
    script = "\n".join(line for line in globals_sql.stdout.splitlines()
                       if line.strip() not in (own, f'CREATE ROLE "{old_srv.superuser}";'))
    r = subprocess.run([new_bin.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *new_srv.client_args(),
                        "-d", "postgres"], input=script, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise ExternalFailure(f"restoring roles into the new cluster failed: {r.stderr[-2000:]}",
                              reference="pg-upgrade-failed")
    for db in old_srv.databases():
        say(f"dump/restore of database {db} ({jobs} jobs)")
        out = work / f"dump-{db}"
        r = subprocess.run([new_bin.tool("pg_dump"), "-Fd", "-j", str(max(1, jobs)), "-f", str(out),
                            *old_srv.client_args(), "-d", db], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise ExternalFailure(f"pg_dump of {db} failed: {r.stderr[-2000:]}", reference="pg-upgrade-failed")
        existing = db in ("postgres", "template1")  # initdb made these; restore into them
        target = ["-d", db] if existing else ["--create", "-d", "postgres"]
        r = subprocess.run([new_bin.tool("pg_restore"), "--exit-on-error", "-j", str(max(1, jobs)),
                            *new_srv.client_args(), *target, str(out)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise ExternalFailure(f"pg_restore of {db} failed: {r.stderr[-2000:]}", reference="pg-upgrade-failed")
        shutil.rmtree(out)


def _copy_access_files(old: Path, new: Path) -> list[str]:
    """Harbor's pg_hba.conf (password rules for its services) and pg_ident.conf go with the data."""
    copied = []
    for name in ("pg_hba.conf", "pg_ident.conf"):
        if (old / name).is_file():
            shutil.copy2(old / name, new / name)
            if os.geteuid() == 0:
                st = (old / name).stat()
                os.chown(new / name, st.st_uid, st.st_gid)
            copied.append(name)
    return copied


def _analyze(new_srv: _PrivateServer, new_bin: PgBinaries, new_major: int) -> None:
    args = [new_bin.tool("vacuumdb"), "--all", "--analyze-in-stages", *new_srv.client_args()]
    if new_major >= 18:  # 18's pg_upgrade carries the statistics over; fill in only what is missing
        args.append("--missing-stats-only")
    r = subprocess.run(args, capture_output=True, text=True, env=clean_env())
    if r.returncode != 0:
        raise ExternalFailure(f"vacuumdb --analyze-in-stages failed: {r.stderr[-2000:]}",
                              reference="pg-upgrade-failed")


def state_path(new_datadir: Path) -> Path:
    return new_datadir.parent / f".{new_datadir.name}{STATE_SUFFIX}"


def attempt_path(new_datadir: Path) -> Path:
    return new_datadir.parent / f".{new_datadir.name}{ATTEMPT_SUFFIX}"


class _Attempt:
    """What an unfinished upgrade into new_datadir has started, written before it starts it:
    its process, its private socket folder, the stage it reached, pg_upgrade's pid. A rerun
    after a kill reads it to stop and remove exactly that, and to start again."""

    def __init__(self, new: Path, data: dict):
        self.path, self.data = attempt_path(new), data

    @classmethod
    def begin(cls, old: Path, new: Path, mode: str, work: Path) -> _Attempt:
        a = cls(new, {"pid": os.getpid(), "start": process_start(os.getpid()), "old": str(old), "new": str(new),
                      "mode": mode, "work": str(work), "stage": "inspect"})
        a.save()
        return a

    def save(self) -> None:
        write_private(self.path, json.dumps(self.data))

    def stage(self, stage: str, **more) -> None:
        self.data.update(stage=stage, **more)
        self.save()

    def end(self) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid, start) -> bool:
    return isinstance(pid, int) and start is not None and process_start(pid) == start


def _stop_private_server(binaries: PgBinaries, datadir: Path, work: str, owner: Owner) -> bool:
    """Stop the server of datadir if it listens on the dead attempt's private socket folder
    (postmaster.pid's 5th line); a server of anyone else is left alone."""
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    if len(lines) < 5 or lines[4].strip() != work:
        return False
    _run([binaries.tool("pg_ctl"), "stop", "-D", str(datadir), "-m", "fast", "-w", "-t", "60"], owner, Path("/"),
         "pg_ctl stop", check=False)
    return True


def _recover(old: Path, new: Path, old_bin: PgBinaries, new_bin: PgBinaries, owner: Owner, say: Note) -> list[str]:
    """Undo what a killed attempt left: its pg_upgrade, the servers it ran on its private
    socket, the half-made new cluster (in link mode only while the new cluster never ran),
    its work folder. The old cluster comes out as it was."""
    path = attempt_path(new)
    for torn in path.parent.glob(f".{path.name}.*.tmp"):   # a record being written when a kill came
        torn.unlink(missing_ok=True)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        data = {}
    if _alive(data.get("pid"), data.get("start")):
        raise UnsafeState(f"another pg-upgrade (pid {data['pid']}) is upgrading {old} into {new}",
                          reference="run-locked", hint="wait for it to finish")
    notes = []
    child = data.get("pg_upgrade_pid")
    if _alive(child, data.get("pg_upgrade_start")):
        os.kill(child, signal.SIGKILL)
        for _ in range(200):
            if not _alive(child, data.get("pg_upgrade_start")):
                break
            time.sleep(0.05)
        notes.append(f"stopped pg_upgrade (pid {child}) left running by an interrupted attempt")
    work = data.get("work", "")
    for binaries, datadir in ((old_bin, old), (new_bin, new)):
        if work and _stop_private_server(binaries, datadir, work, owner):
            notes.append(f"stopped the server an interrupted attempt had started on {datadir}")
    stage = data.get("stage", "inspect")
    if _finished_state(old, new) is not None:
        stage = "done"   # killed after the verified state was written: keep the new cluster
    if stage == "verify" and data.get("mode") == "link" and (old / "global" / "pg_control.old").exists():
        raise UnsafeState(f"an interrupted link-mode upgrade left {old} sharing its files with {new}, and the new "
                          "cluster was not verified", reference="engine-link-interrupted",
                          hint="restore the old cluster from your snapshot (link mode needs one); or check the new "
                               "cluster by hand")
    if stage in ("initdb", "transfer", "verify"):
        if data.get("mode") == "link" and _undo_link_mode(old):
            notes.append(f"put back {old}/global/pg_control, renamed by the interrupted pg_upgrade --link")
        if list_entries(new) is not None:
            shutil.rmtree(new, ignore_errors=True)
            notes.append(f"removed {new}, the unfinished new cluster of an interrupted attempt")
    if Path(work).name.startswith("hu-pgup-"):   # the attempt's own folder (recorded by it)
        shutil.rmtree(work, ignore_errors=True)
    path.unlink(missing_ok=True)
    for n in notes:
        say(n)
    return notes


def _finished_state(old: Path, new: Path) -> dict | None:
    """The verified state of an upgrade of old into new, when one was finished."""
    try:
        state = json.loads(state_path(new).read_text())
    except (OSError, ValueError):
        return None
    if state.get("verified") and state.get("old_datadir") == str(old) \
            and read_pg_version(new) == str(state.get("new_major")):
        return state
    return None


def resolve_old_datadir(datadir: str | os.PathLike) -> Path:
    """The cluster folder itself, or the one cluster of a Harbor ``data_volume/database``."""
    path = Path(datadir).absolute()
    return path if read_pg_version(path) else harbor_cluster(path).path


def upgrade_cluster(old_bindir: str | os.PathLike, old_datadir: str | os.PathLike,
                    new_bindir: str | os.PathLike, new_datadir: str | os.PathLike,
                    mode: str = "copy", jobs: int = 1, progress: Note | None = None) -> EngineUpgradeResult:
    """Upgrade the cluster in old_datadir into a new cluster in new_datadir (see the module doc)."""
    say = progress or (lambda _msg: None)
    if mode not in MODES:
        raise InvalidInput(f"mode {mode!r} is not one of {', '.join(MODES)}", reference="invalid-mode")
    old, new = resolve_old_datadir(old_datadir), Path(new_datadir).absolute()
    old_version = read_pg_version(old)
    assert old_version is not None  # resolve_old_datadir only returns a folder with a PG_VERSION
    check_siblings(old, new)
    owner = data_owner(old)
    old_bin, new_bin = _binaries(old_bindir, owner, "old bindir"), _binaries(new_bindir, owner, "new bindir")
    recovered = _recover(old, new, old_bin, new_bin, owner, say)
    done = _finished_state(old, new)
    if done is not None:
        say(f"{new} was finished and verified by an earlier attempt")
        return EngineUpgradeResult(old, new, old_bin.major, new_bin.major, done["mode"], Evidence(**done["evidence"]),
                                   {"total": 0.0}, state_path(new),
                                   recovered + ["finished and verified by an earlier, interrupted attempt"])
    check_space(old, new, mode)
    if old_version.split(".")[0] != str(old_bin.major):
        raise InvalidInput(f"{old} is a PostgreSQL {old_version} cluster but {old_bindir} is {old_bin.major}",
                           reference="datadir-version")
    if new_bin.major <= old_bin.major and mode != "dump":
        raise InvalidInput(f"new binaries ({new_bin.major}) must be a newer major than the old ({old_bin.major})",
                           reference="invalid-input")

    t0 = time.monotonic()
    seconds: dict[str, float] = {}
    notes: list[str] = list(recovered)
    work = Path(tempfile.mkdtemp(prefix="hu-pgup-"))  # short: a unix socket lives here
    attempt = _Attempt.begin(old, new, mode, work)
    owner.chown(work)
    (work / "pg_hba.conf").write_text("local all all trust\n")
    owner.chown(work / "pg_hba.conf")
    created_new = transferred = False
    try:
        old_server = Server(old_bin.bindir, old, owner)
        state = old_server.controldata(cwd=work).get("Database cluster state", "")
        if old_server.pg_ctl("status").returncode == 0:
            raise UnsafeState(f"PostgreSQL is running on {old}", hint="stop Harbor (docker compose down) first",
                              reference="postgres-running")
        superuser = _bootstrap_superuser(old_bin, old, owner, work)
        if state != "shut down":
            notes.append(f"old cluster was '{state}': started and stopped once to finish recovery")
        with _PrivateServer(old, old_bin, work, superuser, "old") as old_srv:
            settings = old_srv.settings(old_server.controldata(cwd=work))
            say(f"reading row counts and sequences of the old cluster ({old_version})")
            before = old_srv.evidence()
        seconds["inspect"] = time.monotonic() - t0

        attempt.stage("initdb")
        _prepare_new_datadir(new, owner)
        created_new = True
        say(f"initdb {new} (PostgreSQL {new_bin.major}, {settings.encoding}, {settings.lc_collate})")
        LocalCluster.create(new, binaries=new_bin, encoding=settings.encoding, locale=None,
                            superuser=settings.superuser, initdb_args=settings.initdb_args(new_bin.major))
        t = time.monotonic()
        attempt.stage("transfer")
        if mode == "dump":
            with _PrivateServer(old, old_bin, work, superuser, "old") as old_srv, \
                    _PrivateServer(new, new_bin, work, superuser, "new") as new_srv:
                _dump_restore(old_srv, new_srv, new_bin, work, jobs, say)
        else:
            say(f"pg_upgrade --check ({mode})")
            r = _pg_upgrade(old_bin, new_bin, old, new, settings, owner, work, mode, jobs, True, attempt)
            seconds["check"] = time.monotonic() - t
            if r.returncode != 0:
                raise _failure("pg_upgrade --check", r, work, new)
            say(f"pg_upgrade ({mode}, {jobs} jobs)")
            t = time.monotonic()
            r = _pg_upgrade(old_bin, new_bin, old, new, settings, owner, work, mode, jobs, False, attempt)
            if r.returncode != 0:
                raise _failure("pg_upgrade", r, work, new)
        seconds["transfer"] = time.monotonic() - t
        transferred = True
        attempt.stage("verify")
        notes += [f"copied {n} from the old cluster" for n in _copy_access_files(old, new)]

        t = time.monotonic()
        with _PrivateServer(new, new_bin, work, superuser, "new") as new_srv:
            after = new_srv.evidence()
            problems = compare_evidence(before, after)
            if problems:
                keep = ("the old cluster shares its files with the new one (link mode): restore the backup"
                        if mode == "link" else "the old cluster is unchanged and still the one to use")
                raise ValidationFailed(
                    f"the new cluster in {new} differs from the old one: " + "; ".join(problems[:10]),
                    hint=f"both clusters are kept; {keep}", reference="pg-upgrade-mismatch")
            seconds["verify"] = time.monotonic() - t
            say("rebuilding planner statistics (vacuumdb --analyze-in-stages)")
            t = time.monotonic()
            _analyze(new_srv, new_bin, new_bin.major)
            seconds["analyze"] = time.monotonic() - t
    except BaseException:
        # Before the transfer completed the new folder is ours to remove; after it, the new
        # cluster may have run (in link mode on the old cluster's files): keep both.
        if created_new and not transferred:
            _roll_back(old, new, mode)
        if not transferred or mode != "link":
            attempt.end()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)

    seconds["total"] = time.monotonic() - t0
    sp = state_path(new)
    result = EngineUpgradeResult(old, new, old_bin.major, new_bin.major, mode, after, seconds, sp, notes)
    write_private(sp, json.dumps({"old_datadir": str(old), "new_datadir": str(new), "old_version": old_version,
                                  "new_major": new_bin.major, "mode": mode, "verified": True,
                                  "evidence": asdict(after)}, indent=1))
    attempt.end()
    return result


def _failure(step: str, r: subprocess.CompletedProcess, work: Path, new: Path) -> ExternalFailure:
    kept = _keep_logs(work, new, new.parent / f"{new.name}.pg_upgrade-logs")
    output = (r.stdout + r.stderr).strip()
    # pg_upgrade prints its checks one per line and the reason for the failure last.
    return ExternalFailure(
        f"{step} failed (exit {r.returncode}); the old cluster was not changed: {output[-2500:]}",
        hint=f"logs kept in {kept}; fix the cause and run pg-upgrade again", reference="pg-upgrade-failed")


def _roll_back(old: Path, new: Path, mode: str) -> None:
    """Undo a transfer that did not finish: the new cluster never started."""
    if mode == "link":
        _undo_link_mode(old)
    shutil.rmtree(new, ignore_errors=True)


def cleanup(old_datadir: str | os.PathLike, new_datadir: str | os.PathLike,
            move_into: str | os.PathLike | None = None) -> list[Path]:
    """Remove the old cluster, only after a verified upgrade into new_datadir; then, with
    ``move_into``, move the new cluster to where Harbor's image expects it (a 9.6 cluster
    filled data_volume/database itself; 2.3+ looks in data_volume/database/pg13)."""
    old, new = resolve_old_datadir(old_datadir), Path(new_datadir).absolute()
    sp = state_path(new)
    if not sp.is_file():
        raise UnsafeState(f"no verified upgrade into {new} is recorded ({sp} is missing); the old cluster is kept",
                          hint="run harbor-upgrade pg-upgrade first", reference="pg-upgrade-unverified")
    state = json.loads(sp.read_text())
    if not state.get("verified") or Path(state["old_datadir"]) != old:
        raise UnsafeState(f"{sp} records an upgrade of {state.get('old_datadir')}, not of {old}",
                          reference="pg-upgrade-unverified")
    if read_pg_version(new) != str(state["new_major"]):
        raise UnsafeState(f"{new} no longer holds the PostgreSQL {state['new_major']} cluster recorded in {sp}",
                          reference="pg-upgrade-unverified")
    if read_pg_version(old) != state["old_version"]:
        raise UnsafeState(f"{old} does not hold the PostgreSQL {state['old_version']} cluster recorded in {sp}",
                          reference="pg-upgrade-unverified")
    if move_into is not None and os.path.lexists(move_into):
        raise UnsafeState(f"{move_into} exists already; the old cluster was kept", reference="datadir-not-empty")
    removed = []
    if re.fullmatch(r"pg\d+", old.name):  # a harbor-db sub-folder (pg13 ...): goes entirely
        shutil.rmtree(old)
        removed.append(old)
    else:
        # Empty the folder but keep it: Harbor's data_volume/database may be a mount point,
        # and it is where later harbor-db releases look for their pgNN sub-folder.
        for name in list_entries(old) or []:
            p = old / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    sp.unlink()
    if move_into is not None:
        os.rename(new, move_into)
    return removed
