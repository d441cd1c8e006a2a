"""The artifact prefetch (run --prepare): made while Harbor serves, changed storage afterwards
(a push, a tag moved, a manifest deleted, a tag added, a new repository), then the backfill with
the prefetch gives exactly the rows and notes of a backfill that reads everything, reading again
only the repositories that changed. A damaged, truncated, foreign or stale prefetch is ignored
with a message saying why; a record changed after it was checked is read from storage."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import harbor_upgrade
from harbor_upgrade.artifacts import backfill
from harbor_upgrade.artifacts.prefetch import Prefetch, PrefetchIgnored, prefetch_path, prepare_prefetch
from harbor_upgrade.registry.s3 import S3Storage
from harbor_upgrade.registry.storage import FilesystemStorage
from tests.support.artifacts import Tree, register, rows
from tests.support.s3 import upload_tree


@pytest.fixture
def site(harbor24, tmp_path):
    t = Tree(tmp_path / "storage")

    def cfg(n):
        return {"architecture": "amd64", "os": "linux", "n": n}
    amd, _ = t.image("lib/app", cfg(1))
    arm, _ = t.image("lib/app", {"architecture": "arm64", "os": "linux"}, tags=("arm",))
    idx = t.index("lib/app", [amd, arm], tags=("v1",))
    same, _ = t.image("lib/same", cfg(2), tags=("1.0", "latest"))
    old, _ = t.image("lib/moved", cfg(3), tags=("stable",))
    new, _ = t.image("lib/moved", cfg(4), tags=("next",))
    gone, _ = t.image("lib/deleted", cfg(5), tags=("x",))
    broken, data = t.image("lib/broken", cfg(6), tags=("b",))
    t.path(broken).write_bytes(b'{"schemaVersion":')       # broken now, pushed again before the window
    icon, _ = t.image("lib/chart", config={"name": "c"}, config_type="application/vnd.acme.thing.config.v1+json",
                      layers=(b"not an image",), layer_annotations=[{"io.goharbor.artifact.v1alpha1.icon": ""}],
                      tags=("c1",))
    register(harbor24.dsn, [("lib/app", idx, ("v1",)), ("lib/app", arm, ("arm",)),
                            ("lib/same", same, ("1.0", "latest")),
                            ("lib/moved", old, ("stable",)), ("lib/moved", new, ("next",)),
                            ("lib/deleted", gone, ("x",)), ("lib/broken", broken, ("b",)),
                            ("lib/chart", icon, ("c1",))])
    return t, {"old": old, "new": new, "gone": gone, "broken": (broken, data)}, harbor24.dsn


def change_storage(t: Tree, digests: dict, dsn: str) -> None:
    """What Harbor's users did after --prepare: a tag moved, a manifest deleted, a new repository
    pushed, a broken manifest blob pushed again (its repository's listing unchanged)."""
    link = t.root / "docker/registry/v2/repositories/lib/moved/_manifests/tags/stable/current/link"
    link.write_text(digests["new"])
    t.revision_link("lib/deleted", digests["gone"]).unlink()
    fresh, _ = t.image("lib/fresh", tags=("1",))
    register(dsn, [("lib/fresh", fresh, ("1",))])
    broken, data = digests["broken"]
    t.path(broken).write_bytes(data)


class OnS3:
    """The tree in a SeaweedFS bucket, its changes mirrored there."""

    def __init__(self, request, root):
        self.weed = request.getfixturevalue("weed")
        self.bucket, self.rootdir = request.getfixturevalue("s3_upload")(root)
        self.root = root

    def storage(self):
        return S3Storage(self.bucket, self.rootdir, endpoint_url=self.weed.endpoint)

    def mirror(self, removed: list[str]) -> None:
        client = self.weed.client()
        try:
            upload_tree(client, self.bucket, self.rootdir, self.root)
            for rel in removed:
                client.delete_object(Bucket=self.bucket, Key=f"{self.rootdir.strip('/')}/{rel}")
        finally:
            client.close()


@pytest.mark.parametrize("kind", ["filesystem", "s3"])
def test_rows_with_the_prefetch_equal_rows_read_from_storage(site, twin, tmp_path, request, kind):
    t, digests, _ = site
    backup = tmp_path / "backup"
    s3 = OnS3(request, t.root) if kind == "s3" else None
    storage = s3.storage() if s3 else FilesystemStorage(t.root)
    made = prepare_prefetch(storage, backup, jobs=2)
    assert (made.repositories, made.not_recorded) == (5, 1), "lib/broken is read in the window"
    assert oct(prefetch_path(backup).stat().st_mode & 0o777) == "0o600"
    assert oct(prefetch_path(backup).parent.stat().st_mode & 0o777) == "0o700"
    site_dsn = site[2]
    change_storage(t, digests, site_dsn)
    if s3:
        s3.mirror([str(t.revision_link("lib/deleted", digests["gone"]).relative_to(t.root))])
    plain = twin()
    read = backfill(plain, storage, jobs=2, import_untagged=True)
    prefetch = Prefetch.open(backup, storage)
    assert prefetch is not None and len(prefetch) == 5
    used = backfill(site_dsn, storage, jobs=2, import_untagged=True, prefetch=prefetch)
    prefetch.close()
    assert (used.prefetched, used.reread) == (3, 2), "lib/moved and lib/deleted changed; lib/fresh is new"
    assert read.prefetched == 0
    strip = ("id", "parent_id", "child_id", "push_time")

    def comparable(dsn):
        return [{k: (json.dumps(v, sort_keys=True, default=str) if k != "references" else
                     [{kk: vv for kk, vv in r.items() if kk not in strip} for r in v])
                 for k, v in row.items() if k not in strip} for row in rows(dsn)]
    assert comparable(site_dsn) == comparable(plain)
    one, two = read.to_dict(), used.to_dict()
    for k in ("problems", "ignored_tags", "artifacts_done", "children_created", "references_created",
              "untagged_found", "untagged_imported"):
        assert one[k] == two[k], k
    assert not any(p["repository"] == "lib/broken" for p in two["problems"]), "the blob was pushed again"
    storage.close()
    assert any(p["repository"] == "lib/deleted" for p in two["problems"])


def test_a_damaged_truncated_foreign_or_stale_prefetch_is_ignored_with_the_reason(site, tmp_path, monkeypatch):
    t, _, _ = site
    backup = tmp_path / "backup"
    storage = FilesystemStorage(t.root)
    prepare_prefetch(storage, backup, jobs=1)
    path = prefetch_path(backup)
    good = path.read_bytes()

    def refused(data: bytes, storage=storage) -> str:
        path.write_bytes(data)
        with pytest.raises(PrefetchIgnored) as e:
            Prefetch.open(backup, storage)
        return str(e.value)

    lines = good.splitlines(keepends=True)
    flipped = bytearray(good)
    flipped[len(lines[0]) + 200] ^= 1
    assert "HMAC does not match" in refused(bytes(flipped))
    assert "incomplete" in refused(b"".join(lines[:-1]))
    assert "HMAC does not match" in refused(b"".join(lines[:2] + lines[3:]))   # a record dropped
    assert "longer than" in refused(good + b"x" * 10)                          # cut short / garbage
    other = tmp_path / "other"
    shutil.copytree(t.root, other)
    path.write_bytes(good)
    assert "stale or foreign" in refused(good, FilesystemStorage(other))
    assert Prefetch.open(backup, storage) is not None
    monkeypatch.setenv("HARBOR_UPGRADE_KEY_FILE", str(tmp_path / "another.key"))
    (tmp_path / "another.key").write_text("0" * 64 + "\n")
    (tmp_path / "another.key").chmod(0o600)
    assert "signed with key" in refused(good)
    monkeypatch.undo()
    # a record changed after the file was checked is not used
    prefetch = Prefetch.open(backup, storage)
    assert prefetch is not None
    at = good.index(b"\tR\tlib/same\t")
    tampered = bytearray(good)
    tampered[at + 200] ^= 1
    path.write_bytes(bytes(tampered))
    assert prefetch.record("lib/same") is None and prefetch.rejected == 1
    assert prefetch.record("lib/app") is not None
    prefetch.close()


KILLED_PREPARE = """
import os, signal, sys
from pathlib import Path
from harbor_upgrade.artifacts.prefetch import prepare_prefetch
from harbor_upgrade.progress import Silent
from harbor_upgrade.registry.storage import FilesystemStorage

class KilledAtTheFirstRepository(Silent):
    def advance(self, count):
        os.kill(os.getpid(), signal.SIGKILL)

prepare_prefetch(FilesystemStorage(Path(sys.argv[1])), Path(sys.argv[2]), jobs=1, progress=KilledAtTheFirstRepository())
"""


def test_a_prepare_killed_while_writing_leaves_no_partial_file_once_prepare_runs_again(tmp_path):
    t = Tree(tmp_path / "storage")
    t.image("lib/one", tags=("1",))
    t.image("lib/two", tags=("2",))
    backup = tmp_path / "backup"
    src = str(Path(harbor_upgrade.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    killed = subprocess.run([sys.executable, "-c", KILLED_PREPARE, str(t.root), str(backup)], env=env,
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = prefetch_path(backup).parent
    left = [p.name for p in folder.iterdir()]
    assert len(left) == 1 and left[0].endswith(".tmp"), left   # what the kill left: the partial file
    writing = subprocess.Popen(["sleep", "60"])                 # another prepare, still writing its own
    try:
        theirs = folder / f".{prefetch_path(backup).name}.{writing.pid}.tmp"
        theirs.write_bytes(b"H\t")
        made = prepare_prefetch(FilesystemStorage(t.root), backup, jobs=1)
        assert made.repositories == 2
        assert sorted(p.name for p in folder.iterdir()) == sorted([prefetch_path(backup).name, theirs.name])
    finally:
        writing.kill()
        writing.wait()
