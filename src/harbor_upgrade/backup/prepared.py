"""The data folder copied while its server still runs (``run --prepare``), finished in the stop
window at the cost of what changed since: PostgreSQL's documented recipe for a file system
level backup ("copy while the server runs, then stop it and copy again with --checksum": a
copy taken live may be torn, the second pass makes it exact).

Prepare (``prepare_datadir``): the running cluster's folders and regular files are copied
into ``<backup-dir>/prepared-datadir/copy`` and, from the same buffers, into its twin
``twin`` (the folder the throwaway server proving the backup will run on), and the size and
sha256 of every byte written to each file, and the sha256 of each MiB of it, are recorded in
``record``. A file the server
removes while it is copied is left out (the window copies it if it is back). A data folder
holding a symlink or anything but folders and regular files is not prepared (the backup
copies no such folder; see ``datadir``).

The record is hostile input when read back, as the prefetch is: every line carries an
HMAC-SHA256 chained over the line before it under the backup key kept outside the folder;
the header names the format, the tool's version, the key, the data folder and its
PG_VERSION; the last line the count. The copy is never trusted without it: a record that is
missing, damaged, signed with another key, made by another version or for another folder,
or a copy or twin whose files differ from it (a symlink, a hard link, a file added, removed
or of another size) makes the window copy the folder in full, with a message saying why.

Window (``take_prepared`` then ``datadir.finish_prepared``): once the server has stopped
clean, the record is removed first (a window cut short leaves no record to trust: the next
run copies in full), the copy is renamed to the backup's ``files/datadir`` and the twin into
a scratch folder, then every file of the stopped folder is read and hashed: a file whose
size and sha256 differ from the record (or that it lacks) is written again into the copy and
the twin from the same buffers, files and folders gone from the source are removed, owner,
mode and times set as a fresh copy would. The result is byte for byte the copy a full copy
of the stopped folder gives; the backup's proof follows as after a full copy.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import UnsafeState
from ..journal import now_iso
from ..postgres.layout import read_pg_version
from ..private import private_dir
from .datadir import recycled_wal
from .files import PART, copy_tree, scan_tree, tree_problems
from .manifest import backup_key

PREPARED_FOLDER = "prepared-datadir"
COPY = "copy"
TWIN = "twin"
RECORD = "record"
PREPARED_FORMAT = 1
_MAX_LINE = 4 << 20   # a file's line: its path, size, sha256 and the sha256 of each MiB (1 GiB: 36 KB)
_AREA = "datadir"


def prepared_folder(backup_dir: Path) -> Path:
    return Path(backup_dir) / PREPARED_FOLDER


def _mac(key: bytes, previous: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"prepared-datadir\n" + previous + b"\n" + body, hashlib.sha256).hexdigest().encode()


@dataclass
class PreparedReport:
    path: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"path": self.path, "files": self.files, "bytes": self.bytes, "seconds": round(self.seconds, 3)}


def remove_prepared(backup_dir: Path) -> bool:
    """Remove the prepared copy of backup_dir (the record first); whether there was one."""
    folder = prepared_folder(backup_dir)
    if not os.path.lexists(folder):
        return False
    if folder.is_symlink() or not folder.is_dir():
        folder.unlink()
        return True
    (folder / RECORD).unlink(missing_ok=True)
    shutil.rmtree(folder)
    return True


def prepare_datadir(datadir: Path, backup_dir: Path, jobs: int, say: Callable[[str], None],
                    controldata: dict[str, str] | None = None) -> PreparedReport:
    """Copy the data folder of a running server into the backup folder with its twin, and
    record what was written (module doc). An earlier prepared copy is replaced. controldata
    (of the running cluster): WAL segments named past its latest checkpoint's are left out —
    recycled ones (the window leaves them out too) or ones the server writes next (copied in the
    window, whole)."""
    t0 = time.monotonic()
    datadir = Path(datadir).resolve()
    folder = prepared_folder(backup_dir)
    if remove_prepared(backup_dir):
        say(f"removed the copy an earlier run --prepare left in {folder}")
    key, key_id = _key(create=True)
    entries, other = scan_tree(datadir, _AREA, live=True)
    if other:
        raise UnsafeState(f"{datadir} holds entries that are neither folders nor regular files: "
                          + ", ".join(other[:10]) + " (a pg_wal or tablespace symlink is not followed)",
                          reference="datadir-has-links")
    ahead = {e.path for e in recycled_wal(entries, controldata or {})}
    entries = [e for e in entries if e.path not in ahead]
    private_dir(folder)
    size = sum(e.size for e in entries)
    say(f"copying {datadir} while its server runs ({size / 2**20:,.0f} MiB in {len(entries):,} entries, {jobs} "
        f"threads; sha256 of what is written recorded; {len(ahead)} WAL segments past the latest checkpoint's left "
        "out) into its copy and the twin the window's proof runs on")
    parts: dict[str, list[str]] = {}
    copied = copy_tree(entries, datadir, folder / COPY, jobs, durable=True, also=folder / TWIN, live=True,
                       parts=parts)
    files = [e for e in copied if e.type == "file"]
    header = {"format": PREPARED_FORMAT, "tool": __version__, "key": key_id, "datadir": str(datadir),
              "pg_version": read_pg_version(datadir), "created": now_iso()}
    tmp = folder / f".{RECORD}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        previous = b""
        for kind, body in ([("H", header)] + [("F", [e.path, e.size, e.sha256, parts[e.path]]) for e in files]
                           + [("E", {"files": len(files)})]):
            content = kind.encode() + b"\t" + json.dumps(body, sort_keys=True).encode()
            mac = _mac(key, previous, content)
            out.write(mac + b"\t" + content + b"\n")
            previous = mac
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, folder / RECORD)
    _fsync_dir(folder)
    report = PreparedReport(str(folder), len(files), sum(e.size for e in files), time.monotonic() - t0)
    say(f"copied {report.files:,} files ({report.bytes / 2**20:,.0f} MiB) in {report.seconds:.1f}s")
    return report


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _key(create: bool) -> tuple[bytes, str]:
    keyed = backup_key(create=create)
    if keyed is None:
        raise _Unusable("there is no backup key on this machine to prove its record authentic")
    return keyed


class _Unusable(Exception):
    """Why a prepared copy cannot be used."""


@dataclass
class Prepared:
    """A prepared copy whose record was proved and whose files match it, not yet taken."""
    folder: Path
    header: dict
    files: dict[str, tuple[int, str, list[str]]] = field(default_factory=dict)   # size, sha256, parts

    @property
    def copy(self) -> Path:
        return self.folder / COPY

    @property
    def twin(self) -> Path:
        return self.folder / TWIN

    def consume(self) -> None:
        """The record removed (on disk) before the copy is changed: never trusted twice."""
        (self.folder / RECORD).unlink()
        _fsync_dir(self.folder)


def _read_record(path: Path) -> tuple[dict, dict[str, tuple[int, str, list[str]]]]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _Unusable(f"{path.name} is missing (a run --prepare cut short, or a window begun)") from None
    except OSError as e:
        raise _Unusable(f"{path} cannot be read: {e.strerror}") from None
    key, key_id = _key(create=False)
    header: dict | None = None
    end: dict | None = None
    files: dict[str, tuple[int, str, list[str]]] = {}
    previous = b""
    with os.fdopen(fd, "rb") as f:
        if not os.path.isfile(path) or os.path.islink(path):
            raise _Unusable(f"{path} is not a regular file")
        number = 0
        while raw := f.readline(_MAX_LINE + 1):
            number += 1
            where = f"{path} line {number}"
            if len(raw) > _MAX_LINE or not raw.endswith(b"\n"):
                raise _Unusable(f"{where} is too long or cut short: damaged")
            mac, sep, content = raw[:-1].partition(b"\t")
            if not sep or not hmac.compare_digest(mac, _mac(key, previous, content)):
                raise _Unusable(f"{where}: its HMAC does not match (changed, damaged, or signed with another key "
                                f"than this machine's {key_id})")
            previous = mac
            kind, _, body = content.partition(b"\t")
            try:
                value = json.loads(body)
            except ValueError:
                raise _Unusable(f"{where} is not JSON: damaged") from None
            if end is not None:
                raise _Unusable(f"{where} follows the last line: damaged")
            if number == 1:
                if kind != b"H" or not isinstance(value, dict):
                    raise _Unusable(f"{where} is not a header")
                header = value
            elif kind == b"F" and _file_value(value) and value[0] not in files:
                files[value[0]] = (value[1], value[2], value[3])
            elif kind == b"E" and isinstance(value, dict):
                end = value
            else:
                raise _Unusable(f"{where} is not a file record: damaged")
    if header is None or end is None or end.get("files") != len(files):
        raise _Unusable(f"{path} is incomplete: damaged")
    return header, files


def _file_value(v) -> bool:
    """[path, size, sha256, the sha256 of each PART]: a relative path, one digest a PART."""
    if not (isinstance(v, list) and len(v) == 4 and isinstance(v[0], str) and type(v[1]) is int and v[1] >= 0
            and isinstance(v[2], str) and len(v[2]) == 64 and isinstance(v[3], list)
            and len(v[3]) == -(-v[1] // PART) and all(isinstance(d, str) and len(d) == 64 for d in v[3])):
        return False
    parts = v[0].split("/")
    return all(p not in ("", ".", "..") and "\0" not in p for p in parts)


def take_prepared(backup_dir: Path, datadir: Path, say: Callable[[str], None]) -> Prepared | None:
    """The prepared copy of datadir in backup_dir, its record proved and its copy and twin
    equal to it; None when there is none — or when it cannot be used: then it is removed and
    a message says why (the window copies the folder in full)."""
    folder = prepared_folder(backup_dir)
    if not os.path.lexists(folder):
        return None
    try:
        if folder.is_symlink() or not folder.is_dir():
            raise _Unusable(f"{folder} is not a folder")
        header, files = _read_record(folder / RECORD)
        datadir = Path(datadir).resolve()
        for name, want in (("format", PREPARED_FORMAT), ("tool", __version__), ("datadir", str(datadir)),
                           ("pg_version", read_pg_version(datadir))):
            if header.get(name) != want:
                raise _Unusable(f"it was made for {name} {header.get(name)!r}, not {want!r}")
        sizes = {p: s for p, (s, _d, _parts) in files.items()}
        for sub in (COPY, TWIN):
            root = folder / sub
            if root.is_symlink() or not root.is_dir():
                raise _Unusable(f"{root} is not a folder")
            problems = tree_problems(root, sizes)
            if problems:
                raise _Unusable(f"{root} differs from its record: " + "; ".join(problems[:3]))
    except (_Unusable, UnsafeState, OSError) as e:
        why = e.message if isinstance(e, UnsafeState) else str(e)
        say(f"the data folder copy run --prepare left in {folder} cannot be used ({why}): it is removed and the "
            "data folder copied in full")
        remove_prepared(backup_dir)
        return None
    return Prepared(folder, header, files)
