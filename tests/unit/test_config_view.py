"""read_harbor_yml: the read-only view other parts use; secrets registered for masking."""
from __future__ import annotations

from pathlib import Path

import pytest

from harbor_upgrade.config import read_harbor_yml
from harbor_upgrade.errors import InvalidInput
from harbor_upgrade.secrets import mask_text

S3_EXTDB = """\
hostname: reg.example.test
data_volume: /srv/harbor
storage_service:
  ca_bundle: /etc/ssl/ca.pem
  s3:
    bucket: harbor-blobs
    region: us-east-1
    regionendpoint: http://127.0.0.1:9000
    accesskey: AKIAVIEWTEST
    secretkey: view-secret-key-123
    rootdirectory: /registry
  redirect:
    disabled: true
external_database:
  harbor:
    host: 127.0.0.1
    port: 5433
    db_name: registry
    username: harbor
    password: view-db-pass-456
    ssl_mode: disable
    max_idle_conns: 2
    max_open_conns: 0
  notary_signer:
    host: 127.0.0.1
    port: 5433
    db_name: notarysigner
    username: signer
    password: signer-pass-789
    ssl_mode: disable
external_redis:
  host: 127.0.0.1:6379
  password: redis-pass-000
  registry_db_index: 1
  jobservice_db_index: 2
  chartmuseum_db_index: 3
internal_tls:
  enabled: true
  dir: /etc/harbor/tls/internal
trivy:
  github_token: ghp_viewtoken
_version: 2.3.0
"""


def test_s3_external_database_and_components(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text(S3_EXTDB)
    cfg = read_harbor_yml(p)
    assert (cfg.version, cfg.release, cfg.hostname, cfg.data_volume) == ("2.3.0", "2.3.0", "reg.example.test",
                                                                          "/srv/harbor")
    assert cfg.storage.driver == "s3" and cfg.storage.options["bucket"] == "harbor-blobs"
    assert cfg.storage.options["regionendpoint"] == "http://127.0.0.1:9000"
    assert cfg.storage.redirect_disabled is True and cfg.registry_storage_path is None
    db = cfg.database
    assert db.external and (db.host, db.port, db.username, db.db_name) == ("127.0.0.1", 5433, "harbor", "registry")
    assert "notary_signer" in db.others
    c = cfg.components
    assert c.internal_tls and c.trivy and not c.clair and c.notary is True and c.chartmuseum is None
    assert c.external_redis.host == "127.0.0.1:6379" and c.external_redis.db_indexes["registry_db_index"] == 1
    shown = mask_text("view-secret-key-123 view-db-pass-456 signer-pass-789 redis-pass-000 ghp_viewtoken AKIAVIEWTEST")
    assert not any(s in shown for s in ("view-secret", "view-db", "signer-pass", "redis-pass", "ghp_", "AKIA"))


def test_defaults_of_a_minimal_1_10_file(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text("hostname: h.test\n_version: 1.10.3\ndatabase:\n  password: pw-min-1\n")
    cfg = read_harbor_yml(p)
    assert cfg.release == "1.10.0" and cfg.data_volume == "/data"
    assert cfg.storage.driver == "filesystem" and cfg.registry_storage_path == Path("/data/registry")
    assert not cfg.database.external and cfg.database.password == "pw-min-1"
    assert cfg.components.external_redis is None and not cfg.components.internal_tls


def test_bad_file_is_an_operator_error(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text("- not\n- a mapping\n")
    with pytest.raises(InvalidInput, match="not a mapping"):
        read_harbor_yml(p)


def test_redirect_is_read_in_either_spelling(tmp_path):
    from harbor_upgrade.config import read_harbor_yml
    for key in ("disabled", "disable"):
        p = tmp_path / f"{key}.yml"
        p.write_text(f"hostname: h.test\n_version: 2.15.0\nstorage_service:\n  s3:\n    bucket: b\n"
                     f"  redirect:\n    {key}: true\n")
        assert read_harbor_yml(p).storage.redirect_disabled is True
