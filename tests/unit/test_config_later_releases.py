"""The config steps 2.5.0 ... 2.15.0 on files of our own: removed components, and the places
where Harbor's own migrate loses or corrupts a value and we keep the operator's meaning."""
from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harbor_upgrade.config import plan_migration
from harbor_upgrade.config.steps import TARGET

BASE_2_7 = """\
hostname: reg.test.internal
https:
  port: 443
  certificate: /etc/tls/reg.crt
  private_key: /etc/tls/reg.key
internal_tls:
  enabled: true
  dir: /etc/harbor/tls/internal
harbor_admin_password: admin-pw-1
database:
  password: db-pw-2
  max_idle_conns: 100
  max_open_conns: 900
data_volume: /data
storage_service:
  s3:
    bucket: harbor
  redirect:
    disabled: true     # our CDN cannot sign
jobservice:
  max_job_workers: 10
notification:
  webhook_job_max_retry: 10
# charts of team A still live in ChartMuseum
chart:
  absolute_url: enabled
_version: 2.7.0
external_database:
  harbor:
    host: 127.0.0.1
    port: 5432
    db_name: registry
    username: harbor
    password: ext-pw-3
    ssl_mode: disable
    max_idle_conns: 2
    max_open_conns: 0
  notary_signer:
    host: 127.0.0.1
    port: 5432
    db_name: notarysigner
    username: signer
    password: signer-pw-4
    ssl_mode: disable
external_redis:
  host: 127.0.0.1:26379,127.0.0.2:26379
  sentinel_master_set: harbor-master
  password: redis-pw-5
  registry_db_index: 1
  jobservice_db_index: 2
  chartmuseum_db_index: 3
  trivy_db_index: 5
  idle_timeout_seconds: 30
"""


def load(text: str):
    y = YAML(typ="safe", pure=True)
    y.version = (1, 1)   # as Harbor reads it
    return y.load(text)


@pytest.fixture
def file_2_7(tmp_path: Path) -> Path:
    p = tmp_path / "harbor.yml"
    p.write_text(BASE_2_7)
    return p


def test_chartmuseum_is_commented_out_with_a_note_at_2_8(file_2_7):
    result = plan_migration(file_2_7, target="2.8.0")
    data, text = load(result.output_text), result.output_text
    assert "chart" not in data and "chartmuseum_db_index" not in data["external_redis"]
    assert "# harbor-upgrade 2.8.0: ChartMuseum was removed in Harbor 2.8" in text
    assert "# chart:\n#   absolute_url: enabled\n" in text          # the operator's value, kept as text
    assert "# charts of team A still live in ChartMuseum" in text
    assert any("ChartMuseum was removed" in w for w in result.warnings)


def test_chartmuseum_redis_index_is_kept_until_chartmuseum_goes(file_2_7):
    """Harbor's own 2.5 ... 2.7 steps (of v2.15) drop it, while ChartMuseum still reads it."""
    text = BASE_2_7.replace("_version: 2.7.0", "_version: 2.4.0").replace("  redirect:\n    disabled: true"
                                                                          "     # our CDN cannot sign\n", "")
    file_2_7.write_text(text)
    assert load(plan_migration(file_2_7, target="2.7.0").output_text)["external_redis"]["chartmuseum_db_index"] == 3


def test_notary_databases_are_commented_out_with_a_note_at_2_9(file_2_7):
    result = plan_migration(file_2_7, target="2.9.0")
    data, text = load(result.output_text), result.output_text
    assert list(data["external_database"]) == ["harbor"]
    assert "# harbor-upgrade 2.9.0: Notary was removed in Harbor 2.9" in text
    assert "#   db_name: notarysigner" in text
    assert "signer-pw-4" not in result.diff_text                 # the commented-out password is masked too


def test_redirect_disabled_is_renamed_keeping_its_comment(file_2_7):
    text = plan_migration(file_2_7, target="2.8.0").output_text
    assert load(text)["storage_service"]["redirect"] == {"disable": True}
    line = next(line for line in text.splitlines() if "disable:" in line)
    assert line.split() == ["disable:", "true", "#", "our", "CDN", "cannot", "sign", "(harbor-upgrade", "2.8.0:",
                            "Harbor", "2.8's", "spelling;", "was", "disabled)"]
    file_2_7.write_text(BASE_2_7.replace("_version: 2.7.0", "_version: 2.9.0"))   # 2.8+ reads either spelling,
    assert load(plan_migration(file_2_7, target=TARGET).output_text)["storage_service"]["redirect"] == \
        {"disable": True}                                                           # later steps write 'disable'


def test_sentinel_is_kept_with_a_note_where_harbor_drops_it(file_2_7):
    result = plan_migration(file_2_7, target=TARGET)
    assert load(result.output_text)["external_redis"]["sentinel_master_set"] == "harbor-master"
    assert "sentinel_master_set: harbor-master  # harbor-upgrade" in result.output_text
    assert any("sentinel_master_set" in w and "Sentinel" in w for w in result.warnings)


@pytest.mark.parametrize("internal,https_value", [(None, False), (True, True), (False, False)])
def test_strong_ciphers_move_to_https_and_are_never_switched_on_by_us(file_2_7, internal, https_value):
    text = BASE_2_7.replace("_version: 2.7.0", "_version: 2.9.0")
    if internal is not None:
        text = text.replace("  dir: /etc/harbor/tls/internal\n",
                            f"  dir: /etc/harbor/tls/internal\n  strong_ssl_ciphers: {str(internal).lower()}\n")
    file_2_7.write_text(text)
    for target in ("2.10.0", TARGET):
        result = plan_migration(file_2_7, target=target)
        data = load(result.output_text)
        assert data["https"]["strong_ssl_ciphers"] is https_value       # Harbor writes 'none' (= on)
        assert "strong_ssl_ciphers" not in data["internal_tls"]
    if internal is None:
        assert "strong_ssl_ciphers: false  # harbor-upgrade 2.10.0: off, the default (Harbor's own migrate " \
               "writes 'none' here" in result.output_text


def test_an_operators_strong_ciphers_without_https_stay_where_prepare_reads_them(file_2_7):
    text = BASE_2_7.replace("_version: 2.7.0", "_version: 2.9.0").replace(
        "  dir: /etc/harbor/tls/internal\n", "  dir: /etc/harbor/tls/internal\n  strong_ssl_ciphers: true\n")
    text = text.replace("https:\n  port: 443\n  certificate: /etc/tls/reg.crt\n  private_key: /etc/tls/reg.key\n",
                        "")
    file_2_7.write_text(text)
    result = plan_migration(file_2_7, target=TARGET)
    assert load(result.output_text)["internal_tls"]["strong_ssl_ciphers"] is True
    assert any("internal_tls.strong_ssl_ciphers" in w for w in result.warnings)


def test_a_2_8_file_without_notification_gets_2_8s_defaults(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text("hostname: h.test\n_version: 2.8.0\n")
    data = load(plan_migration(p, target=TARGET).output_text)
    assert data["notification"] == {"webhook_job_max_retry": 3, "webhook_job_http_client_timeout": 3}
    assert data["jobservice"] == {"max_job_workers": 10, "max_job_duration_hours": 24,
                                  "job_loggers": ["STD_OUTPUT", "FILE"], "logger_sweeper_duration": 1}
    assert "chart" not in data and data["upload_purging"]["age"] == "168h"
