"""S3Storage against a real S3 server (SeaweedFS on 127.0.0.1): keys, reads, listing, failures."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harbor_upgrade.errors import InvalidInput
from harbor_upgrade.registry.s3 import S3Storage, key_prefix
from harbor_upgrade.registry.storage import FilesystemStorage, ObjectMissing, StorageError
from harbor_upgrade.secrets import mask_text
from tests.support.s3 import free_port, upload_tree


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A small storage tree in the distribution layout: one repository, one tag, a manifest,
    its config, a nested repository, and an abandoned upload."""
    root = tmp_path_factory.mktemp("storage")
    v2 = root / "docker/registry/v2"
    config = b'{"architecture":"amd64","os":"linux"}'
    manifest = (b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
                b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,'
                b'"digest":"%s"},"layers":[]}' % (len(config), digest(config).encode()))
    files = {}
    for blob in (config, manifest):
        h = digest(blob)[7:]
        files[f"blobs/sha256/{h[:2]}/{h}/data"] = blob
    m, c = digest(manifest), digest(config)
    for repo in ("library/alpine", "team-b/a/b/c"):
        files[f"repositories/{repo}/_manifests/revisions/sha256/{m[7:]}/link"] = m.encode()
        files[f"repositories/{repo}/_manifests/tags/latest/current/link"] = m.encode()
        files[f"repositories/{repo}/_manifests/tags/latest/index/sha256/{m[7:]}/link"] = m.encode()
        files[f"repositories/{repo}/_layers/sha256/{c[7:]}/link"] = c.encode()
    files["repositories/library/alpine/_uploads/0b1c/startedat"] = b"2021-01-01T00:00:00Z"
    for rel, data in files.items():
        (v2 / rel).parent.mkdir(parents=True, exist_ok=True)
        (v2 / rel).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def client(weed):
    c = weed.client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def bucket(client, tree) -> str:
    """The tree under rootdirectory /harbor/registry, plus an object outside the root."""
    name = "harbor-registry"
    client.create_bucket(Bucket=name)
    upload_tree(client, name, "/harbor/registry", tree)
    client.put_object(Bucket=name, Key="harbor/outside-secret", Body=b"not registry data")
    return name


@pytest.fixture
def storage(s3_server, bucket):
    s = S3Storage(bucket, "/harbor/registry", endpoint_url=s3_server)
    yield s
    s.close()


def test_key_prefix_drops_the_leading_slash_like_the_driver():
    assert key_prefix("/harbor/registry") == "harbor/registry/docker/registry/v2/"
    assert key_prefix("harbor/registry/") == "harbor/registry/docker/registry/v2/"
    assert key_prefix("") == "docker/registry/v2/"
    assert key_prefix("/") == "docker/registry/v2/"


def test_reads_the_same_bytes_as_the_filesystem(storage, tree):
    fs = FilesystemStorage(tree)
    paths = sorted(fs.walk(""))
    assert paths, "the tree is not empty"
    for p in paths:
        assert storage.read(p) == fs.read(p)
        assert storage.size(p) == fs.size(p)
        assert storage.exists(p)


def test_walk_lists_every_file_below_a_folder_and_nothing_else(storage, tree):
    fs = FilesystemStorage(tree)
    assert sorted(storage.walk("")) == sorted(fs.walk(""))
    repos = sorted(storage.walk("repositories/team-b"))
    assert repos == sorted(fs.walk("repositories/team-b"))
    assert all(p.startswith("repositories/team-b/a/b/c/") for p in repos)
    # a prefix that is a name prefix but not a folder must not match ("team" is not "team-b")
    assert list(storage.walk("repositories/team")) == []
    assert sorted(storage.walk("repositories/team-b/")) == repos


def test_listdir_gives_one_level_folders_and_files(storage):
    assert storage.listdir("") == (["blobs", "repositories"], [])
    assert storage.listdir("repositories") == (["library", "team-b"], [])
    assert storage.listdir("repositories/") == (["library", "team-b"], [])
    assert storage.listdir("repositories/library/alpine") == (["_layers", "_manifests", "_uploads"], [])
    assert storage.listdir("repositories/library/alpine/_manifests/tags/latest/current") == ([], ["link"])
    assert storage.listdir("repositories/nope") == ([], [])
    with pytest.raises(InvalidInput):
        storage.listdir("repositories/../..")


def test_read_head_reads_only_the_start(storage, tree, client, bucket):
    fs = FilesystemStorage(tree)
    path = next(p for p in fs.walk("blobs") if fs.size(p) > 40)
    assert storage.read_head(path, 10) == fs.read(path)[:10]
    assert storage.read_head(path, 10**6) == fs.read(path)
    with pytest.raises(ObjectMissing):
        storage.read_head("blobs/sha256/00/" + "0" * 64 + "/data", 8)
    client.put_object(Bucket=bucket, Key="harbor/registry/docker/registry/v2/empty/data", Body=b"")
    assert storage.read_head("empty/data", 8) == b""
    assert storage.read("empty/data") == b""
    client.delete_object(Bucket=bucket, Key="harbor/registry/docker/registry/v2/empty/data")


def test_no_directory_objects_folders_are_not_files(storage):
    assert not storage.exists("repositories/library/alpine")
    assert not storage.exists("repositories/library/alpine/_manifests")
    with pytest.raises(ObjectMissing):
        storage.read("repositories/library/alpine/_manifests")


def test_missing_object(storage):
    with pytest.raises(ObjectMissing) as e:
        storage.read("blobs/sha256/00/" + "0" * 64 + "/data")
    assert "blobs/sha256/00/" in str(e.value)
    assert not storage.exists("blobs/sha256/00/" + "0" * 64 + "/data")
    with pytest.raises(ObjectMissing):
        storage.size("repositories/nope/_manifests/tags/x/current/link")


@pytest.mark.parametrize("path", ["../outside-secret", "repositories/../../outside-secret", "/etc/passwd",
                                  "repositories//x", "a/./b", "a\\b", ""])
def test_paths_that_leave_the_root_are_refused(storage, path):
    with pytest.raises(InvalidInput) as e:
        storage.read(path)
    assert e.value.reference == "storage-path-refused"
    with pytest.raises(InvalidInput):
        storage.exists(path) if path else storage.read(path)


def test_walk_refuses_escaping_prefixes(storage):
    with pytest.raises(InvalidInput):
        list(storage.walk("../"))
    with pytest.raises(InvalidInput):
        list(storage.walk("repositories/../.."))


def test_rootdirectory_selects_the_key_prefix(s3_server, client, tree):
    client.create_bucket(Bucket="root-at-top")
    upload_tree(client, "root-at-top", "", tree)
    s = S3Storage("root-at-top", "", endpoint_url=s3_server)
    try:
        assert sorted(s.walk("")) == sorted(FilesystemStorage(tree).walk(""))
    finally:
        s.close()
    wrong = S3Storage("root-at-top", "/harbor/registry", endpoint_url=s3_server)
    try:
        assert list(wrong.walk("")) == []
    finally:
        wrong.close()


def test_walk_paginates_beyond_1000_keys(s3_server, client):
    client.create_bucket(Bucket="many-keys")
    keys = [f"reg/docker/registry/v2/repositories/p/r/_manifests/tags/t{i:05d}/current/link" for i in range(1234)]
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: client.put_object(Bucket="many-keys", Key=k, Body=b"x"), keys))
    s = S3Storage("many-keys", "reg", endpoint_url=s3_server)
    calls = []
    list_page = s._list_page
    s._list_page = lambda *args: calls.append(args) or list_page(*args)  # type: ignore[method-assign]
    try:
        got = list(s.walk("repositories/p"))
    finally:
        s.close()
    assert len(got) == 1234 and len(set(got)) == 1234
    assert sorted(got) == sorted(k.removeprefix("reg/docker/registry/v2/") for k in keys)
    assert len(calls) == 2, "1000 keys a page: two ListObjectsV2 requests"


def test_parallel_reads_share_one_client(storage, tree):
    fs = FilesystemStorage(tree)
    paths = sorted(fs.walk("")) * 20
    with ThreadPoolExecutor(16) as ex:
        got = list(ex.map(storage.read, paths))
    assert got == [fs.read(p) for p in paths]


def test_missing_bucket_is_a_clear_error(s3_server):
    with pytest.raises(StorageError) as e:
        S3Storage("no-such-bucket", "/x", endpoint_url=s3_server)
    assert "no-such-bucket" in e.value.message and "does not exist" in e.value.message
    assert e.value.reference == "storage-unreadable"


def test_unreachable_endpoint_never_shows_the_secret():
    secret = "Sup3r-s3cret-key-for-test"
    port = free_port()  # nothing listens there
    with pytest.raises(StorageError) as e:
        S3Storage("b", "", endpoint_url=f"http://127.0.0.1:{port}", access_key="AKIATEST",
                  secret_key=secret, retries=1)
    text = f"{e.value.message} {e.value.hint}"
    assert "cannot reach S3" in text and f"127.0.0.1:{port}" in text
    assert secret not in text
    assert secret not in mask_text(f"leaked {secret}"), "the secret key is registered for masking"


def test_closed_storage_refuses_reads(s3_server, bucket):
    s = S3Storage(bucket, "/harbor/registry", endpoint_url=s3_server)
    s.close()
    with pytest.raises(StorageError):
        s.read("repositories/library/alpine/_manifests/tags/latest/current/link")


def test_a_wrong_secret_key_is_a_clear_error_without_the_secret(s3_server, bucket):
    """SeaweedFS checks every signature: a wrong secret key is refused, and said so."""
    secret = "wrongSecretKey/with+chars0123456789"
    with pytest.raises(StorageError) as e:
        S3Storage(bucket, "/harbor/registry", endpoint_url=s3_server,
                  access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=secret, retries=1)
    text = f"{e.value.message} {e.value.hint}"
    assert "denied" in text and bucket in text
    assert secret not in text


def test_an_unknown_access_key_is_a_clear_error(s3_server, bucket):
    with pytest.raises(StorageError) as e:
        S3Storage(bucket, "/harbor/registry", endpoint_url=s3_server, access_key="AKIAUNKNOWNUNKNOWN01",
                  secret_key="whatever-secret-0123456789", retries=1)
    assert "denied" in e.value.message and bucket in e.value.message


def count_gets(storage) -> list:
    """Record the key of every object GET the storage sends (each is tried on its signed
    keep-alive path first, boto3 only asks again after an unexpected answer)."""
    calls = []
    get = storage._getter.get

    def counting(key, *args):
        calls.append(key)
        return get(key, *args)

    storage._getter.get = counting
    return calls


def test_links_proven_by_the_listing_cost_no_get(storage, tree):
    fs = FilesystemStorage(tree)
    base = "repositories/library/alpine/_manifests"
    links = [p for p in storage.walk(base) if p.endswith("/link") and "/index/" not in p]
    assert any("/revisions/" in p for p in links) and any("/current/" in p for p in links)
    gets = count_gets(storage)
    assert [storage.read(p) for p in links] == [fs.read(p) for p in links]
    assert gets == [], "revision and current-tag links were proven by their listed MD5"
    assert [storage.read(p) for p in links] == [fs.read(p) for p in links]
    assert len(gets) == len(links), "a proven link is used once, then read again from S3"


def test_links_whose_content_differs_are_fetched(s3_server, client):
    """A link with a trailing newline, and a tag pointing to a digest with no revision: both
    must come from S3 as they are, never be guessed from their key."""
    good = "sha256:" + "a" * 64
    other = "sha256:" + "b" * 64
    base = "reg/docker/registry/v2/repositories/p/r/_manifests"
    objects = {f"{base}/revisions/sha256/{'a' * 64}/link": (good + "\n").encode(),
               f"{base}/revisions/sha256/{'c' * 64}/link": ("sha256:" + "c" * 64).encode(),
               f"{base}/tags/t1/current/link": other.encode(),
               f"{base}/tags/t2/current/link": ("sha256:" + "c" * 64).encode()}
    client.create_bucket(Bucket="odd-links")
    for key, body in objects.items():
        client.put_object(Bucket="odd-links", Key=key, Body=body)
    s = S3Storage("odd-links", "reg", endpoint_url=s3_server)
    try:
        paths = list(s.walk("repositories/p/r/_manifests"))
        gets = count_gets(s)
        got = {p: s.read(p) for p in paths}
    finally:
        s.close()
    assert got == {k.removeprefix("reg/docker/registry/v2/"): v for k, v in objects.items()}
    assert sorted(gets) == [f"{base}/revisions/sha256/{'a' * 64}/link", f"{base}/tags/t1/current/link"], \
        "only the two links whose listing does not prove them are fetched"


def test_reading_a_link_without_a_listing_fetches_it(storage, tree):
    path = next(p for p in FilesystemStorage(tree).walk("repositories/team-b") if "/revisions/" in p)
    gets = count_gets(storage)
    assert storage.read(path) == FilesystemStorage(tree).read(path)
    assert len(gets) == 1
