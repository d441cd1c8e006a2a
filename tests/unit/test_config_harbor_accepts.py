"""Files Harbor's own prepare accepts are accepted too, with a warning saying what was assumed
(issue 10, item 10: found in real operators' harbor.yml files)."""
from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harbor_upgrade.config import plan_migration
from harbor_upgrade.config.steps import TARGET

# (the sections left out are added by the steps, at Harbor's defaults)
BASE = """\
hostname: reg.test.internal
http:
  port: 80
harbor_admin_password: admin-pw-1
database:
  password: db-pw-2
log:
  level: info
_version: 1.10.0
"""

HTTPS_COMMENTED_OUT = """\
# https related config
https:
  # https port for harbor, default is 443
  # port: 443
  # The path of cert and key files for nginx
  # certificate: /your/certificate/path
  # private_key: /your/private/key/path
"""

REDIS_WITHOUT_INDEXES = """\
external_redis:
  host: 127.0.0.1
  port: 6379
  password: redis-pw-3
"""

FLAT_LOG = """\
log:
  level: warning
  rotate_count: 14     # two weeks
  rotate_size: 500M
  location: /srv/logs/harbor
"""


def load(text: str):
    return YAML(typ="safe", pure=True).load(text)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "harbor.yml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("target", ["2.4.0", TARGET])
def test_https_with_every_setting_commented_out_means_http_only(tmp_path, target):
    p = write(tmp_path, BASE.replace("harbor_admin_password:", HTTPS_COMMENTED_OUT + "harbor_admin_password:"))
    result = plan_migration(p, target=target)
    data = load(result.output_text)
    assert data["https"] is None and data["http"] == {"port": 80}
    assert "# certificate: /your/certificate/path" in result.output_text
    assert any(w.startswith("https:") and "HTTP only" in w for w in result.warnings)


@pytest.mark.parametrize("http", ["http:\n", "http: {}\n", "http:\n  # port: 80\n"])
def test_an_empty_http_section_means_port_80(tmp_path, http):
    p = write(tmp_path, BASE.replace("http:\n  port: 80\n", http))
    result = plan_migration(p, target=TARGET)
    assert any(w.startswith("http") and "80" in w for w in result.warnings)


def test_external_redis_without_its_database_indexes_takes_harbors_defaults(tmp_path):
    p = write(tmp_path, BASE + REDIS_WITHOUT_INDEXES)
    for target in ("2.4.0", TARGET):
        result = plan_migration(p, target=target)
        redis = load(result.output_text)["external_redis"]
        assert "registry_db_index" not in redis and redis["host"] == "127.0.0.1:6379"
        warned = " ".join(result.warnings)
        assert "external_redis.registry_db_index" in warned and "1" in warned
        assert "external_redis.jobservice_db_index" in warned
        assert ("external_redis.chartmuseum_db_index" in warned) == (target == "2.4.0")   # gone with ChartMuseum


@pytest.mark.parametrize("target", ["2.0.0", TARGET])
def test_flat_1_8_log_settings_are_carried_into_log_local(tmp_path, target):
    p = write(tmp_path, BASE.replace("log:\n  level: info\n", FLAT_LOG))
    result = plan_migration(p, target=target)
    data = load(result.output_text)
    assert data["log"] == {"level": "warning", "local": {"rotate_count": 14, "rotate_size": "500M",
                                                         "location": "/srv/logs/harbor"}}
    assert "# two weeks" in result.output_text
    assert any("log.local" in w and "rotate_count" in w for w in result.warnings)


def test_flat_log_settings_beside_a_local_section_are_left_to_the_operator(tmp_path):
    """With both, the local section is what Harbor reads: nothing is moved, the file is refused
    nowhere, and the flat keys stay as the operator's own."""
    text = BASE.replace("  level: info\n",
                        "  level: info\n  location: /old/place\n  local:\n    location: /var/log/harbor\n")
    result = plan_migration(write(tmp_path, text), target=TARGET)
    assert load(result.output_text)["log"]["local"]["location"] == "/var/log/harbor"


@pytest.mark.parametrize("target", ["2.4.0", TARGET])
def test_a_file_at_its_release_with_those_gaps_is_left_byte_identical_and_warned(tmp_path, target):
    p = write(tmp_path, BASE.replace("http:\n  port: 80\n", "http:\n") + REDIS_WITHOUT_INDEXES)
    text = plan_migration(p, target=target).output_text          # a file of that release
    p.write_text(text)
    result = plan_migration(p, target=target)
    assert not result.changed and result.output_text == text and not result.steps
    assert len(result.warnings) >= 3
