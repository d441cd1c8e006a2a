"""Listings grouped by a delimiter on S3 (SeaweedFS on 127.0.0.1): the same repositories, revisions,
tags and layer links as the filesystem gives, in the same order, with one "/" listing per
repository folder and three per repository (the tag history never listed); and the same
backfill from both."""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from harbor_upgrade.artifacts import backfill
from harbor_upgrade.artifacts.store import artifact_rows
from harbor_upgrade.registry.layout import Layout, LayoutWriter
from harbor_upgrade.registry.s3 import S3Storage
from harbor_upgrade.registry.storage import FilesystemStorage
from tests.support.artifacts import image, index, register

GROUPINGS = [("repositories", "/_"), ("repositories/a/app/_manifests", "/index/sha256/"),
             ("repositories/a/app/_layers", "/link"), ("repositories/a", "/link")]


def build(root: Path) -> dict[str, str]:
    """Names that sort differently by path and by key ("a/0x" < "a/_…" < "a/app", "a-c" < "a/"),
    nesting, a tag called "index" with history, an empty repository, a folder with only an
    abandoned upload, refused names, a reserved folder at the top and a stray file."""
    w = LayoutWriter(root)
    d = {"amd": image(w, "a/app", "amd64", tags=("index", "v1")), "arm": image(w, "a/app", "arm64")}
    d["idx"] = index(w, "a/app", [(d["amd"], "amd64"), (d["arm"], "arm64")], tags=("multi",))
    w.tag("a/app", "v1", d["arm"])                                     # v1 moved: two history links
    d["sub"] = image(w, "a/app/sub", "amd64", tags=("s",))
    d["0x"] = image(w, "a/0x", "amd64", tags=("t",))
    d["ac"] = image(w, "a-c/x", "s390x", tags=("t",))
    d["bad"] = image(w, "a/Bad/deep", "amd64", tags=("t",))
    image(w, "Bad-top/r", "amd64", tags=("t",))
    image(w, "_reserved/r", "amd64", tags=("t",))
    w.link_layer("empty/only-layers", w.put_blob(b"a layer nobody's manifest uses"))
    v2 = root / "docker/registry/v2"
    (v2 / "repositories/up/only-uploads/_uploads/0b1c").mkdir(parents=True)
    (v2 / "repositories/up/only-uploads/_uploads/0b1c/startedat").write_text("2021-01-01T00:00:00Z")
    (v2 / "repositories/a/README").write_text("not a repository")
    return d


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("grouped")
    return root, build(root)


@pytest.fixture(scope="module")
def bucket(weed, tree) -> str:
    from tests.support.s3 import upload_tree
    client = weed.client()
    client.create_bucket(Bucket="grouped-listing")
    upload_tree(client, "grouped-listing", "/harbor/registry", tree[0])
    client.close()
    return "grouped-listing"


@pytest.fixture
def s3(s3_server, bucket):
    s = S3Storage(bucket, "/harbor/registry", endpoint_url=s3_server)
    yield s
    s.close()


def count_listings(storage: S3Storage) -> list[dict]:
    """Record the prefix and delimiter of every ListObjectsV2 page the storage asks for."""
    calls: list[dict] = []
    list_page = storage._list_page

    def counting(prefix, delimiter, token):
        calls.append({"prefix": prefix, "delimiter": delimiter})
        return list_page(prefix, delimiter, token)

    storage._list_page = counting  # type: ignore[method-assign]
    return calls


def ignore_delimiters(storage: S3Storage) -> None:
    """What a service that groups only by "/" answers for any other delimiter: every key, as
    if no Delimiter was asked."""
    list_page = storage._list_page
    storage._list_page = lambda prefix, delimiter, token: list_page(  # type: ignore[method-assign]
        prefix, delimiter if delimiter == "/" else None, token)


@pytest.mark.parametrize("folder,delimiter", GROUPINGS)
def test_grouped_listing_equals_the_filesystem_one(s3, tree, folder, delimiter):
    fs = FilesystemStorage(tree[0])
    got, want = sorted(s3.walk_grouped(folder, delimiter)), sorted(fs.walk_grouped(folder, delimiter))
    assert got == want and any(grouped for _, grouped in want)


def test_repositories_as_the_filesystem_gives_them_one_folder_a_request(s3, tree):
    fs_entries = list(Layout(FilesystemStorage(tree[0])).repositories())
    calls = count_listings(s3)
    s3_entries = list(Layout(s3).repositories())
    assert [e.name for e in fs_entries] == ["Bad-top", "a/0x", "a/Bad", "a/app", "a/app/sub", "a-c/x",
                                            "empty/only-layers"]
    # the same names, kinds and order (a folder with only an upload is no repository on either)
    assert [(e.name, e.kind) for e in s3_entries] == [(e.name, e.kind) for e in fs_entries]
    # one "/" listing per folder that is not refused (never a walk of the whole bucket)
    listed = sorted(c["prefix"].split("/v2/repositories", 1)[1] for c in calls)
    assert all(c["delimiter"] == "/" for c in calls)
    assert listed == sorted(["/", "/a/", "/a/0x/", "/a/app/", "/a/app/sub/", "/a-c/", "/a-c/x/", "/empty/",
                             "/empty/only-layers/", "/up/", "/up/only-uploads/"])


def test_repositories_stream_before_every_folder_is_listed(s3, tree, monkeypatch):
    """The first repository comes while most folders are still unlisted (the walk is not
    finished first), and stopping the walk early leaves no listing thread behind."""
    import threading

    from harbor_upgrade.registry import layout as layout_module
    monkeypatch.setattr(layout_module, "ENUMERATION_AHEAD", 1)
    calls = count_listings(s3)
    entries = Layout(s3).repositories()
    assert next(entries).name == "Bad-top"
    assert len(calls) < 5
    entries.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("list-repositories")]


def count_gets(storage: S3Storage) -> list[str]:
    """Record the key of every GET the storage sends on its signed path."""
    keys: list[str] = []
    get = storage._getter.get

    def counting(key, *args, **kwargs):
        keys.append(key)
        return get(key, *args, **kwargs)

    storage._getter.get = counting  # type: ignore[method-assign]
    return keys


@pytest.mark.parametrize("pool", [False, True], ids=["serial", "pool"])
def test_repository_listing_equals_the_filesystem_one_without_the_tag_history(s3, tree, pool):
    """Three listings a repository (revisions, tag folders by "/", layer links by "/link"),
    never one below a tag (its history), and one GET per tag's current link."""
    from concurrent.futures import ThreadPoolExecutor
    fs = Layout(FilesystemStorage(tree[0]))
    layout = Layout(s3)
    executor = ThreadPoolExecutor(4) if pool else None
    for name in ("a/app", "a/app/sub", "a/0x", "a-c/x", "empty/only-layers", "up/only-uploads"):
        want = fs.list_repository(name)
        calls, gets = count_listings(s3), count_gets(s3)
        got = layout.list_repository(name, executor)
        del s3._list_page, s3._getter.get   # the counting stops (the next repository counts afresh)
        listed = sorted((c["prefix"].split(f"/repositories/{name}/", 1)[1], c["delimiter"]) for c in calls)
        empty = name in ("empty/only-layers", "up/only-uploads")
        assert listed == sorted([("_layers/", "/link"), ("_manifests/revisions/", None), ("_manifests/tags/", "/")]
                                + ([("_manifests/", None)] if empty else [])), name
        assert sorted(k.split("/_manifests/tags/", 1)[1] for k in gets) == \
            sorted(f"{t}/current/link" for t in want.tags), name
        assert (got.revisions, got.tags, got.bad_revision_dirs, got.bad_tag_names) == \
            (want.revisions, want.tags, want.bad_revision_dirs, want.bad_tag_names), name
        linked = {p.split("/")[-3] + ":" + p.split("/")[-2] for p in FilesystemStorage(tree[0]).walk(
            f"repositories/{name}/_layers")}
        assert got.layers == linked, name
        assert got.has_manifests == (not empty), name
    assert fs.list_repository("a/app").tags["index"] == tree[1]["amd"]   # a tag named "index"
    if executor:
        executor.shutdown()


def test_tag_folders_left_empty_by_deleted_keys_are_no_tags(weed, s3_server):
    """SeaweedFS keeps a folder after the keys below it are deleted, and lists it by "/": such
    a tag folder (and a refused name's) is no tag, as on S3, where it does not exist; a tag
    with only its history is one without a current link, as before."""
    client = weed.client()
    client.create_bucket(Bucket="empty-tag-folders")
    base = "harbor/registry/docker/registry/v2/repositories/p/r/_manifests"
    digest = "sha256:" + "a" * 64
    keys = {f"{base}/revisions/sha256/{'a' * 64}/link": digest,
            f"{base}/tags/kept/current/link": digest,
            f"{base}/tags/history-only/index/sha256/{'a' * 64}/link": digest,
            f"{base}/tags/gone/current/link": digest,
            f"{base}/tags/gone/index/sha256/{'a' * 64}/link": digest,
            f"{base}/tags/Bad..name/current/link": digest}
    for key, body in keys.items():
        client.put_object(Bucket="empty-tag-folders", Key=key, Body=body.encode())
    for key in [k for k in keys if "/gone/" in k or "/Bad..name/" in k]:
        client.delete_object(Bucket="empty-tag-folders", Key=key)
    client.close()
    s3 = S3Storage("empty-tag-folders", "/harbor/registry", endpoint_url=s3_server)
    try:
        listed = [p for p, _ in s3.walk_grouped("repositories/p/r/_manifests/tags", "/")]
        got = Layout(s3).list_repository("p/r")
    finally:
        s3.close()
    assert got.tags == {"history-only": None, "kept": digest}
    assert got.bad_tag_names == [] and got.revisions == {digest: digest} and got.has_manifests
    # the case guarded: SeaweedFS still lists the emptied folders
    assert {p.rsplit("/", 2)[1] for p in listed} == {"Bad..name", "gone", "history-only", "kept"}


def test_a_service_that_does_not_group_gets_plain_listings(s3, tree):
    fs = Layout(FilesystemStorage(tree[0]))
    ignore_delimiters(s3)
    layout = Layout(s3)
    assert [e.name for e in layout.repositories()] == [e.name for e in fs.repositories()]
    got, want = layout.list_repository("a/app"), fs.list_repository("a/app")
    assert layout.grouping is False
    assert (got.revisions, got.tags) == (want.revisions, want.tags)


@pytest.mark.parametrize("ignore", [False, True], ids=["grouped", "plain"])
def test_backfill_from_s3_equals_the_filesystem_one(harbor24, twin, tree, s3_server, bucket, ignore):  # noqa: F811
    """Rows, ids, tags, references and report of --import-untagged from both backends."""
    d = tree[1]
    register(harbor24.dsn, [("a/app", d["idx"], ("multi",)), ("a/app", d["arm"], ("v1",)),
                            ("a-c/x", d["ac"], ("t",)), ("a/Bad/deep", d["bad"], ("t",))])
    s3_dsn = twin()
    s3 = S3Storage(bucket, "/harbor/registry", endpoint_url=s3_server)
    if ignore:
        ignore_delimiters(s3)
    results = []
    for dsn, storage in ((harbor24.dsn, FilesystemStorage(tree[0])), (s3_dsn, s3)):
        report = backfill(dsn, storage, jobs=3, import_untagged=True).to_dict()
        storage.close()
        with psycopg.connect(dsn) as conn:
            # push_time of a created row is the time its run began
            results.append((report, [{k: v for k, v in r.items() if k != "push_time"} for r in artifact_rows(conn)]))
    (fs_report, fs_rows), (s3_report, s3_rows) = results
    assert s3_rows == fs_rows and len(fs_rows) == 7   # a/app 3, a/app/sub, a/0x, a-c/x, and nothing refused
    for key in ("problems", "ignored_tags", "empty_repositories", "untagged_found", "untagged_imported",
                "children_created", "references_created", "artifacts_done"):
        assert s3_report[key] == fs_report[key], key
    assert fs_report["empty_repositories"] == ["empty/only-layers"]
    assert {p["repository"] for p in fs_report["problems"]} >= {"a/Bad", "Bad-top"}
    assert any("index" in r["tags"] for r in fs_rows)


def test_a_tag_folder_with_an_empty_name_is_reported(tmp_path):
    """A key `tags//current/link` (S3 allows it; SeaweedFS cannot hold it, hence moto) is a tag
    whose name is no tag name: reported as a bad tag name, as the filesystem reports a bad one,
    never dropped in silence."""
    import boto3

    from tests.support.s3 import moto_server
    digest = "sha256:" + "b" * 64
    base = "harbor/registry/docker/registry/v2/repositories/p/r/_manifests"
    with moto_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="k", aws_secret_access_key="s")
        client.create_bucket(Bucket="empty-tag-name")
        for key in (f"{base}/revisions/sha256/{'b' * 64}/link", f"{base}/tags/ok/current/link",
                    f"{base}/tags//current/link"):
            client.put_object(Bucket="empty-tag-name", Key=key, Body=digest.encode())
        s3 = S3Storage("empty-tag-name", "/harbor/registry", endpoint_url=endpoint,
                       access_key="k", secret_key="s", region="us-east-1")
        try:
            got = Layout(s3).list_repository("p/r")
        finally:
            s3.close()
    assert got.tags == {"ok": digest}
    assert got.bad_tag_names == [""] and got.problems == []
