"""Describe a Docker Compose installation of Harbor from its folder.

Harbor's installer leaves docker-compose.yml beside harbor.yml (prepare renders it): one
service per component, images ``goharbor/<name>:<release tag>``, the database service
``postgresql`` (container ``harbor-db``) with ``<data_volume>/database`` mounted on its
PGDATA. What runs is asked of the Docker Engine: the containers named in that file and
their Compose project.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.reader import load_plain
from ..errors import HarborUpgradeError
from ..secrets import register
from . import docker
from .errors import ComposeFileInvalid

COMPOSE_FILE = "docker-compose.yml"
COMPOSE_MAX_BYTES = 1024 * 1024          # Harbor's generated file is some 10-20 KB
DB_MOUNT = "/var/lib/postgresql/data"
DB_IMAGE = "goharbor/harbor-db"


@dataclass
class Service:
    name: str
    image: str
    container_name: str
    volumes: list[tuple[str, str]]          # (host path, container path) of bind mounts

    @property
    def tag(self) -> str:
        repo, _, tag = self.image.rpartition(":")
        return tag if repo and "/" not in tag else "latest"


@dataclass
class ComposeInstallation:
    harbor_dir: str
    compose_file: str
    project: str
    services: dict[str, Service]
    containers: list[docker.Container]
    docker_error: str | None                # why the engine could not be asked (None: it answered)
    db_service: str | None                  # None: the database is external
    db_dir: str | None                      # host folder on the database container's PGDATA
    password: str | None = field(default=None, repr=False)
    docker_version: str | None = None       # the Docker Engine's

    @property
    def running(self) -> list[docker.Container]:
        return [c for c in self.containers if c.running]

    @property
    def db_image(self) -> str | None:
        return self.services[self.db_service].image if self.db_service else None

    @property
    def release(self) -> str | None:
        """The Harbor release of the images (harbor-core's tag, else harbor-db's): 'v1.10.6' -> '1.10.6'."""
        for svc in ("core", self.db_service):
            if svc and svc in self.services:
                m = re.match(r"v?(\d+\.\d+\.\d+)", self.services[svc].tag)
                if m:
                    return m.group(1)
        return None

    def to_dict(self) -> dict:
        d: dict = {"compose_file": self.compose_file, "project": self.project, "release": self.release,
                   "images": {s.name: s.image for s in self.services.values()},
                   "containers": [c.to_dict() for c in self.containers],
                   "running": [c.name for c in self.running], "docker_error": self.docker_error,
                   "docker_version": self.docker_version,
                   "database_service": self.db_service, "database_image": self.db_image,
                   "database_dir": self.db_dir}
        if self.db_dir:
            try:
                st = os.stat(self.db_dir)
                d["database_dir_owner"], d["database_dir_mode"] = st.st_uid, f"{st.st_mode & 0o777:04o}"
            except OSError as e:
                d["database_dir_owner"], d["database_dir_mode"] = None, f"unreadable: {e.strerror}"
        return d


def _bind_mounts(spec: Any, base: Path) -> list[tuple[str, str]]:
    out = []
    for v in spec or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2 and (parts[0].startswith(("/", "."))):
                out.append((str((base / parts[0]).resolve()) if parts[0].startswith(".") else parts[0], parts[1]))
        elif isinstance(v, dict) and v.get("type", "bind") == "bind" and v.get("source") and v.get("target"):
            src = str(v["source"])
            out.append((str((base / src).resolve()) if src.startswith(".") else src, str(v["target"])))
    return out


def read_services(compose_file: Path) -> dict[str, Service]:
    try:
        doc = load_plain(compose_file, COMPOSE_MAX_BYTES)     # the bounded reader harbor.yml goes through
    except HarborUpgradeError as e:
        raise ComposeFileInvalid(f"{compose_file} cannot be read as a Compose file: {e}") from None
    services = (doc or {}).get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict):
        raise ComposeFileInvalid(f"{compose_file} has no services: it is not the docker-compose.yml Harbor's "
                                 "prepare writes")
    out = {}
    for name, svc in services.items():
        if not isinstance(svc, dict):
            continue
        out[str(name)] = Service(str(name), str(svc.get("image") or ""), str(svc.get("container_name") or ""),
                                 _bind_mounts(svc.get("volumes"), compose_file.parent))
    return out


def default_project(harbor_dir: Path) -> str:
    """Compose's project name when none is given: the folder's name, lower case, letters,
    digits, '-' and '_' only (what v1 and v2 both derive)."""
    env = os.environ.get("COMPOSE_PROJECT_NAME")
    return env or re.sub(r"[^-_a-z0-9]", "", harbor_dir.name.lower())


def database_service(services: dict[str, Service]) -> tuple[str | None, str | None]:
    for s in services.values():
        if s.image.rpartition(":")[0].endswith(DB_IMAGE.split("/")[1]) or s.name == "postgresql":
            for host, inside in s.volumes:
                if inside.rstrip("/") == DB_MOUNT:
                    return s.name, host
            return s.name, None
    return None, None


def detect_compose(harbor_dir: str | os.PathLike, harbor_doc: dict) -> ComposeInstallation | None:
    """The Compose installation in harbor_dir (None when there is no docker-compose.yml).
    harbor_doc is harbor.yml's content: database.password is the harbor-db superuser's."""
    d = Path(harbor_dir).resolve()
    f = d / COMPOSE_FILE
    if not f.is_file():
        return None
    services = read_services(f)
    db_service, db_dir = database_service(services)
    containers: list[docker.Container] = []
    error = None
    engine = None
    try:
        engine = docker.daemon_version()
        names = [s.container_name for s in services.values() if s.container_name]
        # Harbor's container names are fixed: a container of that name made by Compose in another
        # folder belongs to another installation
        containers = [c for c in docker.inspect(*names)
                      if os.path.realpath(c.labels.get(docker.COMPOSE_WORKDIR) or d) == str(d)]
    except HarborUpgradeError as e:
        error = e.message
    projects = {p for c in containers if (p := c.labels.get(docker.COMPOSE_PROJECT)) is not None}
    project = sorted(projects)[0] if len(projects) == 1 else default_project(d)
    password = None
    db = harbor_doc.get("database")
    if db_service and isinstance(db, dict) and db.get("password") not in (None, ""):
        password = str(db["password"])
        register(password)
    return ComposeInstallation(str(d), str(f), project, services, containers, error, db_service, db_dir, password,
                               engine)
