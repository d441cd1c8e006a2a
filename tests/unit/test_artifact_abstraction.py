"""Manifest bytes -> artifact row, on the fixture storage (against the oracle) and on small
trees written here, corrupted in every way the spec names."""
from __future__ import annotations

import json

import pytest

from harbor_upgrade.artifacts.abstraction import Failure, RepositoryAbstractor, default_type
from harbor_upgrade.registry import manifest as m
from harbor_upgrade.registry.layout import Layout, parse_link
from harbor_upgrade.registry.storage import FilesystemStorage
from tests.support.artifacts import Tree

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def abstract_all(root) -> dict:
    layout = Layout(FilesystemStorage(root))
    out = {}
    for entry in layout.repositories():
        if entry.kind != "repository":
            continue
        abstractor = RepositoryAbstractor(layout, layout.list_repository(entry.name))
        for digest in sorted(abstractor.listing.revisions):
            try:
                out[(entry.name, digest)] = abstractor.artifact(digest)
            except Failure as f:
                out[(entry.name, digest)] = f
    return out


def test_fixture_storage_gives_the_expected_rows(shared):
    expected = json.loads((shared / "fixtures/registry/expected-artifacts.json").read_text())
    got = abstract_all(shared / "fixtures/registry/storage")
    assert len(got) == len(expected["artifacts"]) == 33
    for exp in expected["artifacts"]:
        art = got[(exp["repository_name"], exp["digest"])]
        row = {k: getattr(art, k) for k in ("type", "media_type", "manifest_media_type", "size", "icon",
                                            "extra_attrs", "annotations")}
        assert row == {k: exp[k] for k in row}, exp["repository_name"] + "@" + exp["digest"]
        refs = [vars(r) for r in art.references]
        assert refs == exp["references"]


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path)


def reasons(results: dict) -> dict:
    return {k[1]: v.reason for k, v in results.items() if isinstance(v, Failure)}


def test_image_row(tree):
    digest, data = tree.image("p/img", {"architecture": "arm64", "os": "linux", "author": "",
                                        "created": "2021-01-01T00:00:00.10Z",
                                        "config": {"Labels": {"maintainer": "<me>"}, "Hostname": "x"}},
                              annotations={"k": "v"})
    art = abstract_all(tree.root)[("p/img", digest)]
    assert (art.type, art.media_type, art.manifest_media_type) == ("IMAGE", CONFIG, m.OCI_MANIFEST)
    doc = json.loads(data)
    assert art.size == len(data) + doc["config"]["size"] + len(b"layer")
    assert art.extra_attrs == ('{"architecture":"arm64","author":"\\u003cme\\u003e","config":{"Labels":'
                               '{"maintainer":"\\u003cme\\u003e"}},"created":"2021-01-01T00:00:00.1Z","os":"linux"}')
    assert art.annotations == {"k": "v"}


def test_index_children_sizes_and_references(tree):
    a, _ = tree.image("p/multi", {"architecture": "amd64"})
    b, _ = tree.image("p/multi", {"architecture": "arm64"})
    idx = tree.index("p/multi", [a, b], tags=("v1",))
    nested = tree.index("p/multi", [idx, a])
    got = abstract_all(tree.root)
    parent = got[("p/multi", idx)]
    assert parent.size == tree.path(idx).stat().st_size + got[("p/multi", a)].size + got[("p/multi", b)].size
    assert [r.child_digest for r in parent.references] == [a, b]
    assert parent.references[0].platform == '{"architecture":"amd64","os":"linux"}'
    assert (parent.type, parent.extra_attrs, parent.media_type) == ("IMAGE", "", m.OCI_INDEX)
    # a nested index counts its index child's size, which already holds the grandchildren
    assert got[("p/multi", nested)].size == tree.path(nested).stat().st_size + parent.size + got[("p/multi", a)].size


def test_types_by_media_type(tree):
    chart, _ = tree.image("c/chart", {"name": "chart", "version": 1.0},
                          config_type="application/vnd.cncf.helm.config.v1+json")
    rocket, _ = tree.image("c/rocket", {"a": 1, "b": 2, "c": 3},
                           config_type="application/vnd.acme.rocket.config.v1+json",
                           layers=(b"x", PNG), layer_annotations=[None, {"io.goharbor.artifact.v1alpha1.icon": ""}],
                           config_annotations=None)
    got = abstract_all(tree.root)
    chart_art = got[("c/chart", chart)]
    assert (chart_art.type, chart_art.extra_attrs) == ("CHART", '{"name":"chart","version":1}')
    art = got[("c/rocket", rocket)]
    assert art.type == "ROCKET" and art.extra_attrs == '{"a":1,"b":2,"c":3}'
    assert art.icon == tree.w.put_blob(PNG)
    assert default_type("application/vnd.a.b.config.c.config.v1+json") == "B.CONFIG.C"
    assert default_type("application/vnd.wasm.config.v1+json") == "UNKNOWN"


def test_skip_list_and_icon_that_is_not_an_image(tree):
    cfg = json.dumps({"keep": 1, "drop": 2, "x": 3}).encode()
    digest, _ = tree.image("c/skip", cfg, config_type="application/vnd.acme.rocket.config.v1+json",
                           layers=(b"GIF8 not really",),
                           layer_annotations=[{"io.goharbor.artifact.v1alpha1.icon": "1"}])
    data = json.loads(tree.path(digest).read_bytes())
    data["config"]["annotations"] = {"io.goharbor.artifact.v1alpha1.skip-list": "drop, x"}
    digest2 = tree.w.put_manifest("c/skip", json.dumps(data).encode())
    got = abstract_all(tree.root)
    assert got[("c/skip", digest)].icon == ""
    assert got[("c/skip", digest2)].extra_attrs == '{"keep":1,"x":3}'   # no trimming: " x" is not "x"


def test_missing_manifest_blob(tree):
    digest, _ = tree.image("b/r")
    tree.path(digest).unlink()
    assert reasons(abstract_all(tree.root)) == {digest: "manifest-blob-missing"}


def test_truncated_manifest(tree):
    digest, data = tree.image("b/r")
    tree.path(digest).write_bytes(data[: len(data) // 2])
    assert reasons(abstract_all(tree.root)) == {digest: "manifest-invalid"}


def test_unknown_media_type(tree):
    digest, _ = tree.image("b/r", media_type="application/vnd.example.unknown+json")
    assert reasons(abstract_all(tree.root)) == {digest: "manifest-invalid"}


def test_revision_link_to_nowhere(tree):
    digest, _ = tree.image("b/r")
    tree.revision_link("b/r", digest).write_bytes(digest.encode() + b"\n")
    assert parse_link(digest.encode() + b"\n") is None
    assert reasons(abstract_all(tree.root)) == {digest: "revision-link-invalid"}


def test_config_missing_or_invalid(tree):
    missing, data = tree.image("b/missing")
    cfg_digest = json.loads(data)["config"]["digest"]
    tree.path(cfg_digest).unlink()
    bad, _ = tree.image("b/bad", b'{"created": "not a time"}')
    got = reasons(abstract_all(tree.root))
    assert got == {missing: "config-blob-missing", bad: "config-invalid"}


def test_config_not_linked_in_repository(tree):
    digest, data = tree.image("b/one")
    cfg = json.loads(data)["config"]["digest"]
    alg, hex_ = cfg.split(":")
    (tree.root / f"docker/registry/v2/repositories/b/one/_layers/{alg}/{hex_}/link").unlink()
    assert reasons(abstract_all(tree.root)) == {digest: "config-blob-missing"}


def test_broken_child_fails_its_index_and_the_rest_is_fine(tree):
    good, _ = tree.image("b/r", {"architecture": "amd64"})
    broken, _ = tree.image("b/r", {"architecture": "arm64"})
    tree.path(broken).write_bytes(b"{")
    idx = tree.index("b/r", [good, broken])
    dup = tree.index("b/r", [good, good])
    foreign = tree.index("b/r", ["sha256:" + "0" * 64])
    got = abstract_all(tree.root)
    assert reasons(got) == {broken: "manifest-invalid", idx: "child-not-artifact",
                            dup: "duplicate-reference", foreign: "child-not-artifact"}
    assert got[("b/r", good)].type == "IMAGE"


def test_missing_layer_blobs_do_not_matter(tree):
    digest, data = tree.image("b/r", layers=(b"one", b"two"))
    for layer in json.loads(data)["layers"]:
        tree.path(layer["digest"]).unlink()
    art = abstract_all(tree.root)[("b/r", digest)]
    assert art.size == len(data) + json.loads(data)["config"]["size"] + 6


def test_names_escaping_the_root_are_refused(tmp_path):
    tree = Tree(tmp_path)
    tree.image("ok/r")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "docker/registry/v2/repositories/ok/Evil..Name").mkdir(parents=True)
    (tmp_path / "docker/registry/v2/repositories/ok/link").symlink_to(outside, target_is_directory=True)
    layout = Layout(FilesystemStorage(tmp_path))
    entries = {e.name: e.kind for e in layout.repositories()}
    assert entries == {"ok/r": "repository", "ok/Evil..Name": "refused"}   # the symlink is never followed
    with pytest.raises(Exception) as e:
        layout.storage.read("repositories/../../outside")
    assert getattr(e.value, "reference", "") == "storage-path-refused"


def test_digests_that_are_not_digests_are_never_paths(tree):
    tree.image("b/r")
    layout = Layout(FilesystemStorage(tree.root))
    abstractor = RepositoryAbstractor(layout, layout.list_repository("b/r"))
    for bad in ("sha256:../../../etc", "SHA256:" + "a" * 64, "nocolon", ""):
        with pytest.raises(Failure) as e:
            abstractor.artifact(bad)
        assert e.value.reason == "manifest-unknown"
