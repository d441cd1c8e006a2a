"""Files and folders that name the installation: 0600 files in 0700 folders, written atomically.

The journal, the list of manifests missing before the run, reports and backups hold host
names, paths, user names and sometimes secrets of the installation: no other local user
reads them. ``check_writable`` is the check every command makes of its output locations
before it changes anything, so that a read-only folder is an error up front, not a
traceback after the work.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InvalidInput

FILE_MODE, DIR_MODE = 0o600, 0o700


def private_dir(path: str | os.PathLike) -> Path:
    """Create path (and missing parents) 0700; an existing folder is left as it is (it may be
    the operator's, e.g. a mount point), what we put in it is private anyway."""
    p = Path(path)
    if not p.is_dir():
        p.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        p.chmod(DIR_MODE)
    return p


def open_private(path: str | os.PathLike, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT) -> int:
    """A file descriptor of path, created 0600; an existing file is made 0600 too (older
    releases wrote 0644). Never through a symlink."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


class NoTempFile(OSError):
    """The temporary file beside the target could not be created: nothing was written."""


def write_temp_beside(path: Path, data: bytes, mode: int = FILE_MODE) -> str:
    """A new file beside path holding data, fsync'd, with mode (created 0600 until then); its
    name. It is the caller's to rename or link into place and remove; on failure it is gone."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    except OSError as err:
        raise NoTempFile(err.errno, err.strerror, err.filename) from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def replace_atomically(path: str | os.PathLike, data: bytes, mode: int = FILE_MODE) -> None:
    """Write beside path, then rename over it: readers see the old file or the new one, never
    a part. OSError (NoTempFile when nothing could be written) leaves path as it was."""
    path = Path(path)
    tmp = write_temp_beside(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: str | os.PathLike, data: str | bytes) -> None:
    """Replace path atomically with data, 0600, fsync'd."""
    replace_atomically(path, data.encode("utf-8") if isinstance(data, str) else data)


def check_writable(path: str | os.PathLike, what: str, *, is_dir: bool) -> None:
    """Refuse, before any work, an output location that cannot be written: a read-only
    folder, a missing parent, a folder where a file goes, no space for a small file.
    Creates nothing that stays."""
    p = Path(path)
    folder = p if is_dir else p.parent
    if not is_dir and p.is_dir():
        raise InvalidInput(f"{what} {p} is a folder, not a file", reference="output-unwritable")
    probe_in = next((d for d in [folder, *folder.parents] if d.exists()), None)
    if probe_in is None or not probe_in.is_dir():
        raise InvalidInput(f"{what} {p}: {probe_in} is not a folder", reference="output-unwritable")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".harbor-upgrade-probe-", dir=probe_in)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise InvalidInput(f"{what} {p} cannot be written: {probe_in}: {e.strerror}",
                           hint="choose a folder this user can write; nothing was changed",
                           reference="output-unwritable") from None
    if not is_dir and p.exists() and not os.access(p, os.W_OK):
        raise InvalidInput(f"{what} {p} cannot be written (permission denied)",
                           hint="choose a file this user can write; nothing was changed",
                           reference="output-unwritable")
