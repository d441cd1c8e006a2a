"""Harbor's database alone: the installation's own harbor-db image on its data folder.

Harbor's stack is down (the folder must not be served twice: PostgreSQL's lock file does
not protect it across containers), so the tool starts the very image Harbor runs, alone,
with Docker's default logging (Harbor's compose file logs to the `log` container, which
is not running), its port published on 127.0.0.1 only, and the capabilities Harbor gives
it. Its password comes from harbor.yml and reaches the container as ``-e
POSTGRES_PASSWORD`` from our environment, never on a command line.

It is stopped so that PostgreSQL shuts down clean — ``pg_ctl stop -m fast`` inside: the
images of 1.10-2.0 keep bash as PID 1, and a plain ``docker stop`` kills postgres after
the timeout, leaving the folder in need of crash recovery — then removed. Each container
carries labels naming us and the data folder: a rerun after a kill finds and stops it.
"""
from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from ..errors import DatadirEmpty, HarborUpgradeError
from ..secrets import mask_text, register_dsn
from ..versions import HARBOR_DB_MAJOR
from . import docker
from .detect import DB_MOUNT, ComposeInstallation
from .errors import (
    ComposeNoDatabase,
    DatabaseFolderInUse,
    DatabaseFolderMissing,
    DatabaseImageMissing,
    DatabaseLayoutMismatch,
    DatabasePasswordMissing,
    DatabaseStartFailed,
    DatabaseStopUnclean,
    NotLoopback,
)

CONTAINER_OWNER = "harbor-upgrade"
# Harbor's compose file gives harbor-db these capabilities and drops the rest.
CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID")
STOP_SECONDS = 120

JournalFn = Callable[..., None]


def _no_journal(event: str, **fields: object) -> None:
    return None


def container_name(ci: ComposeInstallation) -> str:
    """Ours, per data folder: two installations with the same project name do not clash."""
    folder = hashlib.sha256(os.path.realpath(ci.db_dir or "").encode()).hexdigest()[:8]
    return f"harbor-upgrade-db-{ci.project}-{folder}"


def cluster_dirs(db_dir: Path) -> list[Path]:
    """Where a cluster sits in Harbor's database folder: at its top (9.6) or in pgNN/ (2.3+)."""
    out = [db_dir] if (db_dir / "PG_VERSION").exists() else []
    out += sorted(p for p in db_dir.glob("pg[0-9]*") if (p / "PG_VERSION").exists())
    return out


def shutdown_postgres(container_id: str) -> bool:
    """A fast, clean PostgreSQL shutdown inside a running harbor-db container; True once the
    container has exited within the time allowed."""
    r = docker.run_docker("exec", container_id, "sh", "-c", f'pg_ctl -D "$PGDATA" -m fast -w -t {STOP_SECONDS} stop',
                          check=False, timeout=STOP_SECONDS + 30)
    if r.returncode != 0:
        # no pg_ctl on the image's PATH: SIGINT is PostgreSQL's fast shutdown (postgres is PID 1
        # in the images that exec it)
        docker.run_docker("kill", "--signal", "INT", container_id, check=False)
    return wait_exited(container_id, STOP_SECONDS)


def stop_container(name: str, journal: JournalFn = _no_journal) -> bool:
    """Stop a harbor-db container of ours with a clean PostgreSQL shutdown and remove it;
    True when PostgreSQL shut down clean (False: it had to be killed)."""
    found = docker.inspect(name)
    if not found:
        return True
    c = found[0]
    clean = True
    if c.running:
        clean = shutdown_postgres(c.id)
        if not clean:
            docker.run_docker("stop", "-t", "10", c.id, check=False)
    docker.run_docker("rm", "-f", "-v", c.id, check=False)
    journal("compose-db-removed", container=c.name, clean=clean)
    return clean


def wait_exited(container: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = docker.inspect(container)
        if not found or not found[0].running:
            return True
        time.sleep(0.3)
    return False


def leftovers(db_dir: Path) -> list[docker.Container]:
    """Containers an earlier, killed harbor-upgrade started on db_dir."""
    return docker.all_containers(f"label={docker.LABEL_OWNER}={CONTAINER_OWNER}",
                                 f"label={docker.LABEL_DATADIR}={os.path.realpath(db_dir)}")


def remove_leftovers(db_dir: Path, journal: JournalFn = _no_journal) -> list[str]:
    names = []
    for c in leftovers(db_dir):
        stop_container(c.id, journal)
        names.append(c.name)
    return names


def check_folder_free(db_dir: Path) -> None:
    """No running container of any project may have the folder mounted."""
    users = [c for c in docker.mounting(db_dir) if c.running]
    if users:
        raise DatabaseFolderInUse(f"{db_dir} is in use by running containers: "
                                  + ", ".join(f"{c.name} ({c.image})" for c in users)
                                  + "; a second PostgreSQL on the same folder would corrupt it",
                                  hint="stop them first (Harbor: run with --stop-harbor, or docker compose down in the "
                               "harbor folder)")


def check_layout(ci: ComposeInstallation, db_dir: Path) -> None:
    """Images with PostgreSQL 9.6 (1.10-2.2) serve (and, if absent, initialise) a cluster at the
    top of the folder; 2.3 and later look in pgNN/. Starting an image on the other layout would leave the real
    cluster aside and initialise an empty one."""
    major = HARBOR_DB_MAJOR.get(".".join((ci.release or "").split(".")[:2]) + ".0")
    top = (db_dir / "PG_VERSION").exists()
    nested = [p.name for p in cluster_dirs(db_dir) if p != db_dir]
    if major == 9 and not top and nested:
        raise DatabaseLayoutMismatch(f"{db_dir} holds its cluster in {', '.join(nested)} (a newer harbor-db "
                                     f"upgraded it), but {ci.db_image} looks at the top of the folder and would "
                                     "initialise an empty cluster there",
                                     hint="put back a copy of the data folder taken before the new release's first "
                                          "start, or restore with --dsn into a server of that cluster's major")


class HarborDbContainer:
    """The installation's harbor-db, started alone; use as a context manager."""

    def __init__(self, ci: ComposeInstallation, journal: JournalFn = _no_journal, user: str = "postgres",
                 dbname: str = "registry"):
        if not ci.db_service or not ci.db_dir or not ci.db_image:
            raise ComposeNoDatabase(f"{ci.compose_file} has no harbor-db service with {DB_MOUNT} mounted: the "
                                    "database is not Harbor's own")
        if not ci.password:
            raise DatabasePasswordMissing(
                "harbor.yml has no database.password: harbor-db's superuser cannot be reached",
                hint="set database.password in harbor.yml to the password the installation uses")
        self.ci, self.journal, self.user, self.dbname = ci, journal, user, dbname
        self.name = container_name(ci)
        self.db_dir = Path(ci.db_dir)
        self.dsn: str | None = None

    def start(self) -> str:
        """Start it and wait until it answers; returns the DSN (127.0.0.1, password percent-encoded)."""
        removed = remove_leftovers(self.db_dir, self.journal)
        if removed:
            self.journal("compose-db-leftovers", containers=removed)
        if not self.db_dir.is_dir():
            raise DatabaseFolderMissing(f"{self.db_dir} (harbor-db's data folder) does not exist on this machine")
        if not cluster_dirs(self.db_dir):
            raise DatadirEmpty(f"{self.db_dir} holds no PostgreSQL cluster: harbor-db would initialise a new, empty "
                               "one there", hint="check data_volume in harbor.yml")
        check_layout(self.ci, self.db_dir)
        check_folder_free(self.db_dir)
        image = self.ci.db_image
        assert image is not None  # db_dir is set: the installation has a harbor-db service
        if not docker.image_exists(image):
            raise DatabaseImageMissing(f"the installation's database image {self.ci.db_image} is not on this machine",
                                       hint="docker load it from the Harbor installer archive of this release")
        args = ["run", "-d", "--name", self.name, "--restart", "no",
                "--label", f"{docker.LABEL_OWNER}={CONTAINER_OWNER}",
                "--label", f"{docker.LABEL_DATADIR}={os.path.realpath(self.db_dir)}",
                "--cap-drop", "ALL", *[a for cap in CAPABILITIES for a in ("--cap-add", cap)],
                "-v", f"{os.path.realpath(self.db_dir)}:{DB_MOUNT}",
                "-p", "127.0.0.1::5432", "-e", "POSTGRES_PASSWORD", image]
        self.journal("compose-db-starting", container=self.name, image=self.ci.db_image, datadir=str(self.db_dir))
        r = docker.run_docker(*args, env={"POSTGRES_PASSWORD": self.ci.password or ""}, check=False,
                              what=f"starting {self.ci.db_image} alone")
        if r.returncode != 0:
            self._stop_quietly()
            raise DatabaseStartFailed(f"cannot start {self.ci.db_image} on {self.db_dir}: "
                                      f"{mask_text(r.stderr.strip()[-1000:])}")
        host, port = docker.published_port(self.name)
        if host not in ("127.0.0.1", ""):
            self._stop_quietly()
            raise NotLoopback(f"Docker published harbor-db on {host}, not on 127.0.0.1")
        self.dsn = (f"postgresql://{quote(self.user, safe='')}:{quote(self.ci.password or '', safe='')}"
                    f"@127.0.0.1:{port}/{quote(self.dbname, safe='')}?sslmode=disable")
        register_dsn(self.dsn)
        self.journal("compose-db-started", container=self.name, port=port)
        try:
            self.wait_ready()
        except BaseException:  # an interrupt while waiting: nothing of ours stays behind
            self._stop_quietly()
            raise
        return self.dsn

    def wait_ready(self, seconds: float = 120) -> None:
        import psycopg
        assert self.dsn is not None  # set by start
        deadline = time.monotonic() + seconds
        last = ""
        while time.monotonic() < deadline:
            found = docker.inspect(self.name)
            if not found or not found[0].running:
                logs = docker.run_docker("logs", "--tail", "30", self.name, check=False)
                self._stop_quietly()
                raise DatabaseStartFailed(f"{self.ci.db_image} stopped on {self.db_dir} before answering: "
                                          + mask_text((logs.stdout + logs.stderr).strip()[-1500:]))
            try:
                psycopg.connect(self.dsn, connect_timeout=3, application_name=CONTAINER_OWNER).close()
                return
            except psycopg.Error as e:
                last = str(e).strip()
                time.sleep(0.3)
        self._stop_quietly()
        raise DatabaseStartFailed(f"{self.ci.db_image} on {self.db_dir} did not answer within {seconds:.0f}s: "
                                  f"{mask_text(last)}")

    def stop(self) -> None:
        """Stop (clean PostgreSQL shutdown) and remove; callers close their connections first."""
        clean = stop_container(self.name, self.journal)
        self.dsn = None
        pid_files = [d / "postmaster.pid" for d in cluster_dirs(self.db_dir)]
        if not clean or any(p.exists() for p in pid_files):
            raise DatabaseStopUnclean(f"PostgreSQL in {self.db_dir} did not shut down clean: the next start runs "
                                      "crash recovery")

    def __enter__(self) -> HarborDbContainer:
        self.start()
        return self

    def _stop_quietly(self) -> None:
        try:
            self.stop()
        except HarborUpgradeError:  # the first error is the one to tell
            pass

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.stop()
        else:
            self._stop_quietly()


@contextmanager
def terminate_as_interrupt():
    """SIGTERM (docker stop, systemd, kill) unwinds like Ctrl-C, so containers get stopped."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def serving(ci: ComposeInstallation, journal: JournalFn = _no_journal):
    """harbor-db alone for the duration of the block; yields its DSN."""
    with terminate_as_interrupt(), HarborDbContainer(ci, journal) as db:
        yield db.dsn
