"""A repository's listing fingerprint: one hash that changes whenever anything that decides the
repository's artifact rows changes in storage.

The rows of a repository come from its listing (the revision links and their content, the tag
folders and the content of each tag's ``current/link``, the linked layers, which decide what
the registry serves) and from blobs, which are addressed by their content and never change
under the same digest. So the fingerprint hashes exactly the listing's part:

* filesystem: the names and kinds of the folders the registry lists (revisions, tags, layers
  and the folders below them), the content of every revision link and every tag's
  ``current/link``, and whether every ``_layers`` link is a regular file; an entry that is no
  regular file or folder (a symbolic link, a FIFO) by its kind, never followed. A tag's
  history (``tags/<tag>/index``) decides nothing and is left out.
* object store: the listing of ``_manifests`` (tag history grouped away) with each object's
  ETag and size — a link written again with another digest has another MD5, so another ETag —
  and the ``_layers`` links' keys. No object is read.

A push (a new revision and tag), a manifest deleted (its revision link removed), a tag added,
removed or moved to another digest, a layer linked or unlinked: each changes it (the tests
prove each on both backends). Two storages of different kinds never give equal fingerprints.
``None`` means the repository cannot be fingerprinted (its folder cannot be read): it is read
again whenever it is needed.
"""
from __future__ import annotations

import hashlib
import os
import stat

from .layout import _COMPONENT_RE, NAME_MAX, REPOSITORIES
from .storage import MAX_LINK, FilesystemStorage, GroupingUnsupported, ObjectUnreadable, Storage, StorageError

VERSION = 2
_DIR_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_NONBLOCK
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


def valid_repository_name(name: str) -> bool:
    return (0 < len(name) <= NAME_MAX and not name.startswith("/")
            and all(_COMPONENT_RE.match(part) for part in name.split("/")))


def repository_fingerprint(storage: Storage, name: str) -> str | None:
    """The listing fingerprint of repository name (module doc), or None."""
    if not valid_repository_name(name):
        return None
    listed = getattr(storage, "listed_objects", None)
    try:
        if isinstance(storage, FilesystemStorage):
            return _filesystem(storage, name)
        if listed is not None:
            return _object_store(storage, name)
    except (ObjectUnreadable, OSError):
        return None
    return None


# ------------------------------------------------------------------------------ filesystem

def _filesystem(storage: FilesystemStorage, name: str) -> str | None:
    h = hashlib.sha256(f"harbor-upgrade fingerprint {VERSION} fs\n".encode())
    try:
        fd = os.open(f"{storage.v2}/{REPOSITORIES}/{name}", _DIR_FLAGS)
    except FileNotFoundError:
        h.update(b"absent\n")
        return h.hexdigest()
    except OSError:
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else None
        if real is not None and not (real + "/").startswith(storage._below):
            return None    # a folder on the way leads out of the storage root
        manifests = _open_dir(fd, "_manifests", "_manifests", h)
        if manifests is not None:
            try:
                # revisions/<alg>/<hex>/link and tags/<tag>/current/link: their contents
                _two_levels(manifests, "revisions", "_manifests/revisions", "link", h, read=True)
                _two_levels(manifests, "tags", "_manifests/tags", "current/link", h, read=True, depth=1)
            finally:
                os.close(manifests)
        layers = _open_dir(fd, "_layers", "_layers", h)
        if layers is not None:
            try:   # _layers/<alg>/<hex>/link: there or not (the registry asks nothing else)
                for alg, kind in _entries(layers, h, "_layers"):
                    if kind == "d":
                        _two_levels(layers, alg, f"_layers/{alg}", "link", h, read=False, depth=1)
            finally:
                os.close(layers)
    finally:
        os.close(fd)
    return h.hexdigest()


def _open_dir(parent: int, entry: str, rel: str, h) -> int | None:
    try:
        return os.open(entry, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        h.update(f"- {rel}\n".encode())
    except OSError as e:
        h.update(f"! {rel} {e.errno}\n".encode())
    return None


def _entries(fd: int, h, rel: str) -> list[tuple[str, str]]:
    """The folder's entries, sorted, each with its kind (from the folder itself: no stat), hashed."""
    out = []
    with os.scandir(fd) as it:
        for e in it:
            out.append((e.name, "d" if e.is_dir(follow_symlinks=False) else "f" if e.is_file(follow_symlinks=False)
                        else "l" if e.is_symlink() else "o"))
    out.sort()
    h.update(f"d {rel} ".encode() + "/".join(f"{n}:{k}" for n, k in out).encode("utf-8", "surrogateescape")
             + b"\n")
    return out


def _two_levels(parent: int, entry: str, rel: str, leaf: str, h, read: bool, depth: int = 2) -> None:
    """Below parent/entry: depth levels of folders (revisions/<alg>/<hex>: 2; tags/<tag>: 1), in each
    the file leaf hashed (its content when read, else whether it is a regular file)."""
    fd = _open_dir(parent, entry, rel, h)
    if fd is None:
        return
    try:
        for name, kind in _entries(fd, h, rel):
            if kind != "d":
                continue
            if depth > 1:
                _two_levels(fd, name, f"{rel}/{name}", leaf, h, read, depth - 1)
            else:
                _leaf(fd, f"{name}/{leaf}", f"{rel}/{name}/{leaf}", h, read)
    finally:
        os.close(fd)


def _leaf(parent: int, path: str, rel: str, h, read: bool) -> None:
    if not read:
        try:
            st = os.stat(path, dir_fd=parent, follow_symlinks=False)
        except OSError as e:
            h.update(f"! {rel} {e.errno}\n".encode())
            return
        h.update(f"{'f' if stat.S_ISREG(st.st_mode) else stat.S_IFMT(st.st_mode)} {rel}\n".encode())
        return
    try:
        fd = os.open(path, _FILE_FLAGS, dir_fd=parent)
    except OSError as e:
        h.update(f"! {rel} {e.errno}\n".encode())
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            h.update(f"k {rel} {stat.S_IFMT(st.st_mode)}\n".encode())
            return
        data = os.read(fd, MAX_LINK + 1)
    except OSError as e:
        h.update(f"! {rel} {e.errno}\n".encode())
        return
    finally:
        os.close(fd)
    h.update(f"f {rel} {len(data)} ".encode() + data + b"\n")


# ------------------------------------------------------------------------------ object store

_TAG_HISTORY = "/index/sha256/"
_LINK = "/link"


def _object_store(storage: Storage, name: str) -> str:
    h = hashlib.sha256(f"harbor-upgrade fingerprint {VERSION} s3\n".encode())
    base = f"{REPOSITORIES}/{name}"
    manifests = _listed(storage, f"{base}/_manifests", _TAG_HISTORY)
    h.update(b"_manifests\n")
    for line in manifests:
        h.update(line.encode() + b"\n")
    h.update(b"_layers\n")
    for line in _listed(storage, f"{base}/_layers", _LINK):
        h.update(line.encode() + b"\n")
    return h.hexdigest()


def _listed(storage: Storage, folder: str, delimiter: str) -> list[str]:
    """The folder's listing in one canonical form, grouped by delimiter or not: a key cut after
    its delimiter is one entry (its head), any other key comes with its ETag and size."""
    start = len(folder) + 1
    out: set[str] = set()
    try:
        entries = list(storage.listed_objects(folder, delimiter))  # type: ignore[attr-defined]
    except GroupingUnsupported:
        entries = list(storage.listed_objects(folder, None))  # type: ignore[attr-defined]
    for path, token in entries:
        rel = path[start:]
        at = rel.find(delimiter)
        if at >= 0:
            out.add("h " + rel[:at + len(delimiter)])
        elif token is None:
            out.add("h " + rel)
        else:
            out.add(f"o {rel} {token}")
    return sorted(out)


__all__ = ["VERSION", "StorageError", "repository_fingerprint", "valid_repository_name"]
