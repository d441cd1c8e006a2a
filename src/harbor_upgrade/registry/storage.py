"""Registry storage backends: the bytes under ``docker/registry/v2``, on a filesystem or S3.

Every path here is relative to ``<root>/docker/registry/v2/`` and uses ``/``. A backend
knows nothing of manifests or tags (that is ``layout``); it reads files, lists them, and
refuses any path that would leave the storage root.
"""
from __future__ import annotations

import errno
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import HarborUpgradeError, InvalidInput

V2 = "docker/registry/v2"


class StorageError(HarborUpgradeError):
    """Registry storage cannot be read (a listing or a request failed, a server stopped answering); nothing is
    lost: rerun with --resume."""
    reference = "storage-unreadable"


class ObjectMissing(StorageError):
    """A file (blob data, link) that the layout says should exist is not there."""
    reference = "storage-object-missing"


class ObjectUnreadable(StorageError):
    """One stored object that exists but is not used: not a regular file, a symbolic link,
    outside the storage root, too large, or refused by the system (a loop, a name too long,
    no permission). A problem of that object, never of the whole storage."""
    reference = "storage-object-unreadable"


class ObjectTooLarge(ObjectUnreadable):
    """An object larger than what may be read of it (a manifest, config or link)."""
    reference = "storage-object-too-large"


class GroupingUnsupported(StorageError):
    """The backend cannot group a listing by a delimiter (an S3-compatible service that only
    knows "/" or ignores it); the caller lists the files one by one instead."""
    reference = "storage-grouping-unsupported"


#: The most read of one object. distribution refuses a manifest over 4 MiB on push
#: (maxManifestBodySize) and container tools refuse a config over 4 MiB, so nothing the
#: registry accepted is larger; a bigger object is reported as too large, never loaded.
MAX_OBJECT = 4 << 20
#: A link file holds exactly one digest (at most 135 bytes); more is not a link.
MAX_LINK = 1024


def size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n:,} bytes"


def too_large(path: str, where: str, limit: int, size: int | None = None) -> ObjectTooLarge:
    told = f" ({size:,} bytes)" if size is not None else ""
    return ObjectTooLarge(f"{path} in {where} is larger than {size_text(limit)}{told}: not read")


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
    def read(self, path: str, limit: int = MAX_OBJECT) -> bytes:
        """The whole content of a file of at most limit bytes; ObjectMissing when there is
        none, ObjectTooLarge when it is larger (never more than limit + 1 bytes are read),
        ObjectUnreadable when the file cannot be used."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a file exists at path."""

    def exists_many(self, paths: Iterable[str]) -> Iterator[bool]:
        """``exists`` of each path, in order (a backend may answer many for less than one by one)."""
        for path in paths:
            yield self.exists(path)

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

    @abstractmethod
    def size(self, path: str) -> int:
        """The size of a file; ObjectMissing when there is none."""

    @abstractmethod
    def read_head(self, path: str, length: int) -> bytes:
        """At most the first length bytes of a file (an icon sniff must not load a huge layer)."""

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

    def close(self) -> None:  # noqa: B027 - a hook: storages that hold no connections keep this one
        """Release connections; reading after close is an error."""


# Every open below the root: never through a symbolic link at the end (O_NOFOLLOW), never
# blocking on a FIFO or a device (O_NONBLOCK), never taking a terminal (O_NOCTTY).
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
_STAT_FLAGS = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW
_DIR_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_NONBLOCK
_FIRST_READ = 1 << 16
_PROC_FD = "/proc/self/fd"
_HELD_FOLDERS = 256   # folders exists_many keeps open at once


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link (not followed)")):
        if test(mode):
            return name
    return "not a regular file"


class FilesystemStorage(Storage):
    """The filesystem driver's layout: ``<rootdirectory>/docker/registry/v2``.

    Every file and folder is opened below the root without following a symbolic link at the
    end of its path, and is used only when the opened file's real path is still below the
    root (a folder on the way that is a symbolic link out of the root is refused) and it is
    a regular file (folders: a folder). Reads are bounded (``Storage.read``). Whatever the
    system refuses (a loop, a name too long, no permission) is ``ObjectUnreadable`` for
    that object alone.
    """

    def __init__(self, rootdirectory: str | os.PathLike):
        self.root = Path(rootdirectory)
        self.v2 = self.root / V2
        self.description = str(self.root)
        if not self.v2.is_dir():
            raise StorageError(f"{self.root} is not a registry storage root: {self.v2} is not a folder",
                               hint="pass the folder that holds docker/registry/v2 "
                                    "(the registry's rootdirectory, by default <data_volume>/registry)")
        # the root as the system resolves it: every path is opened below it and checked against it
        self._base = os.path.realpath(self.v2)
        self._below = self._base.rstrip("/") + "/"
        self._proc = os.path.isdir(_PROC_FD)

    def _abs(self, path: str) -> str:
        # plain strings: a backfill opens hundreds of thousands of small files
        return f"{self._base}/{safe_relpath(path)}"

    # ------------------------------------------------------------------ opening
    def _open(self, path: str, flags: int) -> tuple[int, os.stat_result]:
        """An open descriptor of path below the root and its status; ObjectMissing,
        ObjectUnreadable (the caller checks the kind of file)."""
        try:
            fd = os.open(self._abs(path), flags)
        except FileNotFoundError:
            raise ObjectMissing(f"{path} is missing in {self.description}") from None
        except NotADirectoryError:
            if flags & os.O_DIRECTORY and self._is_symlink(path):  # O_NOFOLLOW|O_DIRECTORY says ENOTDIR
                raise ObjectUnreadable(f"cannot read {path} in {self.description}: "
                                       "a symbolic link (not followed)") from None
            raise ObjectMissing(f"{path} is missing in {self.description}") from None
        except OSError as e:
            raise self._refused(path, e) from None
        try:
            st = os.fstat(fd)
            self._check_below(fd, path)
        except OSError as e:
            os.close(fd)
            raise self._refused(path, e) from None
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    def _is_symlink(self, path: str) -> bool:
        try:
            return stat.S_ISLNK(os.lstat(self._abs(path)).st_mode)
        except OSError:
            return False

    def _refused(self, path: str, e: OSError) -> ObjectUnreadable:
        if e.errno == errno.ELOOP:
            why = "a symbolic link (not followed) or a loop of them"
        elif e.errno == errno.ENAMETOOLONG:
            why = "its path is too long for the system"
        else:
            why = e.strerror or str(e)
        return ObjectUnreadable(f"cannot read {path} in {self.description}: {why}")

    def _check_below(self, fd: int, path: str) -> None:
        """The opened file is below the root: a folder on its path may be a symbolic link,
        and one that leads out of the root is refused."""
        if self._proc:
            real = os.readlink(f"{_PROC_FD}/{fd}")
        else:  # no /proc: resolve the path itself (what was opened is what it names now)
            real = os.path.realpath(self._abs(path))
        if not real.startswith(self._below):
            raise ObjectUnreadable(f"{path} in {self.description} leads outside the storage root "
                                   "(through a symbolic link): not read")

    def _open_file(self, path: str) -> tuple[int, os.stat_result]:
        fd, st = self._open(path, _READ_FLAGS)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise self._not_file(path, st)
        return fd, st

    def _not_file(self, path: str, st: os.stat_result) -> StorageError:
        if stat.S_ISDIR(st.st_mode):  # what distribution's driver says of a folder read as a file
            return ObjectMissing(f"{path} is missing in {self.description} (a folder is there)")
        return ObjectUnreadable(f"{path} in {self.description} is {_kind(st.st_mode)}, not a regular file: not read")

    # ------------------------------------------------------------------ Storage
    def read(self, path: str, limit: int = MAX_OBJECT) -> bytes:
        fd, st = self._open_file(path)
        try:
            if st.st_size > limit:
                raise too_large(path, self.description, limit, st.st_size)
            try:
                data = os.read(fd, min(limit + 1, _FIRST_READ))
                if len(data) < _FIRST_READ:
                    chunks = [data]  # a short read of a regular file is its end
                else:
                    chunks, got = [data], len(data)
                    while got <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - got))):
                        chunks.append(chunk)
                        got += len(chunk)
                data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
            except OSError as e:
                raise self._refused(path, e) from None
            if len(data) > limit:  # it grew while read
                raise too_large(path, self.description, limit)
            return data
        finally:
            os.close(fd)

    def read_head(self, path: str, length: int) -> bytes:
        fd, _st = self._open_file(path)
        try:
            chunks, got = [], 0
            while got < length and (chunk := os.read(fd, min(1 << 20, length - got))):
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks)
        except OSError as e:
            raise self._refused(path, e) from None
        finally:
            os.close(fd)

    def size(self, path: str) -> int:
        fd, st = self._open(path, _STAT_FLAGS)
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise self._not_file(path, st)
        return st.st_size

    def exists(self, path: str) -> bool:
        """A regular file below the root (anything else, or what cannot be opened, is not)."""
        try:
            fd, st = self._open(path, _STAT_FLAGS)
        except StorageError:
            return False
        os.close(fd)
        return stat.S_ISREG(st.st_mode)

    def exists_many(self, paths: Iterable[str]) -> Iterator[bool]:
        """``exists`` of each path, for a fraction of its system calls: the folder two levels above
        each path (a repository's ``_manifests/revisions/sha256``, a blob prefix ``blobs/sha256/ab``)
        is opened and proved below the root once, kept open for the paths that follow, and the rest
        of a path is taken below it without following any symbolic link (the same answer: a regular
        file below the root; a path it cannot settle so, through a symbolic link, goes to ``exists``)."""
        folders: dict[str, int | None] = {}     # folder -> its descriptor; None: missing; -1: use exists
        try:
            for path in paths:
                yield self._exists_below(path, folders)
        finally:
            for fd in folders.values():
                if fd is not None and fd >= 0:
                    os.close(fd)

    def _exists_below(self, path: str, folders: dict[str, int | None]) -> bool:
        parts = safe_relpath(path).rsplit("/", 2)
        if len(parts) < 3 or parts[1] in ("", ".", ".."):
            return self.exists(path)
        folder, middle, leaf = parts
        if folder in folders:
            fd = folders[folder]
        else:
            if len(folders) >= _HELD_FOLDERS:   # the oldest goes (blob prefixes are opened again, cheaply)
                oldest = next(iter(folders))
                held = folders.pop(oldest)
                if held is not None and held >= 0:
                    os.close(held)
            try:
                fd, _st = self._open(folder, _DIR_FLAGS)
            except ObjectMissing:
                fd = None   # not there, not a folder: nothing below it exists (what exists says)
            except StorageError:
                fd = -1     # a symbolic link on the way (exists follows it when it stays below the root)
            folders[folder] = fd
        if fd is None:
            return False
        if fd < 0:
            return self.exists(path)
        try:
            below = os.open(middle, _STAT_FLAGS | os.O_DIRECTORY, dir_fd=fd)
        except FileNotFoundError:
            return False
        except OSError:   # a symbolic link, a file, refused: exists settles it
            return self.exists(path)
        try:
            st = os.stat(leaf, dir_fd=below, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError:
            return self.exists(path)
        finally:
            os.close(below)
        return stat.S_ISREG(st.st_mode)

    def listdir(self, prefix: str) -> tuple[list[str], list[str]]:
        """Folders and regular files directly in folder prefix (nothing when it is missing);
        symbolic links are neither. ObjectUnreadable when the folder cannot be listed."""
        folder = prefix.strip("/")
        try:
            fd, st = self._open(folder, _DIR_FLAGS) if folder else self._open_root()
        except ObjectMissing:
            return [], []
        dirs, files = [], []
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    # a symbolic link could lead out of the storage root: never descend into one
                    if entry.is_dir(follow_symlinks=False):
                        dirs.append(entry.name)
                    elif entry.is_file(follow_symlinks=False):
                        files.append(entry.name)
        except OSError as e:
            raise self._refused(folder or "/", e) from None
        finally:
            os.close(fd)
        return sorted(dirs), sorted(files)

    def _open_root(self) -> tuple[int, os.stat_result]:
        fd = os.open(self._base, _DIR_FLAGS & ~os.O_NOFOLLOW)
        return fd, os.fstat(fd)

    def walk(self, prefix: str) -> Iterator[str]:
        """Depth first through listdir: the same checks, no symbolic link followed; a folder
        that cannot be listed is left out (``listdir`` reports it to those who ask)."""
        stack = [prefix.strip("/")]
        while stack:
            folder = stack.pop()
            try:
                dirs, files = self.listdir(folder)
            except ObjectUnreadable:
                continue
            for f in files:
                yield f"{folder}/{f}" if folder else f
            stack.extend(f"{folder}/{d}" if folder else d for d in reversed(dirs))
