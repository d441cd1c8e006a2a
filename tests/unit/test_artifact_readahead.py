"""ReadAhead: the abstraction of a repository read ahead on a pool gives exactly what reading
synchronously gives — rows, failures, their order — whatever the window."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from harbor_upgrade.artifacts.abstraction import Failure, RepositoryAbstractor
from harbor_upgrade.artifacts.readahead import ReadAhead
from harbor_upgrade.registry.layout import Layout
from harbor_upgrade.registry.storage import FilesystemStorage
from tests.support.artifacts import Tree


class ThreadRecordingStorage(FilesystemStorage):
    """The filesystem, noting which thread read which file."""

    def __init__(self, root):
        super().__init__(root)
        self.readers: dict[str, set[str]] = {}

    def read(self, path: str, *limit) -> bytes:
        self.readers.setdefault(path, set()).add(threading.current_thread().name)
        return super().read(path, *limit)


def build(tree: Tree) -> None:
    """One repository: a dozen images, an index, an index with a child nobody stored, and one
    artifact broken in each way reading can break it."""
    repo = "p/many"
    images = [tree.image(repo, {"architecture": "amd64", "os": "linux", "created": f"2021-01-{i + 1:02d}T00:00:00Z"},
                         tags=(f"v{i}",))[0] for i in range(12)]
    missing_config, _ = tree.image(repo, {"os": "missing-config"})
    unlinked, _ = tree.image(repo, {"os": "unlinked"})
    truncated, _ = tree.image(repo, {"os": "truncated"})
    gone, _ = tree.image(repo, {"os": "gone"})
    tree.index(repo, images[:3], tags=("multi",))
    tree.index(repo, [images[3], "sha256:" + "9" * 64])
    cfg = json.loads(tree.path(missing_config).read_bytes())["config"]["digest"]
    tree.path(cfg).unlink()
    cfg = json.loads(tree.path(unlinked).read_bytes())["config"]["digest"]
    (tree.root / f"docker/registry/v2/repositories/{repo}/_layers/sha256/{cfg[7:]}/link").unlink()
    tree.path(truncated).write_bytes(tree.path(truncated).read_bytes()[:30])
    tree.path(gone).unlink()
    tree.revision_link(repo, images[5]).write_text("sha256:nowhere")


def abstract(layout, pool=None, window=4):
    listing = layout.list_repository("p/many")
    targets = sorted(listing.revisions)
    reader = ReadAhead(layout, listing, pool, targets, window) if pool else layout
    abstractor = RepositoryAbstractor(reader, listing)
    for digest in targets:
        try:
            abstractor.artifact(digest)
        except Failure:
            pass
    if pool:
        reader.close()
    return [(d, vars(r) if not isinstance(r, Failure) else ("failure", r.reason, r.detail))
            for d, r in abstractor.results().items()]


@pytest.mark.parametrize("window", [1, 3, 50])
def test_same_results_and_order_as_reading_synchronously(tmp_path, window):
    tree = Tree(tmp_path)
    build(tree)
    want = abstract(Layout(FilesystemStorage(tmp_path)))
    reasons = {r[1] for _, r in want if isinstance(r, tuple)}
    assert {"config-blob-missing", "manifest-invalid", "revision-link-invalid", "manifest-blob-missing"} <= reasons
    with ThreadPoolExecutor(4, thread_name_prefix="ahead") as pool:
        assert abstract(Layout(FilesystemStorage(tmp_path)), pool, window) == want


def test_manifests_and_configs_are_read_on_the_pool(tmp_path):
    tree = Tree(tmp_path)
    build(tree)
    storage = ThreadRecordingStorage(tmp_path)
    with ThreadPoolExecutor(4, thread_name_prefix="ahead") as pool:
        abstract(Layout(storage), pool, 8)
    blobs = {p: names for p, names in storage.readers.items() if p.startswith("blobs/")}
    ahead = [p for p, names in blobs.items() if all(n.startswith("ahead") for n in names)]
    # every image manifest and its config come from the pool; only index children are read in place
    assert len(ahead) >= 2 * 12
