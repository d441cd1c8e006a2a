"""The artifact prefetch: storage read and abstracted while the old Harbor still serves, applied
in the stop window with only the repositories that changed read again.

``prepare_prefetch`` (``run --prepare``) walks the storage as the backfill does, without any
database: for each repository it takes the listing fingerprint first
(``registry.fingerprint``), then the listing and the abstraction of every manifest the
repository holds (revisions and tagged digests, their children with them), and records them
with the order the abstraction visited children in. It never writes the database.

In the window the backfill, for each repository the prefetch holds, takes the fingerprint
again: equal, the rows come from the record — the abstraction of exactly the digests the
database has (and, with --import-untagged, the untagged ones) is replayed in the order the
live abstraction would take, so rows, notes and their order are those of reading storage;
different (a push, a delete, a tag moved while Harbor served), or any digest the record does
not hold, the repository is read from storage as without a prefetch. New repositories are
read from storage; removed ones are simply not in the walk. A repository whose abstraction
depends on the order it is entered in (an index cycle), or that could not be read whole, is
not recorded; nor is one with any artifact that fails or any problem (a blob missing or broken
now may be pushed again before the window without its listing changing): those are read in
the window. What is recorded comes from blobs, which are addressed by their content.

The file (``<backup-dir>/prefetch/artifacts.prefetch``, 0600 in a 0700 folder, written to a
temporary name and renamed when complete) is hostile input when read back: every line is
bounded (``MAX_LINE``) and carries an HMAC-SHA256 chained over the line before it, under the
backup key kept outside the folder (``backup.manifest.backup_key``); the header names the
format, the tool's version, the fingerprint version, the storage and the key, the last line
the count. A file that is damaged, truncated, signed with another key, made by another
version or for another storage is ignored as a whole with a message saying why
(``PrefetchIgnored``), and each record is checked again — HMAC and then every field's type —
when it is used: a record that fails is read from storage instead. A prefetch can only ever
save reading; it never gives rows reading would not give.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from .. import __version__
from ..backup.manifest import backup_key
from ..journal import now_iso
from ..private import private_dir
from ..progress import Progress, Silent
from ..registry import fingerprint
from ..registry.layout import Layout
from ..registry.storage import ObjectUnreadable, Storage
from . import store
from .abstraction import Artifact, Failure, Reference, RepositoryAbstractor
from .backfill import (
    ListingFacts,
    _readers,
    abstract_targets,
    compose_write,
    empty_write,
    examine,
    listing_facts,
    targets_of,
)

PREFETCH_FORMAT = 1
FOLDER = "prefetch"
FILE = "artifacts.prefetch"
MAX_LINE = 64 << 20          # a repository whose record is larger is read in the window
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


class PrefetchIgnored(Exception):
    """The prefetch cannot be used (damaged, foreign, stale): the message says why."""


def prefetch_path(backup_dir: Path) -> Path:
    return Path(backup_dir) / FOLDER / FILE


# ------------------------------------------------------------------------------ signing

def _mac(key: bytes, previous: bytes, body: bytes) -> bytes:
    return hmac.new(key, previous + b"\n" + body, hashlib.sha256).hexdigest().encode()


def _key() -> tuple[bytes, str]:
    keyed = backup_key(create=True)
    assert keyed is not None  # create=True makes the key when there is none
    return keyed


# ------------------------------------------------------------------------------ records

def _artifact_value(a: Artifact) -> list:
    return ["a", a.manifest_media_type, a.media_type, a.size, a.type, a.extra_attrs, a.annotations, a.icon,
            [[r.child_digest, r.platform, r.urls, r.annotations] for r in a.references]]


class _Recorder(RepositoryAbstractor):
    """The abstraction, remembering which digests each one visited (its index children), in order."""

    def __init__(self, layout: Layout, listing):
        super().__init__(layout, listing)
        self.edges: dict[str, list[str]] = {}

    def _abstract(self, digest: str, stack: tuple[str, ...]) -> Artifact:
        if stack:
            self.edges.setdefault(stack[-1], []).append(digest)
        return super()._abstract(digest, stack)


def read_record(layout: Layout, name: str, io_pool: Executor | None = None,
                window: int = 8) -> tuple[str, str | None, bytes | None]:
    """(name, fingerprint, record) of one repository; (name, None, None) when it is not recorded."""
    fp = fingerprint.repository_fingerprint(layout.storage, name)   # first: a later change shows
    if fp is None:
        return name, None, None
    try:
        listing = layout.list_repository(name, io_pool)
        facts = listing_facts(layout, listing)
        recorder = abstract_targets(_Recorder, layout, listing, sorted(facts.manifests), io_pool, window)
    except (ObjectUnreadable, OSError, RecursionError):
        return name, None, None
    results = recorder.results()
    if recorder.problems or any(isinstance(r, Failure) for r in results.values()):
        # a blob missing or broken now may be pushed again before the window (listing unchanged), and
        # a cycle's failures depend on where it is entered: such a repository is read in the window
        return name, None, None
    problems: dict[str, list[list[str]]] = {}
    for digest, reason, detail in recorder.problems:
        problems.setdefault(digest, []).append([reason, detail])
    value = {
        "facts": {"has_manifests": facts.has_manifests, "has_layers": facts.has_layers, "tags": facts.tags,
                  "ignored": [list(i) for i in facts.ignored], "manifests": sorted(facts.manifests),
                  "null_revisions": facts.null_revisions, "problems": [list(p) for p in facts.problems],
                  "bad_revision_dirs": facts.bad_revision_dirs, "bad_tag_names": facts.bad_tag_names},
        "results": [[d, _artifact_value(r) if isinstance(r, Artifact) else ["f", r.reason, r.detail]]
                    for d, r in results.items()],
        "edges": recorder.edges, "problems": problems}
    data = json.dumps(value, separators=(",", ":")).encode()
    if len(data) + 512 > MAX_LINE:
        return name, None, None
    return name, fp, data


class RecordInvalid(Exception):
    pass


def _str(v) -> str:
    if not isinstance(v, str):
        raise RecordInvalid(f"not a string: {type(v).__name__}")
    return v


def _int(v) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not -(1 << 63) <= v < 1 << 63:
        raise RecordInvalid("not an integer")
    return v


def _strs(v, n: int | None = None) -> list[str]:
    if not isinstance(v, list) or (n is not None and len(v) != n):
        raise RecordInvalid("not a list of strings")
    return [_str(x) for x in v]


def _str_map(v) -> dict[str, str]:
    if not isinstance(v, dict):
        raise RecordInvalid("not an object")
    return {_str(k): _str(x) for k, x in v.items()}


def _annotations(v) -> dict | None:
    return None if v is None else _str_map(v)


@dataclass
class Record:
    """One repository as the prefetch saw it, validated."""
    facts: ListingFacts
    results: dict[str, Artifact | Failure]
    edges: dict[str, list[str]]
    problems: dict[str, list[tuple[str, str]]]

    @classmethod
    def parse(cls, name: str, data: bytes) -> Record:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise RecordInvalid(f"not JSON: {e}") from None
        try:
            return cls._parse(name, value)
        except (KeyError, TypeError, AttributeError) as e:
            raise RecordInvalid(f"malformed: {e!r}") from None

    @classmethod
    def _parse(cls, name: str, value) -> Record:
        f = value["facts"]
        if not isinstance(f["has_manifests"], bool) or not isinstance(f["has_layers"], bool):
            raise RecordInvalid("facts")
        facts = ListingFacts(
            has_manifests=f["has_manifests"], has_layers=f["has_layers"], tags=_str_map(f["tags"]),
            ignored=[cast(tuple[str, str, str], tuple(_strs(i, 3))) for i in f["ignored"]],
            manifests=set(_strs(f["manifests"])), null_revisions=_str_map(f["null_revisions"]),
            problems=[cast(tuple[str, str, str, str], tuple(_strs(p, 4))) for p in f["problems"]],
            bad_revision_dirs=_strs(f["bad_revision_dirs"]), bad_tag_names=_strs(f["bad_tag_names"]))
        results: dict[str, Artifact | Failure] = {}
        for digest, r in value["results"]:
            digest = _str(digest)
            if r[0] == "f" and len(r) == 3:
                results[digest] = Failure(name, digest, _str(r[1]), _str(r[2]))
            elif r[0] == "a" and len(r) == 9:
                refs = [Reference(_str(c), _str(p), _str(u), _annotations(a)) for c, p, u, a in r[8]]
                results[digest] = Artifact(name, digest, _str(r[1]), _str(r[2]), _int(r[3]), _str(r[4]), _str(r[5]),
                                           _annotations(r[6]), _str(r[7]), refs)
            else:
                raise RecordInvalid(f"result of {digest[:80]!r}")
        edges = {_str(k): _strs(v) for k, v in value["edges"].items()}
        problems = {_str(k): [cast(tuple[str, str], tuple(_strs(p, 2))) for p in v]
                    for k, v in value["problems"].items()}
        for parent, children in edges.items():
            if parent not in results or any(c not in results for c in children):
                raise RecordInvalid("an edge leads outside the results")
        return cls(facts, results, edges, problems)

    def replay(self, targets: list[str]) -> tuple[dict[str, Artifact | Failure], list[tuple[str, str, str]]] | None:
        """The results and problems the abstraction of targets (in this order) gives, in its order;
        None when a target is not in the record (it is read from storage)."""
        done: dict[str, Artifact | Failure] = {}
        problems: list[tuple[str, str, str]] = []
        for target in targets:
            if target not in self.results:
                return None
            if target in done:
                continue
            work = [(target, iter(self.edges.get(target, ())))]
            on_path = {target}
            while work:
                digest, children = work[-1]
                child = next(children, None)
                if child is not None:
                    if child not in done and child not in on_path:
                        work.append((child, iter(self.edges.get(child, ()))))
                        on_path.add(child)
                    continue
                work.pop()
                on_path.discard(digest)
                problems.extend((digest, reason, detail) for reason, detail in self.problems.get(digest, ()))
                done[digest] = self.results[digest]
        return done, problems


def examine_prefetched(layout: Layout, name: str, project: str, repository: store.RepositoryRow | None,
                       existing: dict[str, int], import_untagged: bool, recorded_fp: str, data: bytes,
                       io_pool: Executor | None = None, window: int = 8) -> store.RepositoryWrite:
    """The repository's writes from its prefetch record when its fingerprint is unchanged, else
    (or when the record does not cover the database's digests) from storage."""
    now = fingerprint.repository_fingerprint(layout.storage, name)
    if now is not None and hmac.compare_digest(now, recorded_fp):
        try:
            record = Record.parse(name, data)
        except RecordInvalid:
            record = None
        if record is not None:
            empty = empty_write(name, project, record.facts, existing)
            if empty is not None:
                empty.source = "prefetch"
                return empty
            replayed = record.replay(targets_of(record.facts, existing, import_untagged))
            if replayed is not None:
                write = compose_write(name, project, repository, existing, record.facts, *replayed)
                write.source = "prefetch"
                return write
    write = examine(layout, name, project, repository, existing, import_untagged, io_pool, window)
    write.source = "storage"
    return write


# ------------------------------------------------------------------------------ writing the file

@dataclass
class PrepareReport:
    path: str
    repositories: int = 0      # recorded
    not_recorded: int = 0      # read in the window whatever happens
    artifacts: int = 0         # results recorded (children included)
    bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"path": self.path, "repositories": self.repositories, "not_recorded": self.not_recorded,
                "artifacts": self.artifacts, "bytes": self.bytes, "seconds": round(self.seconds, 3)}


def prepare_prefetch(storage: Storage, backup_dir: Path, jobs: int = 4, progress: Progress | None = None,
                     about: dict | None = None, began: float | None = None) -> PrepareReport:
    """Read and abstract every repository of storage into the prefetch file of backup_dir (module doc).
    The file records the seconds since began (the whole --prepare; default: now)."""
    began = time.monotonic() if began is None else began
    progress = progress or Silent()
    folder = private_dir(Path(backup_dir) / FOLDER)
    path = folder / FILE
    _remove_orphaned_temporaries(folder)
    tmp = folder / f".{FILE}.{os.getpid()}.tmp"
    key, key_id = _key()
    report = PrepareReport(str(path))
    layout = Layout(storage)
    jobs = max(1, jobs)
    header = {"format": PREFETCH_FORMAT, "tool": __version__, "fingerprint": fingerprint.VERSION,
              "storage": storage.description, "key": key_id, "created": now_iso(), **(about or {})}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            previous = b""

            def line(kind: str, body: bytes) -> None:
                nonlocal previous
                content = kind.encode() + b"\t" + body
                mac = _mac(key, previous, content)
                out.write(mac + b"\t" + content + b"\n")
                previous = mac

            line("H", json.dumps(header, sort_keys=True).encode())
            pool = _readers(storage, jobs)
            io_pool = ThreadPoolExecutor(jobs, thread_name_prefix="read-ahead") if storage.batch_listing else None
            progress.start(0, 0)
            try:
                in_flight: deque[Future] = deque()

                def take() -> None:
                    name, fp, data = in_flight.popleft().result()
                    if fp is None or data is None:
                        report.not_recorded += 1
                    else:
                        line("R", name.encode() + b"\t" + fp.encode() + b"\t" + data)
                        report.repositories += 1
                        report.bytes += len(data)
                        report.artifacts += data.count(b'",["a",') + data.count(b'",["f",')
                    progress.advance(1)

                for entry in layout.repositories():
                    if entry.kind != "repository":
                        continue
                    in_flight.append(pool.submit(read_record, layout, entry.name, io_pool, jobs))
                    while len(in_flight) > jobs * 4:
                        take()
                while in_flight:
                    take()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                if io_pool:
                    io_pool.shutdown(wait=True, cancel_futures=True)
            report.seconds = time.monotonic() - began
            line("E", json.dumps({"repositories": report.repositories, "seconds": round(report.seconds, 3),
                                  "finished": now_iso()}, sort_keys=True).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    progress.finish()
    return report


def _remove_orphaned_temporaries(folder: Path) -> None:
    """The partial files of --prepares killed while writing (nothing reads them; each can be as large
    as the prefetch): removed once the process named in the name is gone."""
    for p in folder.glob(f".{FILE}.*.tmp"):
        pid = p.name[len(FILE) + 2:-len(".tmp")]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            p.unlink(missing_ok=True)


# ------------------------------------------------------------------------------ reading the file

@dataclass(frozen=True)
class _Entry:
    offset: int
    previous: bytes
    fp: str


class Prefetch:
    """A verified prefetch file: which repositories it holds, and their records on demand."""

    def __init__(self, path: Path, header: dict, index: dict[str, _Entry], key: bytes, seconds: float):
        self.path, self.header, self._index, self._key, self.seconds = path, header, index, key, seconds
        self._file = open(path, "rb")   # noqa: SIM115 - closed by close()
        self.rejected = 0

    @classmethod
    def open(cls, backup_dir: Path, storage: Storage) -> Prefetch | None:
        """The backup folder's prefetch for storage; None when there is none; PrefetchIgnored
        (its message says why) when it cannot be used."""
        path = prefetch_path(backup_dir)
        try:
            f = open(path, "rb")   # noqa: SIM115
        except FileNotFoundError:
            return None
        except OSError as e:
            raise PrefetchIgnored(f"{path} cannot be read: {e.strerror}") from None
        keyed = backup_key(create=False)
        with f:
            if not path.is_file() or path.is_symlink():
                raise PrefetchIgnored(f"{path} is not a regular file")
            if keyed is None:
                raise PrefetchIgnored(f"{path} cannot be proved authentic: there is no backup key on this machine")
            key, key_id = keyed
            header, index, seconds = cls._verify(f, path, key, key_id)
        for field, want in (("format", PREFETCH_FORMAT), ("tool", __version__), ("fingerprint", fingerprint.VERSION),
                            ("storage", storage.description)):
            if header.get(field) != want:
                raise PrefetchIgnored(f"{path} was made for {field} {header.get(field)!r}, not {want!r} (stale or "
                                      "foreign)")
        return cls(path, header, index, key, seconds)

    @staticmethod
    def _verify(f, path: Path, key: bytes, key_id: str) -> tuple[dict, dict[str, _Entry], float]:
        previous = b""
        offset = 0
        header: dict | None = None
        index: dict[str, _Entry] = {}
        end: dict | None = None
        number = 0
        while True:
            raw = f.readline(MAX_LINE + 1)
            if not raw:
                break
            number += 1
            where = f"{path} line {number}"
            if len(raw) > MAX_LINE or not raw.endswith(b"\n"):
                raise PrefetchIgnored(f"{where} is longer than {MAX_LINE >> 20} MiB or cut short: damaged")
            mac, sep, content = raw[:-1].partition(b"\t")
            if number == 1 and content.startswith(b"H\t"):
                signed_with = _json_object(content[2:], where).get("key")
                if signed_with != key_id:
                    raise PrefetchIgnored(f"{path} was signed with key {signed_with!r}, not this machine's {key_id}: "
                                          "it cannot be proved authentic here")
            if not sep or not hmac.compare_digest(mac, _mac(key, previous, content)):
                raise PrefetchIgnored(f"{where}: its HMAC does not match: the file was changed or damaged")
            if end is not None:
                raise PrefetchIgnored(f"{where} follows the last line: damaged")
            kind, _, body = content.partition(b"\t")
            if number == 1:
                if kind != b"H":
                    raise PrefetchIgnored(f"{where} is not a prefetch header")
                header = _json_object(body, where)
            elif kind == b"R":
                name_b, _, rest = body.partition(b"\t")
                fp_b, _, _data = rest.partition(b"\t")
                name, fp = name_b.decode("ascii", "replace"), fp_b.decode("ascii", "replace")
                if not fingerprint.valid_repository_name(name) or not _HEX64.match(fp) or name in index:
                    raise PrefetchIgnored(f"{where} names no repository or one twice: damaged")
                index[name] = _Entry(offset, previous, fp)
            elif kind == b"E":
                end = _json_object(body, where)
            else:
                raise PrefetchIgnored(f"{where} is of no known kind: damaged")
            previous = mac
            offset += len(raw)
        if header is None or end is None:
            raise PrefetchIgnored(f"{path} is incomplete (no {'header' if header is None else 'last line'}): a "
                                  "--prepare that did not finish")
        if end.get("repositories") != len(index):
            raise PrefetchIgnored(f"{path} holds {len(index)} repositories, its last line says "
                                  f"{end.get('repositories')!r}: damaged")
        seconds = end.get("seconds")
        return header, index, float(seconds) if isinstance(seconds, (int, float)) else 0.0

    def __len__(self) -> int:
        return len(self._index)

    def record(self, name: str) -> tuple[str, bytes] | None:
        """(fingerprint, record bytes) of name, proved again; None when not held or no longer valid."""
        entry = self._index.get(name)
        if entry is None:
            return None
        self._file.seek(entry.offset)
        raw = self._file.readline(MAX_LINE + 1)
        mac, _, content = raw.rstrip(b"\n").partition(b"\t")
        if not raw.endswith(b"\n") or not hmac.compare_digest(mac, _mac(self._key, entry.previous, content)):
            self.rejected += 1
            return None
        _kind, _, body = content.partition(b"\t")
        _name, _, rest = body.partition(b"\t")
        fp, _, data = rest.partition(b"\t")
        return fp.decode("ascii"), data

    def close(self) -> None:
        self._file.close()


def _json_object(body: bytes, where: str) -> dict:
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise PrefetchIgnored(f"{where} is not a JSON object: damaged")
    return value
