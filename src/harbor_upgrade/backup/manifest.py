"""The backup's manifest: what it holds, checked as hostile input, and proved authentic.

A backup folder may have been written to by anyone who can write where it is kept. The
manifest therefore

* names every entry by a relative, normalised path that stays inside its root (no ``..``,
  no absolute path, no entry below a symlink or a file of the manifest) — checked by
  ``entry_problems`` before anything is read or written;
* is authenticated by an HMAC-SHA256 (``manifest.hmac``) under a key kept outside the
  backup folder (``backup_key_path``: 0600 in a 0700 folder of the user's home, or
  $HARBOR_UPGRADE_KEY_FILE). Whoever can write the backup folder but not read that key
  cannot change a path, a checksum or an owner without the change being seen. Someone who
  can read the key (root on this machine) is not kept out by it; a backup carried to
  another machine is checked with a copy of the key, or with the manifest's sha256 that
  ``backup`` prints for the operator to record elsewhere (``--manifest-sha256``).

``manifest.sha256`` stays: it tells plain corruption (a flipped bit) from tampering.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import posixpath
import pwd
import re
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import InvalidInput, ValidationFailed
from ..private import private_dir, write_private

FORMAT = 1
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"
MANIFEST_MAC = "manifest.hmac"
DUMP_DIR = "database"
FILES_DIR = "files"
AREAS = ("harbor", "data_volume", "datadir")
# How the database is held: a pg_dump (``database/``), or a copy of the stopped cluster's data
# folder (``files/datadir/``: files and folders only, see entry_problems).
KINDS = ("dump", "datadir")
KEY_ENV = "HARBOR_UPGRADE_KEY_FILE"
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class FileEntry:
    """One backed-up file system entry: where it came from and how it looked."""
    area: str            # "harbor", "data_volume" or "datadir" (the stopped cluster's data folder)
    path: str            # relative to the area's root, "/"-separated; "." is the root itself
    type: str            # "file", "dir" or "symlink"
    uid: int
    gid: int
    mode: int            # permission bits (stat.S_IMODE)
    mtime_ns: int
    size: int = 0
    sha256: str | None = None
    target: str | None = None   # of a symlink

    @property
    def stored(self) -> str:
        return f"{FILES_DIR}/{self.area}/{self.path}"

    @property
    def parts(self) -> list[str]:
        return [] if self.path == "." else self.path.split("/")


@dataclass
class StoredFile:
    """A file of the backup itself (the dump's files), with its checksum."""
    path: str
    size: int
    sha256: str


@dataclass
class BackupManifest:
    created: str
    tool_version: str
    harbor_version: str | None
    schema_version: int | None
    dirty: bool | None
    data_version: int | None
    pg_version: str
    pg_major: int
    pg_dump_version: str
    database: str
    dump_sql_sha256: str
    table_counts: dict[str, int]
    roots: dict[str, str]
    skipped: list[dict[str, str]]
    files: list[FileEntry]
    stored: list[StoredFile]
    format: int = FORMAT
    kind: str = "dump"   # or "datadir": no dump; the cluster's folder is the files of the datadir area
    db_user: str | None = None   # datadir: the role the throwaway server's census connects as

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackupManifest:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationFailed(f"backup manifest is not JSON: {e}", reference="backup-corrupt") from None
        if not isinstance(d, dict):
            raise ValidationFailed("backup manifest is not a JSON object", reference="backup-corrupt")
        if d.get("format") != FORMAT:
            raise InvalidInput(f"backup manifest format {d.get('format')!r} is not {FORMAT}",
                               reference="backup-format")
        try:
            d["files"] = [_strict(FileEntry, f) for f in d["files"]]
            d["stored"] = [_strict(StoredFile, f) for f in d["stored"]]
            return _strict(cls, d)
        except (KeyError, TypeError) as e:
            raise ValidationFailed(f"backup manifest is malformed: {e}", reference="backup-corrupt") from None


def _strict(cls, d):
    """cls(**d) with every field of the type its annotation says (no bool for int, no extra keys)."""
    if not isinstance(d, dict):
        raise TypeError(f"{cls.__name__} entry is not an object")
    # the annotations are strings ("int", "str | None"): `from __future__ import annotations`
    names = {f.name: str(f.type) for f in fields(cls)}
    extra = set(d) - set(names)
    if extra:
        raise TypeError(f"{cls.__name__} has unknown keys {sorted(extra)}")
    for name, value in d.items():
        kind = names[name]
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "str": isinstance(value, str),
              "str | None": value is None or isinstance(value, str),
              "int | None": value is None or (isinstance(value, int) and not isinstance(value, bool)),
              "bool | None": value is None or isinstance(value, bool)}.get(kind, True)
        if not ok:
            raise TypeError(f"{cls.__name__}.{name} is {value!r}, not {kind}")
    return cls(**d)


def is_safe_relpath(path: str) -> bool:
    """A relative, normalised path that cannot leave its root."""
    return (isinstance(path, str) and path != "" and "\0" not in path and not path.startswith("/")
            and posixpath.normpath(path) == path and ".." not in path.split("/"))


def entry_problems(manifest: BackupManifest) -> list[str]:
    """Every entry that could make a restore write outside its root, or through a symlink."""
    problems = []
    seen: dict[tuple[str, str], str] = {}
    for e in manifest.files:
        where = f"{e.area}/{e.path}"
        if e.area not in AREAS:
            problems.append(f"{where}: unknown area {e.area!r}")
            continue
        if not is_safe_relpath(e.path):
            problems.append(f"{where}: not a relative path inside its root")
            continue
        if (e.area, e.path) in seen:
            problems.append(f"{where}: listed twice")
            continue
        if e.type not in ("file", "dir", "symlink") or (e.path == "." and e.type != "dir"):
            problems.append(f"{where}: type {e.type!r} is not allowed here")
            continue
        if not (0 <= e.mode <= 0o7777 and e.uid >= 0 and e.gid >= 0):
            problems.append(f"{where}: impossible owner or mode")
        if e.type == "file" and (e.size < 0 or not _HEX64.fullmatch(e.sha256 or "")):
            problems.append(f"{where}: no valid size and sha256")
        if e.type == "symlink" and (not e.target or "\0" in e.target):
            problems.append(f"{where}: symlink without a target")
        seen[(e.area, e.path)] = e.type
    for (area, path), _kind in seen.items():
        if path == ".":
            continue
        parent = posixpath.dirname(path) or "."
        if seen.get((area, parent)) != "dir":
            problems.append(f"{area}/{path}: its parent {parent} is "
                            + ("not in the backup" if (area, parent) not in seen
                               else f"a {seen[(area, parent)]}, not a folder") + " (it would be written through)")
    problems += _kind_problems(manifest, seen)
    for s in manifest.stored:
        if not is_safe_relpath(s.path) or not s.path.startswith(DUMP_DIR + "/") or not _HEX64.fullmatch(s.sha256):
            problems.append(f"{s.path}: not a dump file inside {DUMP_DIR}/")
    for area, root in manifest.roots.items():
        if area not in AREAS or not os.path.isabs(root):
            problems.append(f"roots.{area}: {root!r} is not an absolute folder of a known area")
    return problems


def _kind_problems(manifest: BackupManifest, seen: dict[tuple[str, str], str]) -> list[str]:
    """A data folder is copied as folders and regular files only: a symlink there (pg_wal or a
    tablespace elsewhere) would make a restore write outside the folder, so none is ever taken,
    and one listed is refused."""
    if manifest.kind not in KINDS:
        return [f"kind {manifest.kind!r} is not one of {', '.join(KINDS)}"]
    has_datadir = any(area == "datadir" for area, _ in seen)
    if manifest.kind == "dump":
        return ["datadir entries in a backup of kind dump"] if has_datadir else []
    problems = [f"datadir/{path}: a {kind} in a data folder copy (only folders and regular files are taken)"
                for (area, path), kind in seen.items() if area == "datadir" and kind not in ("dir", "file")]
    if seen.get(("datadir", ".")) != "dir" or seen.get(("datadir", "PG_VERSION")) != "file":
        problems.append("a backup of kind datadir without its data folder (datadir/. and datadir/PG_VERSION)")
    if "datadir" not in manifest.roots:
        problems.append("a backup of kind datadir without roots.datadir")
    if manifest.stored:
        problems.append("a backup of kind datadir lists dump files")
    return problems


# -- authentication -------------------------------------------------------------------------

def backup_key_path() -> Path:
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    home = pwd.getpwuid(os.geteuid()).pw_dir  # not $HOME: sudo may keep the caller's
    return Path(home) / ".config" / "harbor-upgrade" / "backup.key"


def _read_key(path: Path) -> bytes | None:
    try:
        raw = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    st = path.stat()
    if st.st_mode & 0o077:
        raise InvalidInput(f"backup key {path} can be read by others (mode {st.st_mode & 0o777:04o})",
                           hint=f"chmod 600 {path}", reference="backup-key-exposed")
    return raw


def backup_key(create: bool) -> tuple[bytes, str] | None:
    """(key, key id) — made on first use when create — or None when there is none."""
    path = backup_key_path()
    key = _read_key(path)
    if key is None and create:
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        key = _read_key(path)
    if key is None:
        return None
    return key, hashlib.sha256(b"harbor-upgrade key id:" + key).hexdigest()[:16]


def mac_line(manifest_bytes: bytes, key: bytes, key_id: str) -> str:
    return f"hmac-sha256:{hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()} key:{key_id}\n"


def sign(backup_dir: Path, manifest_bytes: bytes) -> str:
    """Write manifest.sha256 and manifest.hmac; returns the manifest's sha256."""
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    keyed = backup_key(create=True)
    assert keyed is not None  # create=True makes the key when there is none
    key, key_id = keyed
    write_private(backup_dir / MANIFEST_SUM, f"{digest}  {MANIFEST}\n")
    write_private(backup_dir / MANIFEST_MAC, mac_line(manifest_bytes, key, key_id))
    return digest


def authenticate(backup_dir: Path, manifest_bytes: bytes, expect_sha256: str | None) -> tuple[str | None, str | None]:
    """(how the manifest was proved authentic, None) or (None, why it could not be)."""
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    if expect_sha256:
        want = expect_sha256.removeprefix("sha256:").strip().lower()
        if hmac.compare_digest(want, digest):
            return "the manifest sha256 given", None
        return None, f"{MANIFEST}: sha256 {digest}, not the {want} given: the manifest was changed"
    try:
        line = (backup_dir / MANIFEST_MAC).read_text().split()
    except FileNotFoundError:
        return None, f"{MANIFEST_MAC} is missing: the manifest cannot be proved authentic"
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{MANIFEST_MAC} is unreadable: {e}"
    key_id = line[1].removeprefix("key:") if len(line) > 1 else ""
    found = backup_key(create=False)
    if found is None or found[1] != key_id:
        return None, (f"the manifest was signed with key {key_id or '?'}, which is not at {backup_key_path()}: "
                      "it cannot be proved authentic here")
    if not hmac.compare_digest(mac_line(manifest_bytes, *found), " ".join(line[:2]) + "\n"):
        return None, f"{MANIFEST}: its HMAC does not match: it was changed by someone without the backup key"
    return f"HMAC with key {key_id}", None
