"""The S3 tools of the tests and benchmarks (tests/support/seaweed.py): objects written through weed's
filer are S3 objects like any other (MD5 ETags, which S3Storage's link proofs rely on), and the
delaying proxy passes every byte and holds every request at least its delay."""
from __future__ import annotations

import hashlib
import time

from harbor_upgrade.registry.s3 import S3Storage
from tests.support.seaweed import DelayProxy


def test_objects_written_through_the_filer_are_plain_s3_objects(weed, tmp_path):
    files = {"docker/registry/v2/repositories/lib/app/_manifests/tags/v1/current/link": b"sha256:" + b"a" * 64,
             "docker/registry/v2/blobs/sha256/ab/" + "ab" * 32 + "/data": bytes(range(256)) * 300,
             "docker/registry/v2/repositories/lib/app/_uploads/x y/startedat": b""}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    client = weed.client()
    client.create_bucket(Bucket="through-filer")
    assert weed.put_files("through-filer", "/reg/root", tmp_path, list(files)) == 3
    listed = {o["Key"]: o for o in client.list_objects_v2(Bucket="through-filer")["Contents"]}
    assert sorted(listed) == sorted(f"reg/root/{rel}" for rel in files)
    for rel, data in files.items():
        obj = listed[f"reg/root/{rel}"]
        assert obj["ETag"].strip('"') == hashlib.md5(data).hexdigest() and obj["Size"] == len(data)
        assert client.get_object(Bucket="through-filer", Key=f"reg/root/{rel}")["Body"].read() == data
    client.close()


def test_the_delay_proxy_passes_everything_and_holds_each_request(weed, tmp_path):
    client = weed.client()
    client.create_bucket(Bucket="delayed")
    big = bytes(range(256)) * 4096          # 1 MiB: many pieces through the proxy
    client.put_object(Bucket="delayed", Key="reg/docker/registry/v2/big", Body=big)
    client.close()
    with DelayProxy(weed.s3_port, 60) as proxy:
        storage = S3Storage("delayed", "reg", endpoint_url=proxy.endpoint)
        try:
            assert storage.read("big") == big                   # opens the connection
            t0 = time.monotonic()
            for _ in range(3):
                assert storage.read("big") == big
            assert time.monotonic() - t0 >= 3 * 0.060, "each request on a kept-alive connection waits the delay"
        finally:
            storage.close()
    assert proxy.proc.returncode is not None, "the proxy is stopped"
