"""The Docker Engine through its command-line client, and Compose v2 or v1.

Every call goes through ``docker``: arguments never carry a secret (a password reaches a
container only as ``-e NAME`` taken from our own environment), and what the client
prints is masked before it appears in an error.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..secrets import mask_text
from .errors import DockerFailed, DockerUnavailable

# Labels on everything harbor-upgrade starts: a rerun finds what a killed run left behind.
LABEL_OWNER = "org.harbor-upgrade.owner"
LABEL_DATADIR = "org.harbor-upgrade.datadir"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_WORKDIR = "com.docker.compose.project.working_dir"


def docker_binary() -> str:
    found = shutil.which("docker")
    if not found:
        raise DockerUnavailable("the docker command is not installed: a Compose installation is operated through it",
                                hint="install Docker's CLI (Debian: apt-get install docker.io)")
    return found


def run_docker(*args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 300,
               what: str | None = None) -> subprocess.CompletedProcess:
    """``docker ARGS``; a failure is an ExternalFailure naming what was attempted."""
    cmd = [docker_binary(), *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DockerFailed(f"docker {args[0]} did not finish within {timeout:.0f}s"
                           + (f" ({what})" if what else "")) from None
    if check and r.returncode != 0:
        out = (r.stderr or r.stdout).strip()[-1500:]
        if "Cannot connect to the Docker daemon" in out or "Is the docker daemon running" in out:
            raise DockerUnavailable(f"the Docker daemon does not answer: {mask_text(out)}",
                                    hint="start Docker (systemctl start docker), then run again")
        raise DockerFailed(f"{what or 'docker ' + args[0]} failed: {mask_text(out)}")
    return r


def daemon_version() -> str:
    """The Docker Engine's version (its daemon must answer)."""
    return run_docker("version", "--format", "{{.Server.Version}}", timeout=30).stdout.strip()


def daemon_answers() -> bool:
    try:
        daemon_version()
    except (DockerUnavailable, DockerFailed):
        return False
    return True


@lru_cache(maxsize=1)
def compose_command() -> tuple[str, ...]:
    """``docker compose`` (v2) when the plugin is installed, else ``docker-compose`` (v1)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 stdin=subprocess.DEVNULL).returncode == 0:
        return (docker, "compose")
    v1 = shutil.which("docker-compose")
    if v1:
        return (v1,)
    raise DockerUnavailable("neither `docker compose` (v2) nor `docker-compose` (v1) is installed",
                            hint="install Docker Compose (Debian: apt-get install docker-compose)")


def compose(project_dir: Path, project: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Compose on the installation's own file and project, from its folder (as install.sh runs it)."""
    cmd = [*compose_command(), "-f", str(project_dir / "docker-compose.yml"), "-p", project, *args]
    r = subprocess.run(cmd, cwd=project_dir, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        tool = "docker compose" if len(compose_command()) == 2 else "docker-compose"
        raise DockerFailed(f"{tool} {' '.join(args)} in {project_dir} failed: "
                           f"{mask_text((r.stderr or r.stdout).strip()[-1500:])}")
    return r


@dataclass
class Mount:
    source: str
    destination: str


@dataclass
class Container:
    id: str
    name: str
    image: str
    state: str                       # running, exited, restarting, created, ...
    labels: dict[str, str] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    pid1_command: str = ""
    restart_policy: str = ""

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting", "paused")

    def to_dict(self) -> dict:
        return {"name": self.name, "image": self.image, "state": self.state,
                "service": self.labels.get(COMPOSE_SERVICE)}


def _container(d: dict) -> Container:
    cfg = d.get("Config") or {}
    entry = (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or [])
    return Container(id=d["Id"], name=d["Name"].lstrip("/"), image=cfg.get("Image", ""),
                     state=(d.get("State") or {}).get("Status", "unknown"), labels=cfg.get("Labels") or {},
                     mounts=[Mount(m.get("Source", ""), m.get("Destination", "")) for m in d.get("Mounts") or []],
                     pid1_command=" ".join(entry),
                     restart_policy=((d.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name", ""))


def inspect(*names_or_ids: str) -> list[Container]:
    """The containers that exist among names_or_ids (missing ones are left out)."""
    if not names_or_ids:
        return []
    r = run_docker("container", "inspect", *names_or_ids, check=False)
    try:
        data = json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        data = []
    if r.returncode != 0 and not data and "No such" not in (r.stderr or ""):
        run_docker("container", "inspect", *names_or_ids)  # raises with the client's message
    return [_container(d) for d in data]


def all_containers(*filters: str) -> list[Container]:
    """Every container of the engine (running or not), optionally filtered (``label=K=V``)."""
    args = ["ps", "-a", "-q", "--no-trunc"] + [a for f in filters for a in ("--filter", f)]
    ids = run_docker(*args).stdout.split()
    return inspect(*ids) if ids else []


def _within(path: str, folder: Path) -> bool:
    p = Path(path)
    return p == folder or folder in p.parents or p in folder.parents


def mounting(folder: Path) -> list[Container]:
    """Containers of any project (running or not) that mount folder, a folder inside it, or one above it."""
    folder = Path(os.path.realpath(folder))
    return [c for c in all_containers() if any(_within(os.path.realpath(m.source), folder) for m in c.mounts)]


def image_exists(image: str) -> bool:
    return run_docker("image", "inspect", image, check=False).returncode == 0


def published_port(container: str, port: str = "5432/tcp") -> tuple[str, int]:
    """(host address, port) where a container's port is published."""
    r = run_docker("port", container, port)
    line = r.stdout.strip().splitlines()[0]
    host, _, number = line.rpartition(":")
    return host.strip("[]"), int(number)
