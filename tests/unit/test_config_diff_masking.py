"""`migrate --diff` masks every credential-bearing key and URL userinfo."""
from __future__ import annotations

import pytest

from harbor_upgrade.config import plan_migration
from harbor_upgrade.secrets import forget_all

SECRETS = {
    "azure": "QXp1cmUtYWNjb3VudC1rZXk9PQ==",
    "swift": "swift-pw-778",
    "s3key": "AKIA-s3-secret-key-55",
    "oss": "oss-key-secret-66",
    "proxy": "proxy-pass-44",
    "token": "ghp_token_value_12345",
    "redis": "redis-pw-3",
}

HARBOR_YML = f"""\
hostname: reg.test.internal
harbor_admin_password: admin-pw-x7
database:
  password: db-pw-1
  max_idle_conns: 50
  max_open_conns: 100
data_volume: /data
storage_service:
  azure:
    accountname: harborstore
    accountkey: {SECRETS["azure"]}
    container: harbor
  # swift:
  #   password: {SECRETS["swift"]}
  #   secretkey: {SECRETS["s3key"]}
  # oss:
  #   accesskeysecret: {SECRETS["oss"]}
trivy:
  ignore_unfixed: false
  github_token: {SECRETS["token"]}
proxy:
  http_proxy: http://proxyuser:{SECRETS["proxy"]}@proxy.internal:3128
  https_proxy:
  no_proxy:
  components:
    - core
external_redis:
  host: redis:6379
  password: {SECRETS["redis"]}
  registry_db_index: 1
  jobservice_db_index: 2
  chartmuseum_db_index: 3
  trivy_db_index: 5
  idle_timeout_seconds: 30
_version: 2.0.0
"""


@pytest.fixture
def harbor_yml(tmp_path):
    forget_all()
    path = tmp_path / "harbor.yml"
    path.write_text(HARBOR_YML)
    return path


def test_diff_masks_every_credential_key_and_url_userinfo(harbor_yml, run_cli):
    # the diff shows the whole file's neighbourhood of each edit: make every line appear
    result = plan_migration(harbor_yml)
    import difflib
    everything = "".join(difflib.unified_diff(HARBOR_YML.splitlines(True), [], "a", "b"))
    from harbor_upgrade.config.runner import mask_yaml_text
    for name, secret in SECRETS.items():
        assert secret not in mask_yaml_text(everything), name
    assert "http://proxyuser:********@proxy.internal:3128" in mask_yaml_text(everything)
    code, out, err = run_cli("migrate", "-i", harbor_yml, "--diff")
    assert code == 0 and result.diff_text
    for name, secret in SECRETS.items():
        assert secret not in out + err, name
