"""run on an installation whose registry storage is S3 (SeaweedFS on 127.0.0.1):
harbor.yml's storage_service.s3 (bucket, rootdirectory, regionendpoint, keys) is used as
it is, and its secret key appears in no output."""
from __future__ import annotations

import json
import shutil

import pytest

from harbor_upgrade.report import render_text
from harbor_upgrade.upgrade import Options, run
from harbor_upgrade.versions import TARGET
from tests.support.sites import demo_site


@pytest.fixture
def site():
    with demo_site("harbor-upgrade-s3-test-") as inst:
        yield inst


def test_run_reads_the_registry_from_s3_as_harbor_yml_configures_it(site, s3_upload, weed, monkeypatch):
    bucket, root = s3_upload(site.storage)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the server checks keys: harbor.yml's must be used
        monkeypatch.delenv(name)
    secret_key = weed.secret_key
    shutil.rmtree(site.storage)  # only the bucket holds the images now
    text = site.harbor_yml.read_text()
    site.harbor_yml.write_text(text.replace(
        "# Everything Harbor keeps", f"storage_service:\n  s3:\n    accesskey: {weed.access_key}\n"
        f"    secretkey: {secret_key}\n    region: us-east-1\n    regionendpoint: {weed.endpoint}\n"
        f"    bucket: {bucket}\n    rootdirectory: {root}\n    secure: false\n\n# Everything Harbor keeps"))

    report = run(Options(str(site.harbor_yml), str(site.backup_dir), site.dsn, yes=True)).to_dict()
    assert report["ok"], render_text(report)
    assert report["installation"]["storage"] == f"s3://{bucket}{root}"
    checks = {c["name"]: c["status"] for c in report["verify"]["checks"]}
    assert checks["manifests in storage"] == "pass" and checks["artifact media types"] == "pass"
    artifacts = next(s for s in report["steps"] if s["name"] == "artifacts")
    assert artifacts["changed"]["artifacts_done"] == 9 and artifacts["changed"]["problems"] == 0
    written = [json.dumps(report), render_text(report), (site.backup_dir / "journal.jsonl").read_text()]
    assert not any(secret_key in t for t in written)
    assert secret_key in (site.harbor_yml.parent / f"harbor-{TARGET}.yml").read_text()
