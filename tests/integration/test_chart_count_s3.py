"""ChartMuseum's charts on S3 (registry.charts.count_s3) on the session's SeaweedFS: Harbor's
prepare gives ChartMuseum the registry's bucket with the rootdirectory as its prefix, so the
project folders sit beside the registry's docker/ folder."""
from __future__ import annotations

from harbor_upgrade.registry.charts import count_s3


def test_charts_beside_the_registry_are_counted_per_project(weed, s3_upload, tmp_path):
    tree = tmp_path / "tree"
    for rel in ("docker/registry/v2/repositories/library/x/_layers/sha256/ab/link",
                "library/nginx-1.0.0.tgz", "library/nginx-1.1.0.tgz", "library/index-cache.yaml",
                "team/app-0.1.0.tgz", "docs/readme.txt"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"x")
    bucket, root = s3_upload(tree, rootdirectory="/harbor")
    c = count_s3(bucket, root, endpoint_url=weed.endpoint, region="us-east-1",
                 access_key=weed.access_key, secret_key=weed.secret_key)
    assert c.counted and c.projects == {"library": 2, "team": 1} and c.where == f"s3://{bucket}/harbor"

    empty, root = s3_upload(tree / "docker", rootdirectory="")
    c = count_s3(empty, root, endpoint_url=weed.endpoint, access_key=weed.access_key, secret_key=weed.secret_key)
    assert c.counted and c.total == 0


def test_a_bucket_that_cannot_be_read_is_not_counted(weed):
    c = count_s3("no-such-bucket-here", "/harbor", endpoint_url=weed.endpoint,
                 access_key=weed.access_key, secret_key=weed.secret_key)
    assert not c.counted and "not counted" in c.summary()
