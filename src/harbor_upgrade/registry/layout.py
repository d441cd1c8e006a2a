"""The distribution "registry v2" layout on top of a Storage: repositories, revisions,
tags, link files and blob paths (spec artifact-abstraction §1-§2).

Names read from storage are checked against distribution's grammar before they are
used in a path, so a crafted directory or key (``..``, ``/``, control characters) is
refused instead of being followed out of the storage root; a refused name is kept only
in its printable form (``terminal.printable``), the form every report shows. An object
that cannot be read (``ObjectUnreadable``: a symbolic link, a FIFO, a loop, too large)
is a problem of that object, recorded in the listing; the walk goes on.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInput
from ..terminal import printable
from .storage import MAX_LINK, V2, GroupingUnsupported, ObjectMissing, ObjectUnreadable, Storage

# distribution's digest grammar for the algorithms it can verify
_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"(sha256|sha384|sha512):([0-9a-f]+)\Z")
# distribution's repository name component and tag grammar
_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*\Z")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
# distribution's NameTotalLengthMax: a longer repository name is never served
NAME_MAX = 255

REPOSITORIES = "repositories"


def parse_digest(text: str) -> str | None:
    """The digest if text is exactly one (no whitespace, lowercase hex of the right length)."""
    m = _DIGEST_RE.match(text)
    if m and len(m.group(2)) == _HEX_LENGTH[m.group(1)]:
        return text
    return None


def parse_link(data: bytes) -> str | None:
    """A link file's target; None when the registry could not use it (empty, a trailing
    newline, garbage)."""
    try:
        return parse_digest(data.decode("ascii"))
    except UnicodeDecodeError:
        return None


def blob_path(digest: str) -> str:
    """Where the content of a (valid) digest lives: ``blobs/<alg>/<h2>/<hex>/data``."""
    alg, hex_ = digest.split(":", 1)
    return f"blobs/{alg}/{hex_[:2]}/{hex_}/data"


@dataclass(frozen=True)
class RepositoryEntry:
    """A directory under ``repositories/`` that matters: a repository (it has
    ``_manifests``), an empty one (only ``_layers``), a refused name, or one whose folder
    cannot be listed. A refused name is in its printable form."""
    name: str
    kind: str  # "repository" | "empty" | "refused" | "unreadable"
    detail: str = ""


@dataclass
class RepositoryListing:
    """What storage says about one repository."""
    name: str
    # revision digest (directory name) -> the digest its link names, None when unusable
    revisions: dict[str, str | None] = field(default_factory=dict)
    # tag -> the digest of current/link, None when unusable or missing
    tags: dict[str, str | None] = field(default_factory=dict)
    # revision directories whose name is not a digest (reported, never an artifact)
    bad_revision_dirs: list[str] = field(default_factory=list)
    # tag directory names that are not valid tags (refused)
    bad_tag_names: list[str] = field(default_factory=list)
    # the _layers links, when listed in one go (object stores); None: checked one by one
    layers: frozenset[str] | None = None
    # revision digest -> why its link could not be read (the revision maps to None)
    link_errors: dict[str, str] = field(default_factory=dict)
    # objects of the repository that could not be read: (digest, tag, reason, detail)
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)
    # whether anything is stored below _manifests (an object store has no empty folders)
    has_manifests: bool = True


# Listing delimiter of ``_layers`` (object stores): "/link" leaves one short entry per link file
# instead of a listed key with its date, size and ETag.
_LINK_DELIMITER = "/link"
# Repository folders listed at once, and how far ahead of the walk (object stores).
ENUMERATION_THREADS = 8
ENUMERATION_AHEAD = 64


class Layout:
    """Reads one registry's storage in the distribution layout."""

    def __init__(self, storage: Storage):
        self.storage = storage
        # Object stores list a whole folder tree in a few requests but pay one request per
        # existence check; a filesystem is the other way round.
        self.list_layers = bool(getattr(storage, "batch_listing", False))
        # whether the store groups listings by a delimiter (cleared on the first refusal)
        self.grouping = self.list_layers

    # ---------------------------------------------------------------- enumeration
    def repositories(self) -> Iterator[RepositoryEntry]:
        """Every repository directory in one stable order, whatever the backend: by name
        components (``a`` < ``a/b`` < ``a-c``), which is depth first in name order. A stable
        order makes the ids of created rows reproducible.

        On an object store the folders are listed a window ahead by a few threads (one "/"
        listing each, a round trip): a repository is yielded as soon as its folder is listed,
        never after the whole bucket. (One listing of every name grouped by "/_" would be a
        single request, but a service that keeps folders, as SeaweedFS does, walks the whole
        bucket for it, serially, before the first repository could be read.)"""
        if not self.list_layers:
            yield from self._repositories_by_folders(None)
            return
        pool = ThreadPoolExecutor(ENUMERATION_THREADS, thread_name_prefix="list-repositories")
        try:
            yield from self._repositories_by_folders(pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _repositories_by_folders(self, pool: Executor | None) -> Iterator[RepositoryEntry]:
        """Folder by folder, depth first; a refused name is never descended into (so no path
        grows past distribution's longest name), a folder that cannot be listed is reported.
        With pool, the next ENUMERATION_AHEAD folders on the stack are listed on it meanwhile."""
        def listdir(name: str) -> tuple[list[str], list[str]]:
            return self.storage.listdir(f"{REPOSITORIES}/{name}" if name else REPOSITORIES)

        # [name, refused, the future listing (pool only, once submitted)]
        stack: list[list] = [["", False, None]]
        while stack:
            name, refused, listed = stack.pop()
            if refused:
                yield _refused_entry(name)
                continue
            try:
                dirs, _files = listed.result() if listed else listdir(name)
            except ObjectUnreadable as e:
                if not name:
                    raise   # the repositories folder itself: nothing can be read
                yield RepositoryEntry(name, "unreadable", e.message)
                continue
            if name:
                if "_manifests" in dirs:
                    yield RepositoryEntry(name, "repository")
                elif "_layers" in dirs:
                    yield RepositoryEntry(name, "empty")
            children = [[child := f"{name}/{d}" if name else d, not _COMPONENT_RE.match(d) or len(child) > NAME_MAX,
                         None] for d in dirs if not d.startswith("_")]  # reserved (_manifests, _layers, _uploads)
            stack.extend(reversed(children))
            if pool:
                ahead = 0
                for item in reversed(stack):
                    if item[1]:
                        continue
                    if item[2] is None:
                        item[2] = pool.submit(listdir, item[0])
                    ahead += 1
                    if ahead >= ENUMERATION_AHEAD:
                        break

    def list_repository(self, name: str, pool: Executor | None = None) -> RepositoryListing:
        """Revisions and tags (with their link contents) of one repository; on an object
        store its listings and tag links are read on pool when one is given."""
        listing = RepositoryListing(name)
        if self.list_layers:
            self._list_object_store(listing, pool)
        else:
            self._list_by_folders(listing)
        return listing

    def _grouped(self, folder: str, delimiter: str) -> list[tuple[str, bool]]:
        """walk_grouped, or a plain walk where the store cannot group (see walk_grouped)."""
        if self.grouping:
            try:
                return list(self.storage.walk_grouped(folder, delimiter))
            except GroupingUnsupported:
                self.grouping = False
        return [(path, False) for path in self.storage.walk(folder)]

    def _add_revision(self, listing: RepositoryListing, alg: str, hex_: str, path: str) -> None:
        """The revision alg:hex_ with the content of its link at path (none: a deleted manifest)."""
        digest = parse_digest(f"{alg}:{hex_}")
        if digest is None:
            # a name that is not a digest is never read: reported if it holds a link at all
            if self.storage.exists(path):
                listing.bad_revision_dirs.append(printable(f"{alg}:{hex_}"))
            return
        try:
            link = self.storage.read(path, MAX_LINK)
        except ObjectMissing:
            return  # a deleted manifest leaves its empty directory behind
        except ObjectUnreadable as e:
            listing.revisions[digest] = None
            listing.link_errors[digest] = e.message
            return
        listing.revisions[digest] = parse_link(link)

    def _tag_name_ok(self, listing: RepositoryListing, tag: str) -> bool:
        if _TAG_RE.match(tag):
            return True
        shown = printable(tag)
        if shown not in listing.bad_tag_names:
            listing.bad_tag_names.append(shown)
        return False

    def _folders(self, listing: RepositoryListing, folder: str) -> list[str]:
        """The sub-folders of a folder of the repository; one that cannot be listed is a
        problem of the repository (what is in it is not read)."""
        try:
            return self.storage.listdir(folder)[0]
        except ObjectUnreadable as e:
            listing.problems.append(("", "", "storage-unreadable", e.message))
            return []

    def _list_by_folders(self, listing: RepositoryListing) -> None:
        """Folder by folder (a filesystem): the revision and current tag links only, never the
        tag history below ``tags/<tag>/index``."""
        base = f"{REPOSITORIES}/{listing.name}/_manifests"
        for alg in self._folders(listing, f"{base}/revisions"):
            for hex_ in self._folders(listing, f"{base}/revisions/{alg}"):
                self._add_revision(listing, alg, hex_, f"{base}/revisions/{alg}/{hex_}/link")
        for tag in self._folders(listing, f"{base}/tags"):
            if self._tag_name_ok(listing, tag):
                listing.tags[tag] = self._read_link(listing, tag, f"{base}/tags/{tag}/current/link")

    def _list_object_store(self, listing: RepositoryListing, pool: Executor | None) -> None:
        """An object store: the revisions in one recursive listing (their links proven by it,
        ``S3Storage``), the tag folders in one "/" listing and each tag's ``current/link`` read
        on its own, and the layer links in one listing grouped at "/link"; with pool, all at
        once. A tag's history (``tags/<tag>/index``) is never listed: a service that keeps
        folders (SeaweedFS) walks every folder of a listing but a "/" one, and the history is
        most of a repository's folders.

        What an object store calls a folder exists only while a key is below it, but a service
        that keeps folders lists a "/" folder after its keys were deleted: a tag folder whose
        current link is missing counts only when a key is below it, as the walk of the whole
        ``_manifests`` found it."""
        base = f"{REPOSITORIES}/{listing.name}"
        tags_folder = f"{base}/_manifests/tags"
        revisions = _run(pool, lambda: list(self.storage.walk(f"{base}/_manifests/revisions")))
        tag_entries = _run(pool, lambda: list(self._grouped(tags_folder, "/")))
        layers = _run(pool, lambda: frozenset(self._listed_layers(listing.name)))

        # tag name -> whether a key below its folder is known (a folder of "/" proves none)
        folders: dict[str, bool] = {}
        files: set[str] = set()
        for path, grouped in tag_entries.result():
            name, sep, tail = path[len(tags_folder) + 1:].partition("/")
            if not sep:
                files.add(name)      # a key right in tags/ (no folder): a tag without a current link
            else:
                folders[name] = folders.get(name, False) or (not grouped and bool(tail))
        reads = {name: _run(pool, self._tag_folder, listing, f"{tags_folder}/{name}", proven)
                 for name, proven in sorted(folders.items())}
        for name in sorted(folders.keys() | files):
            held, link, problem = reads[name].result() if name in reads else (False, None, None)
            if not (held or name in files) or not self._tag_name_ok(listing, name):
                continue
            if problem is not None:
                listing.problems.append(("", name, "tag-link-unreadable", problem))
            listing.tags[name] = link

        revision_keys = revisions.result()
        for path in revision_keys:
            parts = path[len(base) + len("/_manifests/"):].split("/")
            if parts[0] == "revisions" and len(parts) == 4 and parts[3] == "link":
                self._add_revision(listing, parts[1], parts[2], path)
        listing.has_manifests = bool(revision_keys or listing.tags or listing.bad_tag_names) or \
            self._holds_keys(f"{base}/_manifests")
        listing.layers = layers.result()

    def _tag_folder(self, listing: RepositoryListing, folder: str, proven: bool) -> tuple[bool, str | None, str | None]:
        """(whether a key is below the tag folder, the digest its current link holds or None,
        why that link cannot be read or None). The name is checked (a path) before any read."""
        name = folder.rsplit("/", 1)[1]
        if not _TAG_RE.match(name):
            return proven or self._holds_keys(folder), None, None
        try:
            return True, parse_link(self.storage.read(f"{folder}/current/link", MAX_LINK)), None
        except ObjectMissing:
            return proven or self._holds_keys(folder), None, None
        except ObjectUnreadable as e:
            return True, None, e.message

    def _holds_keys(self, folder: str) -> bool:
        """Whether any object is below folder (the first page of its listing says). A name
        that is no path below the root is taken as listed."""
        try:
            return next(iter(self.storage.walk(folder)), None) is not None
        except InvalidInput:
            return True

    def _listed_layers(self, name: str) -> Iterator[str]:
        """The digests linked in a repository. Grouped at "/link", an entry proves a key that
        begins with ``<alg>/<hex>/link`` (distribution writes exactly ``link`` there)."""
        base = f"{REPOSITORIES}/{name}/_layers"
        for path, _grouped in self._grouped(base, _LINK_DELIMITER):
            parts = path[len(base) + 1:].split("/")
            if len(parts) == 3 and parts[2] == "link":
                digest = parse_digest(f"{parts[0]}:{parts[1]}")
                if digest:
                    yield digest

    def _read_link(self, listing: RepositoryListing, tag: str, path: str) -> str | None:
        """The digest a tag's current link holds; None when missing or unusable (a link that
        cannot be read at all is also a problem of the repository)."""
        try:
            return parse_link(self.storage.read(path, MAX_LINK))
        except ObjectMissing:
            return None
        except ObjectUnreadable as e:
            listing.problems.append(("", tag, "tag-link-unreadable", e.message))
            return None

    # ---------------------------------------------------------------- blobs
    def layer_linked(self, listing: RepositoryListing, digest: str) -> bool:
        """Whether the repository links blob digest (the registry serves no blob otherwise)."""
        if listing.layers is not None:
            return digest in listing.layers
        if parse_digest(digest) is None:
            return False  # a digest from the database or a manifest is never trusted as a path
        alg, hex_ = digest.split(":", 1)
        return self.storage.exists(f"{REPOSITORIES}/{listing.name}/_layers/{alg}/{hex_}/link")

    def read_blob(self, digest: str) -> bytes:
        """Content of a blob from the global store (at most MAX_OBJECT bytes); ObjectMissing
        when absent, ObjectUnreadable (ObjectTooLarge) when it cannot be used."""
        return self.storage.read(blob_path(digest))

    def read_blob_head(self, digest: str, length: int) -> bytes:
        return self.storage.read_head(blob_path(digest), length)

    def blob_size(self, digest: str) -> int | None:
        """Size of a blob in the global store, None when absent or not a digest;
        ObjectUnreadable when it is there but not a regular file below the root."""
        if parse_digest(digest) is None:
            return None
        try:
            return self.storage.size(blob_path(digest))
        except ObjectMissing:
            return None

    def read_repository_blob(self, listing: RepositoryListing, digest: str) -> bytes:
        """A blob as the registry serves it for this repository: linked and present."""
        if parse_digest(digest) is None or not self.layer_linked(listing, digest):
            raise ObjectMissing(f"blob {digest} is not linked in repository {listing.name}")
        return self.read_blob(digest)

    def repository_blob_head(self, listing: RepositoryListing, digest: str, length: int) -> bytes:
        if parse_digest(digest) is None or not self.layer_linked(listing, digest):
            raise ObjectMissing(f"blob {digest} is not linked in repository {listing.name}")
        return self.read_blob_head(digest, length)


def _run(pool: Executor | None, fn, *args) -> Future:
    """fn(*args) on pool, or here and now (its result or exception in the future)."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except BaseException as e:  # handed over as the pool would hand it
        done.set_exception(e)
    return done


def _refused_entry(name: str) -> RepositoryEntry:
    why = (f"longer than distribution's {NAME_MAX} characters" if len(name) > NAME_MAX
           else "not a valid repository name")
    return RepositoryEntry(printable(name[:NAME_MAX + 64] + ("..." if len(name) > NAME_MAX + 64 else "")),
                           "refused", why)


class LayoutWriter:
    """Writes a storage tree in the same layout on a filesystem, as distribution does on a
    push (blobs, layer links, revision links, tag links with their history). For building
    test trees and benchmark trees; the backfill itself never writes to storage."""

    def __init__(self, rootdirectory: str | os.PathLike):
        self.v2 = Path(rootdirectory) / V2
        self.v2.mkdir(parents=True, exist_ok=True)

    def _write(self, path: str, data: bytes) -> None:
        target = self.v2 / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def put_blob(self, data: bytes) -> str:
        """Store content in the global blob store; its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._write(blob_path(digest), data)
        return digest

    def link_layer(self, repository: str, digest: str) -> None:
        alg, hex_ = digest.split(":", 1)
        self._write(f"{REPOSITORIES}/{repository}/_layers/{alg}/{hex_}/link", digest.encode())

    def put_manifest(self, repository: str, data: bytes, tags: tuple[str, ...] = ()) -> str:
        """Store a manifest (a blob plus its revision link) and point tags at it."""
        digest = self.put_blob(data)
        alg, hex_ = digest.split(":", 1)
        self._write(f"{REPOSITORIES}/{repository}/_manifests/revisions/{alg}/{hex_}/link", digest.encode())
        for tag in tags:
            self.tag(repository, tag, digest)
        return digest

    def tag(self, repository: str, tag: str, digest: str) -> None:
        alg, hex_ = digest.split(":", 1)
        base = f"{REPOSITORIES}/{repository}/_manifests/tags/{tag}"
        self._write(f"{base}/current/link", digest.encode())
        self._write(f"{base}/index/{alg}/{hex_}/link", digest.encode())
