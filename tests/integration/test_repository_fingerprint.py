"""A repository's listing fingerprint changes with every change that decides its artifact rows
(a push, a delete, a tag added, removed or moved, a revision added or removed, a layer linked),
on the filesystem and on S3 (SeaweedFS), and with nothing else."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from harbor_upgrade.registry.fingerprint import repository_fingerprint
from harbor_upgrade.registry.layout import LayoutWriter
from harbor_upgrade.registry.s3 import S3Storage
from harbor_upgrade.registry.storage import V2, FilesystemStorage

REPO, OTHER = "library/app", "library/other"


def image(n: int) -> bytes:
    config = b'{"architecture":"amd64","os":"linux","n":%d}' % n
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    return (b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
            b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,'
            b'"digest":"%s"},"layers":[]}' % (len(config), digest.encode()))


class Fs:
    """The tree on disk, changed the way distribution changes it."""

    def __init__(self, root: Path):
        self.root = root
        self.w = LayoutWriter(root)

    def storage(self):
        return FilesystemStorage(self.root)

    def path(self, rel: str) -> Path:
        return self.root / V2 / "repositories" / rel

    def put(self, rel: str, data: bytes) -> None:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def delete(self, rel: str) -> None:
        p = self.path(rel)
        shutil.rmtree(p) if p.is_dir() else p.unlink()


class S3(Fs):
    """The same tree in a bucket: each change is also made to the bucket's keys."""

    def __init__(self, root: Path, weed, s3_upload):
        super().__init__(root)
        self.bucket, self.rootdir = s3_upload(root)
        self.client = weed.client()
        self.endpoint = weed.endpoint

    def storage(self):
        return S3Storage(self.bucket, self.rootdir, endpoint_url=self.endpoint)

    def key(self, rel: str) -> str:
        return f"{self.rootdir.strip('/')}/{V2}/repositories/{rel}"

    def put(self, rel: str, data: bytes) -> None:
        super().put(rel, data)
        self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data)

    def delete(self, rel: str) -> None:
        super().delete(rel)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key(rel))
        for page in pages:
            for obj in page.get("Contents", ()):
                self.client.delete_object(Bucket=self.bucket, Key=obj["Key"])


def revision(digest: str) -> str:
    return f"_manifests/revisions/sha256/{digest[7:]}/link"


def push(t: Fs, repo: str, data: bytes, tag: str | None) -> str:
    """A push as distribution writes it: the blob, the revision link, the tag's current link and history."""
    digest = t.w.put_blob(data)
    t.put(f"{repo}/{revision(digest)}", digest.encode())
    if tag:
        t.put(f"{repo}/_manifests/tags/{tag}/current/link", digest.encode())
        t.put(f"{repo}/_manifests/tags/{tag}/index/sha256/{digest[7:]}/link", digest.encode())
    return digest


@pytest.fixture(params=["fs", "s3"])
def tree(request, tmp_path):
    root = tmp_path / "storage"
    LayoutWriter(root)
    base = Fs(root)
    one = push(base, REPO, image(1), "v1")
    push(base, REPO, image(2), "v2")
    push(base, OTHER, image(1), "latest")
    base.put(f"{REPO}/_layers/sha256/{one[7:]}/link", one.encode())
    if request.param == "fs":
        return base
    return S3(root, request.getfixturevalue("weed"), request.getfixturevalue("s3_upload"))


def test_every_change_that_decides_rows_changes_the_fingerprint_and_nothing_else_does(tree):
    storage = tree.storage()
    try:
        def fp(repo: str = REPO) -> str:
            value = repository_fingerprint(storage, repo)
            assert value is not None
            return value

        seen = {fp()}
        other = fp(OTHER)

        def changed(what: str) -> None:
            now = fp()
            assert now not in seen, f"{what} left the fingerprint as it was"
            seen.add(now)
            assert fp(OTHER) == other, f"{what} changed another repository's fingerprint"

        assert fp() == fp(), "the fingerprint is not stable"
        three = push(tree, REPO, image(3), "v3")
        changed("a push (revision and new tag)")
        push(tree, REPO, image(4), None)
        changed("a manifest revision added (pushed by digest)")
        tree.put(f"{REPO}/_manifests/tags/extra/current/link", three.encode())
        changed("a tag added to an existing digest")
        one = "sha256:" + hashlib.sha256(image(1)).hexdigest()
        tree.put(f"{REPO}/_manifests/tags/v3/current/link", one.encode())
        changed("a tag moved to another digest")
        tree.delete(f"{REPO}/_manifests/tags/extra")
        changed("a tag removed")
        tree.delete(f"{REPO}/{revision(three)}")
        changed("a manifest deleted (its revision link removed, the folder kept)")
        layer = tree.w.put_blob(b"a layer")
        tree.put(f"{REPO}/_layers/sha256/{layer[7:]}/link", layer.encode())
        changed("a layer linked")
        # what decides no row: an upload in progress, the blob store
        before = fp()
        tree.put(f"{REPO}/_uploads/0b1c/startedat", b"2021-01-01T00:00:00Z")
        tree.w.put_blob(b"an unrelated blob")
        assert fp() == before
        assert repository_fingerprint(storage, "../etc") is None
    finally:
        storage.close()


def test_filesystem_records_a_symlinked_link_by_its_kind_and_reads_nothing_through_it(tmp_path):
    root = tmp_path / "storage"
    t = Fs(root)
    LayoutWriter(root)
    push(t, REPO, image(1), "v1")
    storage = t.storage()
    before = repository_fingerprint(storage, REPO)
    secret = tmp_path / "secret"
    secret.write_text("sha256:" + "0" * 64)
    link = t.path(f"{REPO}/_manifests/tags/v1/current/link")
    link.unlink()
    link.symlink_to(secret)
    after = repository_fingerprint(storage, REPO)
    assert after is not None and after != before
    secret.write_text("sha256:" + "1" * 64)
    assert repository_fingerprint(storage, REPO) == after, "the symbolic link was followed"
