"""Which link objects an S3 listing entry proves (so they need no GET)."""
from __future__ import annotations

import hashlib

from harbor_upgrade.registry.s3 import key_prefix, proven_link

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
REV_A = f"repositories/p/r/_manifests/revisions/sha256/{'a' * 64}/link"


def etag(text: str) -> str:
    return '"' + hashlib.md5(text.encode()).hexdigest() + '"'


def test_revision_link_holding_its_own_digest_is_proven():
    assert proven_link(REV_A, 71, etag(A), {}) == A


def test_revision_link_with_other_content_is_not():
    assert proven_link(REV_A, 72, etag(A + "\n"), {}) is None
    assert proven_link(REV_A, 71, etag(B), {}) is None
    assert proven_link(REV_A, 70, etag(A), {}) is None, "the size must match too"


def test_non_md5_etags_prove_nothing():
    multipart = '"' + hashlib.md5(A.encode()).hexdigest() + '-2"'
    assert proven_link(REV_A, 71, multipart, {}) is None
    assert proven_link(REV_A, 71, "", {}) is None


def test_tag_link_is_proven_by_a_revision_listed_before_it():
    listed: dict[str, str] = {}
    tag = "repositories/p/r/_manifests/tags/v1/current/link"
    assert proven_link(tag, 71, etag(A), listed) is None, "nothing listed yet"
    assert proven_link(REV_A, 71, etag(A), listed) == A
    assert proven_link(tag, 71, etag(A), listed) == A
    assert proven_link(tag, 71, etag(B), listed) is None, "a tag pointing elsewhere is fetched"


def test_a_revision_with_a_corrupted_link_still_proves_tags_pointing_to_its_digest():
    listed: dict[str, str] = {}
    assert proven_link(REV_A, 5, etag("junk\n"), listed) is None
    assert proven_link("repositories/p/r/_manifests/tags/v1/current/link", 71, etag(A), listed) == A


def test_other_links_are_never_proven():
    listed = {hashlib.md5(A.encode()).hexdigest(): A}
    for rel in (f"repositories/p/r/_manifests/tags/v1/index/sha256/{'a' * 64}/link",
                f"repositories/p/r/_layers/sha256/{'a' * 64}/link",
                f"repositories/p/r/_manifests/revisions/sha256/{'A' * 64}/link"):
        assert proven_link(rel, 71, etag(A), listed) is None, rel


def test_key_prefix_of_a_rootdirectory():
    assert key_prefix("/harbor/registry") == "harbor/registry/docker/registry/v2/"
    assert key_prefix("") == "docker/registry/v2/"
