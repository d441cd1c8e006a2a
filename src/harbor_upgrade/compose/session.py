"""The database of a command: the --dsn given, or on a Compose installation with Harbor's
own database, harbor-db started alone for the command's duration.

Every command that reads or writes the database (plan, run, verify, rollback, backup,
restore, db ..., artifacts) asks ``database`` for its DSN. What it starts and stops is
written to ``containers.jsonl`` in the run's backup folder when there is one, and is
labelled in Docker in any case, so a rerun after a kill removes it first.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config.view import read_harbor_yml
from ..errors import InvalidInput
from ..journal import Journal, parse_lines
from ..secrets import register_dsn
from . import docker
from .database import JournalFn, _no_journal, serving
from .detect import ComposeInstallation, detect_compose
from .stack import refuse_running, stop_harbor

CONTAINER_JOURNAL = "containers.jsonl"


def compose_of(harbor_yml: str | os.PathLike) -> ComposeInstallation | None:
    """The Compose installation beside harbor_yml (None when there is no docker-compose.yml)."""
    path = Path(harbor_yml).resolve()
    return detect_compose(path.parent, read_harbor_yml(harbor_yml, require_release=False).data)


def own_database(ci: ComposeInstallation | None) -> bool:
    """Whether the database is Harbor's own harbor-db (not external_database)."""
    return ci is not None and ci.db_service is not None


def container_journal(backup_dir: str | os.PathLike | None) -> JournalFn:
    """An event writer into <backup_dir>/containers.jsonl (masked, fsync'd), or a no-op; the
    folder is made at the first event, so a command that refuses leaves none."""
    if backup_dir is None:
        return _no_journal
    path = Path(backup_dir) / CONTAINER_JOURNAL
    opened: list[Journal] = []

    def write(event: str, **fields: object) -> None:
        if not opened:
            path.parent.mkdir(parents=True, exist_ok=True)
            opened.append(Journal(path, parse_lines(path.read_text(encoding="utf-8")) if path.exists() else []))
        opened[0].write(event, "compose", **fields)
    return write


@contextmanager
def database(harbor_yml: str | os.PathLike | None, dsn: str | None, *, stop: bool = False,
             journal: JournalFn = _no_journal, say: Callable[[str], None] = lambda _m: None,
             ci: ComposeInstallation | None = None) -> Iterator[str | None]:
    """The DSN for the block: dsn when given; else, on a Compose installation with its own
    database, harbor-db alone on 127.0.0.1 (Harbor must be down, or is stopped first when
    ``stop``); else None (external_database: the caller takes harbor.yml's)."""
    if dsn or harbor_yml is None:
        if dsn:
            register_dsn(dsn)
        yield dsn
        return
    path = Path(harbor_yml).resolve()
    cfg = read_harbor_yml(harbor_yml, require_release=False)
    ci = ci or detect_compose(path.parent, cfg.data)
    if not own_database(ci):
        yield cfg.external_dsn
        return
    assert ci is not None
    if ci.docker_error:
        raise docker.DockerUnavailable(f"{ci.compose_file} describes a Compose installation but Docker cannot be "
                                       f"asked about it: {ci.docker_error}",
                                       hint="start Docker, or pass --dsn to a database you serve yourself")
    if ci.running:
        if not stop:
            refuse_running(ci)
        say(f"stopping Harbor ({len(ci.running)} containers of project {ci.project}): clean database shutdown, "
            "then docker compose down")
        stop_harbor(ci, journal)
    say(f"starting {ci.db_image} alone on {ci.db_dir} (127.0.0.1 only)")
    with serving(ci, journal) as url:
        yield url
    say(f"{ci.db_image} stopped (clean shutdown) and removed")


def require_dsn(dsn: str | None, what: str) -> None:
    if dsn is None:
        raise InvalidInput(f"{what} needs the Harbor database: pass --dsn, or --harbor-yml of a Compose installation "
                           "(harbor-upgrade then starts its harbor-db alone)", reference="dsn-missing")


@contextmanager
def required_database(harbor_yml: str | os.PathLike | None, dsn: str | None, what: str,
                      **kw) -> Iterator[str]:
    """``database`` for a command that cannot do without one."""
    with database(harbor_yml, dsn, **kw) as url:
        require_dsn(url, what)
        assert url is not None
        yield url
