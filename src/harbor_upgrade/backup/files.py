"""Copying files into a backup and putting them back, never through a symlink.

Restore runs as root into folders other users (Harbor's containers) can write, from a backup
that is hostile input. So every write goes through file descriptors of folders opened one
component at a time with O_NOFOLLOW (openat-style): a symlink met on the way is an error,
never followed. Folders are made first, then files (written to a temporary name, owner, mode
and time set on the open descriptor, renamed over the old entry), symlinks last; folder
owners, modes and times are set deepest first through their own descriptors. Reading the
backup's copies is bounded the same way: regular files only, no symlink, no FIFO.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnsafeState
from .manifest import FileEntry

CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_regular(path: str | os.PathLike, dir_fd: int | None = None) -> int:
    """A read descriptor of a regular file, never of a symlink, FIFO or device."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def sha256_of(path: str | os.PathLike, dir_fd: int | None = None) -> str:
    h = hashlib.sha256()
    with os.fdopen(open_regular(path, dir_fd), "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def copy_hashing(src: Path, dst: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(open_regular(src), "rb") as fin, os.fdopen(fd, "wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            fout.write(chunk)
    return size, h.hexdigest()


def walk(root: Path, skip: Callable[[Path, os.stat_result], str | None], skipped: list[dict[str, str]],
         area: str) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative path, absolute path, lstat) of root and everything below, minus skipped entries."""
    def visit(p: Path, rel: str):
        st = p.lstat()
        reason = skip(p, st) if rel != "." else None
        if reason:
            skipped.append({"path": f"{area}/{rel}", "reason": reason})
            return
        yield rel, p, st
        if stat.S_ISDIR(st.st_mode):
            try:
                children = sorted(os.listdir(p))
            except OSError as e:
                raise UnsafeState(f"cannot list {p}: {e.strerror}",
                                  hint="run the backup as root or as the owner of the folder",
                                  reference="backup-unreadable") from None
            for name in children:
                yield from visit(p / name, name if rel == "." else f"{rel}/{name}")
    yield from visit(root, ".")


# -- restore ---------------------------------------------------------------------------------

class _Tree:
    """Descriptor-relative access below one root folder (the root itself is the operator's
    choice and may be reached through a symlink; nothing below it is)."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def open_dir(self, parts: list[str]) -> int:
        fd = os.dup(self.fd)
        try:
            for i, part in enumerate(parts):
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafeState(f"{self.root / '/'.join(parts[:i + 1])} is not a folder (a symlink?): "
                                          "nothing is written through it", reference="restore-unsafe-path") from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def lstat(name: str, dfd: int) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @staticmethod
    def remove(name: str, dfd: int, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)


def _set_meta(fd: int, e: FileEntry) -> None:
    os.fchown(fd, e.uid, e.gid)
    os.fchmod(fd, e.mode)
    os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))


def restore_area(backup_dir: Path, root: Path, entries: list[FileEntry]) -> None:
    """Put entries (checked by manifest.entry_problems) back under root."""
    tree = _Tree(root)
    try:
        backup_fd = os.open(backup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            by_depth = sorted(entries, key=lambda e: len(e.parts))
            for e in by_depth:
                if e.type == "dir" and e.parts:
                    _make_dir(tree, e)
            for e in entries:
                if e.type == "file":
                    _write_file(tree, backup_fd, e)
            for e in entries:
                if e.type == "symlink":
                    _make_symlink(tree, e)
            for e in reversed(by_depth):
                if e.type == "dir":
                    fd = tree.open_dir(e.parts)
                    try:
                        _set_meta(fd, e)
                    finally:
                        os.close(fd)
        finally:
            os.close(backup_fd)
    finally:
        tree.close()


def _make_dir(tree: _Tree, e: FileEntry) -> None:
    dfd = tree.open_dir(e.parts[:-1])
    try:
        st = tree.lstat(e.parts[-1], dfd)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            tree.remove(e.parts[-1], dfd, st)   # a file or a symlink where the folder was
            st = None
        if st is None:
            os.mkdir(e.parts[-1], 0o700, dir_fd=dfd)
    finally:
        os.close(dfd)


def _write_file(tree: _Tree, backup_fd: int, e: FileEntry) -> None:
    name = e.parts[-1]
    tmp = f".{name}.harbor-upgrade-restore"
    dfd = tree.open_dir(e.parts[:-1])
    try:
        old = tree.lstat(tmp, dfd)
        if old is not None:
            tree.remove(tmp, dfd, old)  # a killed restore's
        src = os.fdopen(open_regular(e.stored, dir_fd=backup_fd), "rb")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            with src, os.fdopen(out, "wb", closefd=False) as fout:
                shutil.copyfileobj(src, fout, CHUNK)
                fout.flush()
            _set_meta(out, e)
            os.fsync(out)
        finally:
            os.close(out)
        st = tree.lstat(name, dfd)
        if st is not None and stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dfd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)  # replaces a symlink, never follows it
    finally:
        os.close(dfd)


def _make_symlink(tree: _Tree, e: FileEntry) -> None:
    name = e.parts[-1]
    dfd = tree.open_dir(e.parts[:-1])
    try:
        st = tree.lstat(name, dfd)
        if st is not None:
            tree.remove(name, dfd, st)
        assert e.target is not None  # manifest.entry_problems rejects a symlink entry without a target
        os.symlink(e.target, name, dir_fd=dfd)
        os.chown(name, e.uid, e.gid, dir_fd=dfd, follow_symlinks=False)
        os.utime(name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(dfd)


def file_problems(root: Path, entries: list[FileEntry]) -> list[str]:
    """How the files under root differ from their manifest entries (empty when identical)."""
    problems = []
    for e in entries:
        p = root if e.path == "." else root / e.path
        where = f"{e.area}/{e.path}"
        try:
            st = p.lstat()
        except FileNotFoundError:
            problems.append(f"{where}: missing")
            continue
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "file"
        if kind != e.type:
            problems.append(f"{where}: is a {kind}, was a {e.type}")
            continue
        if (st.st_uid, st.st_gid) != (e.uid, e.gid):
            problems.append(f"{where}: owner {st.st_uid}:{st.st_gid}, recorded {e.uid}:{e.gid}")
        if kind != "symlink" and stat.S_IMODE(st.st_mode) != e.mode:
            problems.append(f"{where}: mode {oct(stat.S_IMODE(st.st_mode))}, recorded {oct(e.mode)}")
        if kind == "symlink" and os.readlink(p) != e.target:
            problems.append(f"{where}: points to {os.readlink(p)}, recorded {e.target}")
        if kind == "file":
            try:
                same = st.st_size == e.size and sha256_of(p) == e.sha256
            except OSError:
                same = False
            if not same:
                problems.append(f"{where}: content differs from the backup")
    return problems


def extra_files(root: Path, area: str, entries: list[FileEntry], skipped: list[dict[str, str]]) -> list[str]:
    known = {e.path for e in entries}
    skipped_paths = {s["path"] for s in skipped}
    extra = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if f"{area}/{rel}" in skipped_paths:
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if rel not in known:
                extra.append(f"{area}/{rel}")
    return extra


# -- whole folders in parallel (a stopped cluster's data folder) ------------------------------

COPY_CHUNK = 4 << 20
PART = 1 << 20   # what finishing a copy taken while its server ran compares, and copies again: 1 MiB


def part_digest(data) -> str:
    return hashlib.sha256(data).hexdigest()   # sha256 with the CPU's SHA instructions: faster than blake2b here


def _fill(f, view: memoryview) -> int:
    """Read into view until it is full or the file ends: parts start at multiples of its size."""
    n = 0
    while n < len(view):
        got = f.readinto(view[n:])
        if not got:
            break
        n += got
    return n


def _write_all(fd: int, data: memoryview, offset: int | None = None) -> None:
    while data:
        n = os.write(fd, data) if offset is None else os.pwrite(fd, data, offset)
        data = data[n:]
        if offset is not None:
            offset += n


def _copy_fd(fin: int, fouts: list[int], parts: list[str] | None = None) -> tuple[int, str]:
    """Copy fin to every fout through one buffer, hashing what passes: (size, sha256); with
    parts, also the sha256 of every PART of it, appended there."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(PART if parts is not None else COPY_CHUNK)
    view = memoryview(buf)
    with os.fdopen(fin, "rb", buffering=0, closefd=False) as f:
        while n := (_fill(f, view) if parts is not None else f.readinto(buf)):
            chunk = view[:n]
            h.update(chunk)     # hashlib and os.write let go of the GIL: threads copy in parallel
            if parts is not None:
                parts.append(part_digest(chunk))
            for fout in fouts:
                _write_all(fout, chunk)
            size += n
    return size, h.hexdigest()


def _copy_file(src: Path, dsts: list[Path], meta: FileEntry, parts: list[str] | None = None) -> tuple[int, str]:
    """src (a regular file, never through a symlink) into new files dsts, with meta's owner,
    mode and mtime set on their open descriptors; (size, sha256) of what was copied (and with
    parts, the sha256 of each PART of it)."""
    fin = open_regular(src)
    fouts: list[int] = []
    try:
        for dst in dsts:
            fouts.append(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        out = _copy_fd(fin, fouts, parts)
        for fout in fouts:
            _set_meta_fd(fout, meta)
    finally:
        for fd in [fin, *fouts]:
            os.close(fd)
    return out


def sync_filesystem(path: Path) -> None:
    """Everything written to path's filesystem on disk: one syncfs(2) (a thousand small files'
    fsyncs, each a journal commit, take many times longer), else sync(2)."""
    import ctypes
    import ctypes.util
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


def _set_meta_fd(fd: int, e: FileEntry) -> None:
    if os.geteuid() == 0:
        os.fchown(fd, e.uid, e.gid)
    os.fchmod(fd, e.mode)
    os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))


def _dirs_meta(root: Path, dirs: list[FileEntry]) -> None:
    """Owner, mode and times of the folders, deepest first (a file written below changes a time)."""
    for e in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        fd = os.open(root / e.path if e.parts else root, _DIR_FLAGS)
        try:
            _set_meta_fd(fd, e)
        finally:
            os.close(fd)


def _parallel(jobs: int, work: list, fn: Callable) -> list:
    """fn over work in jobs threads, the largest first; the first error surfaces (after the rest stop)."""
    from concurrent.futures import ThreadPoolExecutor
    if jobs <= 1 or len(work) <= 1:
        return [fn(w) for w in work]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, work))


def scan_tree(root: Path, area: str, live: bool = False) -> tuple[list[FileEntry], list[str]]:
    """Entries (folders and regular files, with owner, mode, size and mtime; no checksum yet)
    of everything below root, and what is neither (symlinks, sockets ...), relative to root.
    live: a folder a server writes meanwhile; what vanishes while it is scanned is left out."""
    entries: list[FileEntry] = []
    other: list[str] = []

    def visit(path: Path, rel: str, st: os.stat_result) -> None:
        try:
            children = sorted(os.scandir(path), key=lambda d: d.name)
        except FileNotFoundError:
            if live and rel != ".":
                return
            raise
        except OSError as e:
            raise UnsafeState(f"cannot list {path}: {e.strerror}", reference="backup-unreadable",
                              hint="run the backup as root or as the owner of the folder") from None
        entries.append(FileEntry(area=area, path=rel, type="dir", uid=st.st_uid, gid=st.st_gid,
                                 mode=stat.S_IMODE(st.st_mode), mtime_ns=st.st_mtime_ns))
        for d in children:
            child_rel = d.name if rel == "." else f"{rel}/{d.name}"
            try:
                cst = d.stat(follow_symlinks=False)
            except FileNotFoundError:
                if live:
                    continue
                raise
            if stat.S_ISDIR(cst.st_mode):
                visit(Path(d.path), child_rel, cst)
            elif stat.S_ISREG(cst.st_mode):
                entries.append(FileEntry(area=area, path=child_rel, type="file", uid=cst.st_uid, gid=cst.st_gid,
                                         mode=stat.S_IMODE(cst.st_mode), mtime_ns=cst.st_mtime_ns,
                                         size=cst.st_size))
            else:
                other.append(child_rel)
    visit(root, ".", root.lstat())
    return entries, other


def copy_tree(entries: list[FileEntry], src: Path, dst: Path, jobs: int, durable: bool,
              also: Path | None = None, live: bool = False,
              parts: dict[str, list[str]] | None = None) -> list[FileEntry]:
    """Copy the scanned entries of src into dst (created; must not exist) — and into ``also``
    from the same buffers, when given — files in ``jobs`` threads with their sha256 computed in
    the same pass; owner (when root), mode and times kept. Returns the entries with size and
    sha256 of what was copied (live: a server writes src meanwhile; a file gone before it
    could be opened is left out of the copy and of what is returned). parts, when given, gets
    the sha256 of every PART of each file copied."""
    dirs = [e for e in entries if e.type == "dir"]
    files = sorted((e for e in entries if e.type == "file"), key=lambda e: e.size, reverse=True)
    roots = [dst] if also is None else [dst, also]
    for root in roots:
        root.mkdir(mode=0o700)
        for e in dirs:
            if e.parts:
                os.mkdir(root / e.path, 0o700)

    def one(e: FileEntry) -> FileEntry | None:
        try:
            mine: list[str] | None = [] if parts is not None else None
            size, digest = _copy_file(src / e.path, [root / e.path for root in roots], e, mine)
        except FileNotFoundError:   # opened first: nothing of it was written
            if live:
                return None
            raise
        if parts is not None and mine is not None:
            parts[e.path] = mine
        return FileEntry(**{**e.__dict__, "size": size, "sha256": digest})
    copied = {e.path: e for e in _parallel(jobs, files, one) if e is not None}
    for root in roots:
        _dirs_meta(root, dirs)
    if durable:
        sync_filesystem(dst)
    return [copied[e.path] if e.path in copied else e for e in entries if e.type == "dir" or e.path in copied]


def copy_checked(entries: list[FileEntry], src: Path, dst: Path, jobs: int, durable: bool) -> list[str]:
    """Copy the backup's files of entries (checked by manifest.entry_problems: folders and
    files only) from src into dst (created; must not exist), comparing each with its size and
    sha256 in the same pass; owner, mode and times set. Returns the differences."""
    copied = copy_tree(entries, src, dst, jobs, durable)
    want = {e.path: e for e in entries}
    return [f"{e.area}/{e.path}: " + (f"size {e.size}, recorded {want[e.path].size}"
                                      if e.size != want[e.path].size else "sha256 differs from the manifest")
            for e in copied if e.type == "file" and (e.size, e.sha256) != (want[e.path].size, want[e.path].sha256)]


# -- a copy taken while the server ran, finished once it stopped ----------------------------

def tree_problems(root: Path, recorded: dict[str, int]) -> list[str]:
    """How the folder root differs from what a record says it holds (regular files, each with
    its size and one link): a symlink, a FIFO, a file with other links, one the record does
    not hold or of another size, one missing. Never follows a symlink."""
    problems: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{rel}: not a regular file or folder")
            elif st.st_nlink != 1:
                problems.append(f"{rel}: has {st.st_nlink} links")
            elif rel not in recorded:
                problems.append(f"{rel}: not in the record")
            elif st.st_size != recorded[rel]:
                problems.append(f"{rel}: size {st.st_size}, recorded {recorded[rel]}")
            seen.add(rel)
    problems += [f"{rel}: missing" for rel in sorted(set(recorded) - seen)]
    return problems


def _prune(root: Path, want: dict[str, FileEntry]) -> int:
    """Remove from root what want does not hold (or holds as another type); make its folders.
    Returns how many entries were removed (a removed folder counts one)."""
    removed: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            p = os.path.join(dirpath, name)
            is_dir = stat.S_ISDIR(os.lstat(p).st_mode)
            w = want.get(rel)
            if w is None or w.type != ("dir" if is_dir else "file"):
                removed.append(p)
                if is_dir:
                    dirnames.remove(name)
    for p in removed:
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    for e in sorted((e for e in want.values() if e.type == "dir" and e.parts), key=lambda e: len(e.parts)):
        with contextlib.suppress(FileExistsError):
            os.mkdir(root / e.path, 0o700)
    return len(removed)


def _replace_file(fin: int, dsts: list[Path], meta: FileEntry) -> tuple[int, str]:
    """fin (from its start) into new files written beside each of dsts and renamed over them
    (never written through an existing entry); (size, sha256) of what was copied."""
    os.lseek(fin, 0, os.SEEK_SET)
    tmps = [d.with_name(f".{d.name}.harbor-upgrade-sync") for d in dsts]
    fouts: list[int] = []
    try:
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            fouts.append(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        out = _copy_fd(fin, fouts)
        for fout in fouts:
            _set_meta_fd(fout, meta)
    finally:
        for fd in fouts:
            os.close(fd)
    for tmp, dst in zip(tmps, dsts, strict=True):
        os.replace(tmp, dst)
    return out


def _open_existing(path: Path) -> int:
    """A write descriptor of the regular file path with no other link, never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise UnsafeState(f"{path} is not a regular file of its own (a link?): nothing is written through it",
                          reference="restore-unsafe-path")
    return fd


def _hash_head(fin: int, length: int) -> hashlib._Hash:
    """A sha256 of fin's first length bytes (read again: they are in the page cache)."""
    h = hashlib.sha256()
    offset = 0
    while offset < length:
        data = os.pread(fin, min(COPY_CHUNK, length - offset), offset)
        if not data:
            raise OSError(errno.EIO, "the file became shorter while it was read")
        h.update(data)
        offset += len(data)
    return h


def _patch(fin: int, outs: list[int], always: list[int], recorded: tuple[int, str, list[str]]
           ) -> tuple[int, str, int]:
    """Read fin part by part: a part whose sha256 differs from the record is written at its
    offset into outs, every part into always; outs and always cut to fin's size. The file's
    sha256 is the record's when every part and the size are equal, else computed (from the
    start, once a part differs). (size, sha256 of fin, bytes written into outs)."""
    size, digest, parts = recorded
    whole = None
    buf = bytearray(PART)
    view = memoryview(buf)
    offset = written = 0
    i = 0
    with os.fdopen(fin, "rb", buffering=0, closefd=False) as f:
        while n := _fill(f, view):
            chunk = view[:n]
            differs = i >= len(parts) or part_digest(chunk) != parts[i]
            if differs and whole is None:
                whole = _hash_head(fin, offset)
            if whole is not None:
                whole.update(chunk)
            for fd in (outs + always) if differs else always:
                _write_all(fd, chunk, offset)
            if differs:
                written += n
            offset += n
            i += 1
    for fd in outs + always:
        os.ftruncate(fd, offset)
    if whole is None and (offset, i) == (size, len(parts)):
        return offset, digest, written
    return offset, (whole or _hash_head(fin, offset)).hexdigest(), written


@dataclass
class SyncStats:
    files: int = 0          # regular files of the source, every one read and hashed
    bytes_read: int = 0
    copied: int = 0         # of them written again, whole (new) or the parts that differ
    bytes_copied: int = 0   # bytes written into the copy
    removed: int = 0        # entries of the copy the source no longer has


def sync_tree(entries: list[FileEntry], src: Path, dst: Path, also: Path,
              recorded: dict[str, tuple[int, str, list[str]]],
              jobs: int, also_complete: bool = True) -> tuple[list[FileEntry], SyncStats]:
    """Make dst (a copy of src taken earlier; ``recorded``: the size, sha256 and the sha256 of
    every PART of each of its files, from the bytes written to it) and ``also`` (its twin, the same bytes; or an empty
    folder when not also_complete) equal to the scanned entries of src: every file of src read
    and hashed, the parts that differ from the record written again at their place in both from
    the same buffers (a file the record lacks written whole, beside and renamed in), files cut
    to their size, what src no longer has removed; owner (when root), mode and times of
    everything set as a fresh copy would. Then dst is synced to disk. Returns the entries with
    size and sha256 (of src's bytes: those of the copy now) and what was done."""
    want = {e.path: e for e in entries if e.parts}
    stats = SyncStats()
    stats.removed = _prune(dst, want)
    _prune(also, want)
    files = sorted((e for e in entries if e.type == "file"), key=lambda e: e.size, reverse=True)

    def one(e: FileEntry) -> tuple[FileEntry, int]:
        rec = recorded.get(e.path)
        fin = open_regular(src / e.path)
        try:
            if rec is None:
                size, digest = _replace_file(fin, [dst / e.path, also / e.path], e)
                return FileEntry(**{**e.__dict__, "size": size, "sha256": digest}), size
            fds: list[int] = []
            try:
                fds.append(_open_existing(dst / e.path))
                fds.append(_open_existing(also / e.path) if also_complete else
                           os.open(also / e.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                   0o600))
                size, digest, written = _patch(fin, fds if also_complete else fds[:1],
                                               [] if also_complete else fds[1:], rec)
                for fd in fds:
                    _set_meta_fd(fd, e)
            finally:
                for fd in fds:
                    os.close(fd)
            return FileEntry(**{**e.__dict__, "size": size, "sha256": digest}), written
        finally:
            os.close(fin)
    done = _parallel(jobs, files, one)
    for entry, written in done:
        stats.files += 1
        stats.bytes_read += entry.size
        if written:
            stats.copied += 1
            stats.bytes_copied += written
    dirs = [e for e in entries if e.type == "dir"]
    for root in (dst, also):
        _dirs_meta(root, dirs)
    sync_filesystem(dst)
    by_path = {e.path: e for e, _ in done}
    return [by_path.get(e.path, e) for e in entries], stats
