"""Stopping Harbor's stack the way Harbor's upgrade guide does (``docker compose down`` in
the harbor folder), with the database shut down clean first.

The services that use the database stop first; then PostgreSQL in harbor-db stops with a
fast shutdown from inside (its restart policy set to "no" so Docker does not start it
again when postgres exits); then ``down`` removes the stack's containers and network.
The data folders stay as they are.
"""
from __future__ import annotations

from pathlib import Path

from . import docker
from .database import JournalFn, _no_journal, shutdown_postgres
from .detect import ComposeInstallation
from .errors import HarborRunning, HarborStillRunning


def running_text(ci: ComposeInstallation) -> str:
    return ", ".join(f"{c.name} ({c.image})" for c in ci.running)


def refuse_running(ci: ComposeInstallation) -> None:
    if ci.running:
        raise HarborRunning(f"Harbor is running ({ci.compose_file}, project {ci.project}): {running_text(ci)}",
                            hint="stop it and run again, or pass --stop-harbor: harbor-upgrade then stops the stack "
                               "(clean database shutdown, then docker compose down) before it changes anything")


def stop_harbor(ci: ComposeInstallation, journal: JournalFn = _no_journal) -> list[str]:
    """Stop the stack; returns the containers that were running."""
    was = [c.name for c in ci.running]
    if not was:
        return []
    journal("harbor-stopping", containers=was, project=ci.project)
    d = Path(ci.harbor_dir)
    db = ci.services.get(ci.db_service or "")
    others = [s.name for s in ci.services.values()
              if s.name not in (ci.db_service, "log") and any(c.name == s.container_name for c in ci.running)]
    if others:
        docker.compose(d, ci.project, "stop", *others)
    clean = True
    if db:
        found = [c for c in ci.containers if c.name == db.container_name and c.running]
        if found:
            docker.run_docker("update", "--restart", "no", found[0].id, check=False)
            clean = shutdown_postgres(found[0].id)
    docker.compose(d, ci.project, "down")
    still = [c.name for c in docker.inspect(*[c.name for c in ci.containers]) if c.running]
    if still:
        raise HarborStillRunning(f"after docker compose down these containers still run: {', '.join(still)}",
                                 hint="stop them by hand, then run again")
    journal("harbor-stopped", containers=was, database_clean=clean)
    return was
