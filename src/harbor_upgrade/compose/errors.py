"""The errors of a Docker Compose installation (each class's docstring is its README line)."""
from __future__ import annotations

from ..errors import ExternalFailure, InvalidInput, UnsafeState


class ComposeFileInvalid(InvalidInput):
    """docker-compose.yml beside harbor.yml cannot be read as the Compose file Harbor's prepare writes."""
    reference = "compose-file-invalid"


class ComposeNoDatabase(InvalidInput):
    """The Compose file has no harbor-db service with its data folder mounted (the database is external)."""
    reference = "compose-no-database"


class DatabasePasswordMissing(InvalidInput):
    """harbor.yml has no database.password, so harbor-db's superuser cannot be reached."""
    reference = "database-password-missing"


class DatabaseFolderMissing(InvalidInput):
    """harbor-db's data folder (data_volume/database) does not exist on this machine."""
    reference = "database-folder-missing"


class EngineCompose(InvalidInput):
    """--engine-bindir on a Compose installation: the engine is left to the target release's harbor-db."""
    reference = "engine-compose"


class HarborRunning(UnsafeState):
    """Harbor's containers run: stop them, or pass --stop-harbor; nothing was changed."""
    reference = "harbor-running"


class HarborStillRunning(UnsafeState):
    """Containers of Harbor still run after docker compose down."""
    reference = "harbor-still-running"


class DatabaseFolderInUse(UnsafeState):
    """A running container (any project) mounts harbor-db's data folder; a second server would corrupt it."""
    reference = "database-folder-in-use"


class NotLoopback(UnsafeState):
    """Docker published harbor-db's port beyond 127.0.0.1; it was stopped."""
    reference = "not-loopback"


class DockerUnavailable(ExternalFailure):
    """The docker command, Docker Compose or the Docker daemon is missing or does not answer."""
    reference = "docker-unavailable"


class DockerFailed(ExternalFailure):
    """A docker or docker compose command failed (its output is quoted, secrets masked)."""
    reference = "docker-failed"


class DatabaseImageMissing(ExternalFailure):
    """The installation's harbor-db image is not on this machine (docker load it from the installer)."""
    reference = "database-image-missing"


class DatabaseStartFailed(ExternalFailure):
    """harbor-db started alone did not answer on 127.0.0.1 (its log is quoted); it was removed."""
    reference = "database-start-failed"


class DatabaseStopUnclean(ExternalFailure):
    """PostgreSQL in harbor-db did not shut down clean; its next start runs crash recovery."""
    reference = "database-stop-unclean"


class DatabaseLayoutMismatch(UnsafeState):
    """The data folder holds a cluster where the installation's harbor-db image does not look for one
    (e.g. pg13/ after a newer release's first start): that image would initialise an empty cluster."""
    reference = "database-layout-mismatch"
