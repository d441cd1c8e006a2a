"""Reads of stored objects are bounded whatever the object claims: an S3 body is never read
past limit + 1 bytes (nor at all when its length says it is larger), and a stalled body
ends at its deadline; a filesystem object larger than the limit is refused before reading."""
from __future__ import annotations

import time

import pytest

from harbor_upgrade.registry.s3 import ReadDeadline, _BodyTooLarge, read_bounded
from harbor_upgrade.registry.storage import FilesystemStorage, ObjectTooLarge


class Endless:
    """read1 of an endless body: counts what was asked for and handed out."""

    def __init__(self, piece: int = 65536, pause: float = 0.0):
        self.piece, self.pause, self.given = piece, pause, 0

    def __call__(self, n: int) -> bytes:
        time.sleep(self.pause)
        n = min(n, self.piece)
        self.given += n
        return b"\0" * n


def test_an_endless_body_is_read_to_the_limit_plus_one_byte_at_most():
    body = Endless()
    with pytest.raises(_BodyTooLarge):
        read_bounded(body, 1000, None, 10, "k")
    assert body.given == 1001
    body = Endless(piece=3 << 20)
    with pytest.raises(_BodyTooLarge):
        read_bounded(body, 4 << 20, None, 10, "k")
    assert body.given == (4 << 20) + 1


def test_a_declared_length_over_the_limit_reads_nothing():
    body = Endless()
    with pytest.raises(_BodyTooLarge):
        read_bounded(body, 1000, "2147483648", 10, "k")
    assert body.given == 0


def test_a_body_within_the_limit_is_read_whole():
    chunks = [b"ab", b"cd", b""]
    assert read_bounded(lambda n: chunks.pop(0), 4, "4", 10, "k") == b"abcd"


def test_a_dripping_body_ends_at_its_deadline():
    began = time.monotonic()
    with pytest.raises(ReadDeadline, match="too slowly"):
        read_bounded(Endless(piece=1, pause=0.05), 1 << 20, None, 0.3, "k")
    assert time.monotonic() - began < 2


def test_a_sparse_2_gb_file_is_refused_before_it_is_read(tmp_path):
    v2 = tmp_path / "docker/registry/v2/blobs"
    v2.mkdir(parents=True)
    with open(v2 / "big", "wb") as f:
        f.truncate(2 << 30)
    storage = FilesystemStorage(tmp_path)
    with pytest.raises(ObjectTooLarge, match="larger than 4 MiB"):
        storage.read("blobs/big")
    assert storage.read_head("blobs/big", 16) == b"\0" * 16
    assert storage.size("blobs/big") == 2 << 30
