"""Registry storage backends: the bytes under ``docker/registry/v2``, on a filesystem or S3.

Every path here is relative to ``<root>/docker/registry/v2/`` and uses ``/``. A backend
knows nothing of manifests or tags (that is ``layout``); it reads files, lists them, and
refuses any path that would leave the storage root.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from ..errors import HarborUpgradeError, InvalidInput

V2 = "docker/registry/v2"


class StorageError(HarborUpgradeError):
    reference = "storage-unreadable"


class ObjectMissing(StorageError):
    """A file (blob data, link) that the layout says should exist is not there."""
    reference = "storage-object-missing"


class GroupingUnsupported(StorageError):
    """The backend cannot group a listing by a delimiter (an S3-compatible service that only
    knows "/" or ignores it); the caller lists the files one by one instead."""
    reference = "storage-grouping-unsupported"


def safe_relpath(path: str) -> str:
    """Refuse paths that try to escape the storage root (``..``, absolute, empty parts)."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise InvalidInput(f"refused storage path {path!r}: not a relative path below the storage root",
                           reference="storage-path-refused")
    if "//" not in path and "/." not in path and not path.startswith("."):
        return path  # no empty, "." or ".." part is possible (the common case, checked cheaply)
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        raise InvalidInput(f"refused storage path {path!r}: it would leave the storage root",
                           reference="storage-path-refused")
    return path


class Storage(ABC):
    """Read-only access to one registry's storage."""

    #: where the storage is, for messages and reports (never holds credentials)
    description: str
    #: True when listing a folder tree costs less than checking its files one by one
    #: (object stores: one request lists 1000 keys, one request checks one)
    batch_listing: bool = False

    @abstractmethod
    def read(self, path: str) -> bytes:
        """The whole content of a file; ObjectMissing when there is none."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a file exists at path."""

    @abstractmethod
    def walk(self, prefix: str) -> Iterator[str]:
        """Every file below prefix (a folder path, '' for the root), recursively, in no set order."""

    def walk_grouped(self, prefix: str, delimiter: str) -> Iterator[tuple[str, bool]]:
        """The files below folder prefix, each file whose path after ``prefix/`` contains
        delimiter cut just after its first occurrence: ``(path, False)`` for a file without
        it, ``(head, True)`` once for every distinct head (which ends with delimiter).

        This is S3's ListObjectsV2 with a Delimiter, whose CommonPrefixes cost a fraction of a
        listed key; this default derives it from ``walk`` (in no set order)."""
        folder = prefix.strip("/")
        start = len(folder) + 1 if folder else 0
        heads: set[str] = set()
        for path in self.walk(folder):
            at = path.find(delimiter, start)
            if at < 0:
                yield path, False
                continue
            head = path[:at + len(delimiter)]
            if head not in heads:
                heads.add(head)
                yield head, True

    def size(self, path: str) -> int:
        return len(self.read(path))

    def read_head(self, path: str, length: int) -> bytes:
        """At most the first length bytes of a file (an icon sniff must not load a huge layer)."""
        return self.read(path)[:length]

    def listdir(self, prefix: str) -> tuple[list[str], list[str]]:
        """The (sub-folder names, file names) directly inside folder prefix, each sorted.

        The default derives them from ``walk``; backends with a cheaper one-level listing
        (a directory read, an S3 listing with a delimiter) override it.
        """
        folder = prefix.strip("/")
        dirs: set[str] = set()
        files: list[str] = []
        for path in self.walk(folder):
            rest = path[len(folder) + 1:] if folder else path
            head, sep, _ = rest.partition("/")
            (dirs.add(head) if sep else files.append(head))
        return sorted(dirs), sorted(files)

    def close(self) -> None:
        """Release connections; reading after close is an error."""


_CHUNK = 1 << 16


def _read_file(path: str) -> bytes:
    """A whole file through the bare system calls: half the cost of open() for the small
    link, manifest and config files a backfill reads by the hundred thousand."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data  # a short read of a regular file is its end
        chunks = [data]
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class FilesystemStorage(Storage):
    """The filesystem driver's layout: ``<rootdirectory>/docker/registry/v2``."""

    def __init__(self, rootdirectory: str | os.PathLike):
        self.root = Path(rootdirectory)
        self.v2 = self.root / V2
        self.description = str(self.root)
        if not self.v2.is_dir():
            raise StorageError(f"{self.root} is not a registry storage root: {self.v2} is not a folder",
                               hint="pass the folder that holds docker/registry/v2 "
                                    "(the registry's rootdirectory, by default <data_volume>/registry)")

    def _abs(self, path: str) -> str:
        # plain strings: a backfill opens hundreds of thousands of small files
        return f"{self.v2}/{safe_relpath(path)}"

    def read(self, path: str) -> bytes:
        try:
            return _read_file(self._abs(path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectMissing(f"{path} is missing in {self.description}") from None
        except PermissionError as e:
            raise StorageError(f"cannot read {path} in {self.description}: {e.strerror}") from None

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._abs(path))

    def read_head(self, path: str, length: int) -> bytes:
        try:
            with open(self._abs(path), "rb") as f:
                return f.read(length)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectMissing(f"{path} is missing in {self.description}") from None
        except PermissionError as e:
            raise StorageError(f"cannot read {path} in {self.description}: {e.strerror}") from None

    def size(self, path: str) -> int:
        try:
            return os.stat(self._abs(path)).st_size
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectMissing(f"{path} is missing in {self.description}") from None

    def listdir(self, prefix: str) -> tuple[list[str], list[str]]:
        folder = prefix.strip("/")
        base = self.v2 / safe_relpath(folder) if folder else self.v2
        dirs, files = [], []
        try:
            with os.scandir(base) as it:
                for entry in it:
                    # a symbolic link could lead out of the storage root: never descend into one
                    if entry.is_dir(follow_symlinks=False):
                        dirs.append(entry.name)
                    elif entry.is_file(follow_symlinks=False):
                        files.append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return sorted(dirs), sorted(files)

    def walk(self, prefix: str) -> Iterator[str]:
        base = self.v2 / safe_relpath(prefix.rstrip("/")) if prefix else self.v2
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.v2).replace(os.sep, "/")
            for f in files:
                yield f if rel == "." else f"{rel}/{f}"
