"""FilesystemStorage.exists_many answers exactly what exists answers, path by path, whatever the
tree holds on the way: symbolic links inside and outside the root, files in place of folders,
missing folders, more folders than it keeps open."""
from __future__ import annotations

import pytest

from harbor_upgrade.errors import InvalidInput
from harbor_upgrade.registry import storage as storage_module
from harbor_upgrade.registry.storage import FilesystemStorage
from harbor_upgrade.verify import manifest_missing, missing_manifests


@pytest.fixture()
def tree(tmp_path):
    v2 = tmp_path / "root/docker/registry/v2"
    outside = tmp_path / "outside"
    (outside / "dir/mid").mkdir(parents=True)
    (outside / "dir/mid/link").write_text("x")
    (outside / "file").write_text("x")

    def file(rel: str) -> None:
        p = v2 / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")

    for i in range(6):
        file(f"repositories/p/r{i}/_manifests/revisions/sha256/{i:064x}/link")
        file(f"blobs/sha256/{i:064x}"[:15] + f"/{i:064x}/data")   # blobs/sha256/00/<hex>/data
    rev = v2 / "repositories/p/r0/_manifests/revisions/sha256"
    (rev / "aa").mkdir()
    (rev / "aa/link").mkdir()                                    # a folder where the file should be
    (rev / "bb").write_text("x")                                 # a file where a folder should be
    (rev / "cc").symlink_to(rev / f"{1:064x}", target_is_directory=True)   # a link inside the root
    (rev / "dd").symlink_to(outside / "dir/mid", target_is_directory=True)  # a link leading out
    (rev / "ee").mkdir()
    (rev / "ee/link").symlink_to(outside / "file")               # the file itself a link
    (rev / "ff").mkdir()
    (rev / "ff/link").symlink_to(rev / f"{0:064x}/link")          # a link to a file inside
    linked = v2 / "repositories/p/linked/_manifests/revisions"
    linked.mkdir(parents=True)
    (linked / "sha256").symlink_to(rev, target_is_directory=True)          # the folder above: inside
    out = v2 / "repositories/p/out/_manifests/revisions"
    out.mkdir(parents=True)
    (out / "sha256").symlink_to(outside / "dir", target_is_directory=True)  # the folder above: outside
    (v2 / "repositories/p/r1/_manifests/revisions/sha512").write_text("x")  # a file as the folder above
    (v2 / "top").write_text("x")
    return FilesystemStorage(tmp_path / "root")


def paths() -> list[str]:
    rev = "repositories/p/r0/_manifests/revisions/sha256"
    out = []
    for i in range(8):
        out += [f"repositories/p/r{i}/_manifests/revisions/sha256/{i:064x}/link",
                f"blobs/sha256/{i:02x}/{i:064x}/data", f"blobs/sha256/{i:02x}/{i:064x}/nothing"]
    out += [f"{rev}/{name}/link" for name in ("aa", "bb", "cc", "dd", "ee", "ff", "gg")]
    out += [f"{rev}/bb/link/deeper", f"{rev}/{0:064x}", rev,
            f"repositories/p/linked/_manifests/revisions/sha256/{0:064x}/link",
            "repositories/p/linked/_manifests/revisions/sha256/cc/link",
            "repositories/p/out/_manifests/revisions/sha256/mid/link",
            f"repositories/p/r1/_manifests/revisions/sha512/{1:064x}/link",
            "top", "a/top", "nothing/at/all/here"]
    return out


def test_exists_many_answers_as_exists_does(tree):
    want = [tree.exists(p) for p in paths()]
    assert list(tree.exists_many(paths())) == want
    # six revision links, the one blob at 00/ asked for, through cc (inside), through linked (inside)
    assert want.count(True) == 9


def test_exists_many_answers_the_same_with_few_folders_kept_open(tree, monkeypatch):
    monkeypatch.setattr(storage_module, "_HELD_FOLDERS", 2)
    assert list(tree.exists_many(paths() * 2)) == [tree.exists(p) for p in paths() * 2]


def test_exists_many_refuses_a_path_leaving_the_root_as_exists_does(tree):
    for bad in ("../x/y/z", "a/../../b/c", "/abs/a/b", "blobs/sha256/00/.."):
        with pytest.raises(InvalidInput):
            tree.exists(bad)
        with pytest.raises(InvalidInput):
            list(tree.exists_many([bad]))


def test_missing_manifests_is_manifest_missing_of_each_pair(tree):
    pairs = [(f"p/r{i}", f"sha256:{i:064x}") for i in range(8)] + [("p/r0", "sha256:" + "c" * 64),
                                                                    ("p/linked", f"sha256:{0:064x}")]
    assert missing_manifests(tree, pairs) == [p for p in pairs if manifest_missing(tree, *p)]
    assert len(missing_manifests(tree, pairs)) == 3


def test_missing_manifests_on_threads_keeps_the_order_and_the_answers(tree, monkeypatch):
    import harbor_upgrade.verify as verify_module
    pairs = [(f"p/r{i % 9}", f"sha256:{j:064x}") for j in range(3) for i in range(9)]
    pairs += [("p/linked", f"sha256:{0:064x}")]
    one_by_one = [p for p in pairs if manifest_missing(tree, *p)]
    monkeypatch.setattr(verify_module, "CHECK_RUN", 2)
    assert missing_manifests(tree, pairs, threads=3) == one_by_one
    assert 0 < len(one_by_one) < len(pairs)
