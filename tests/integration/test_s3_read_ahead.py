"""One repository of many artifacts on S3 (SeaweedFS on 127.0.0.1) is read in parallel: several
GETs are in flight at once although one reader abstracts the repository, and the rows are
those of the filesystem."""
from __future__ import annotations

import threading

import psycopg

from harbor_upgrade.artifacts import backfill
from harbor_upgrade.artifacts.store import artifact_rows
from harbor_upgrade.registry.layout import LayoutWriter
from harbor_upgrade.registry.s3 import S3Storage
from harbor_upgrade.registry.storage import FilesystemStorage
from tests.support.artifacts import image, register


def count_concurrent_gets(storage: S3Storage) -> dict:
    seen = {"now": 0, "max": 0, "calls": 0}
    lock = threading.Lock()
    get = storage._getter.get

    def counting(key, *args):
        with lock:
            seen["now"] += 1
            seen["calls"] += 1
            seen["max"] = max(seen["max"], seen["now"])
        try:
            return get(key, *args)
        finally:
            with lock:
                seen["now"] -= 1

    storage._getter.get = counting
    return seen


def test_one_big_repository_is_read_in_parallel(harbor24, twin, tmp_path, s3_server, s3_upload):  # noqa: F811
    w = LayoutWriter(tmp_path)
    digests = [image(w, "lib/big", f"arch{i:02d}", tags=(f"t{i}",)) for i in range(40)]
    register(harbor24.dsn, [("lib/big", d, (f"t{i}",)) for i, d in enumerate(digests)])
    s3_dsn = twin()
    bucket, root = s3_upload(tmp_path)
    s3 = S3Storage(bucket, root, endpoint_url=s3_server)
    seen = count_concurrent_gets(s3)
    report = backfill(s3_dsn, s3, jobs=4)
    s3.close()
    assert report.ok and report.artifacts_done == 40
    assert seen["calls"] == 80 + 40     # a manifest and a config per artifact, a current link per tag, nothing more
    assert seen["max"] >= 3, seen                   # one repository, one reader: the rest is read-ahead
    backfill(harbor24.dsn, FilesystemStorage(tmp_path), jobs=4)
    with psycopg.connect(s3_dsn) as a, psycopg.connect(harbor24.dsn) as b:
        assert artifact_rows(a) == artifact_rows(b)
