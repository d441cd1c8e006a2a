"""The Helm charts ChartMuseum holds: what Harbor 2.8 stops serving.

ChartMuseum (removed in Harbor 2.8) keeps one folder per project with the chart packages
in it (``<project>/<chart>-<version>.tgz``, its depth 1). Harbor's prepare gives it
``<data_volume>/chart_storage`` when the registry storage is a filesystem, and the
registry's own bucket and rootdirectory when it is S3 (beside the registry's ``docker``
folder). For the other drivers (Azure, GCS, Swift, OSS) the charts are not counted here.
Only reads: listings, never a file's content; names from storage are shown escaped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..terminal import printable
from .storage import StorageError

PACKAGE_SUFFIX = ".tgz"
#: the registry's own folder at the top of an S3 rootdirectory (not a project)
REGISTRY_FOLDER = "docker"


@dataclass
class ChartCount:
    where: str                    # the chart storage, for messages
    counted: bool                 # False: the storage could not be listed here (see ``problem``)
    projects: dict[str, int] = field(default_factory=dict)     # project folder -> chart packages
    problem: str | None = None

    @property
    def total(self) -> int:
        return sum(self.projects.values())

    def summary(self, limit: int = 5) -> str:
        if not self.counted:
            return f"charts in {self.where} not counted: {self.problem}"
        if not self.total:
            return f"no chart packages in {self.where}"
        names = sorted(self.projects, key=lambda p: (-self.projects[p], p))
        shown = ", ".join(f"{printable(p)} ({self.projects[p]})" for p in names[:limit])
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        return (f"{self.total} chart packages in {len(names)} projects in {self.where}: {shown}{more}")

    def to_dict(self) -> dict:
        return {"where": self.where, "counted": self.counted, "total": self.total,
                "projects": {printable(k): v for k, v in sorted(self.projects.items())}, "problem": self.problem}


def _packages(names: list[str]) -> int:
    return sum(1 for n in names if n.endswith(PACKAGE_SUFFIX))


def count_folder(folder: Path) -> ChartCount:
    """Chart packages per project folder below ``folder`` (no symbolic link followed)."""
    where = str(folder)
    if not folder.is_dir() or folder.is_symlink():
        return ChartCount(where, True) if not folder.exists() else ChartCount(
            where, False, problem="not a folder")
    out = ChartCount(where, True)
    try:
        with os.scandir(folder) as top:
            projects = [e for e in top if e.is_dir(follow_symlinks=False)]
        for entry in projects:
            with os.scandir(entry.path) as it:
                n = _packages([e.name for e in it if e.is_file(follow_symlinks=False)])
            if n:
                out.projects[entry.name] = n
    except OSError as e:
        return ChartCount(where, False, problem=f"cannot list it ({e.strerror or e})")
    return out


def count_s3(bucket: str, rootdirectory: str, **client: object) -> ChartCount:
    """Chart packages per project folder at the top of the registry's S3 rootdirectory."""
    from .s3 import S3Storage
    root = rootdirectory.strip("/")
    where = f"s3://{bucket}/{root}"
    try:
        storage = S3Storage(bucket, root, **client)  # type: ignore[arg-type]
    except StorageError as e:
        return ChartCount(where, False, problem=e.message)
    try:
        storage.prefix = f"{root}/" if root else ""   # ChartMuseum's prefix: the rootdirectory itself
        out = ChartCount(where, True)
        dirs, _ = storage.listdir("")
        for project in dirs:
            if project == REGISTRY_FOLDER:
                continue
            n = _packages(storage.listdir(project)[1])
            if n:
                out.projects[project] = n
        return out
    except StorageError as e:
        return ChartCount(where, False, problem=e.message)
    finally:
        storage.close()
