"""The 2.4.0 validation model: types, required keys, ranges; every problem with its line."""
from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from harbor_upgrade.config import validate

VALID = """\
hostname: reg.example.test
http:
  port: 80
harbor_admin_password: pw-admin
database:
  password: pw-db
  max_idle_conns: 100
  max_open_conns: 900
data_volume: /data
trivy:
  ignore_unfixed: false
  timeout: 5m0s
jobservice:
  max_job_workers: 10
notification:
  webhook_job_max_retry: 10
chart:
  absolute_url: disabled
log:
  level: info
  local:
    rotate_count: 50
    rotate_size: 200M
    location: /var/log/harbor
_version: 2.4.0
proxy:
  http_proxy:
  https_proxy:
  no_proxy:
  components:
    - core
    - jobservice
    - trivy
my_own_key: anything goes
"""


def problems(text: str, target: str = "2.4.0") -> list[str]:
    data = YAML(typ="rt").load(text)
    return [p.render() for p in validate(data, target)]


def test_valid_file_has_no_problem():
    assert problems(VALID) == []


@pytest.mark.parametrize("old,new,expected", [
    ("  port: 80", "  port: 80000", "line 3: http.port: must be from 1 to 65535, not 80000"),
    ("  port: 80", "  port: '80'", "line 3: http.port: must be a port number, not text ('80')"),
    ("  max_open_conns: 900", "  max_open_conns: -5", "line 8: database.max_open_conns: must be at least 0"),
    ("  level: info", "  level: verbose", "line 20: log.level: must be one of debug, info, warning, error, fatal"),
    ("    - trivy", "    - notary", "line 33: proxy.components.2: must be one of core, jobservice, trivy"),
    ("  timeout: 5m0s", "  timeout: five minutes", "line 12: trivy.timeout: must be a duration like 5m0s"),
    ("data_volume: /data", "data_volume: data", "line 9: data_volume: must be an absolute path"),
    ("  absolute_url: disabled", "  absolute_url: yes please", "chart.absolute_url: must be one of enabled, disabled"),
    ("hostname: reg.example.test\n", "", "hostname: is required but missing"),
    ("_version: 2.4.0", "_version: 2.3.0", "line 25: _version: must be 2.4.0"),
    ("  ignore_unfixed: false", "  ignore_unfixed: maybe", "line 11: trivy.ignore_unfixed: must be true or false"),
    ("data_volume: /data", "data_volume: /data\nstorage_service:\n  floppy:\n    size: 1",
     "storage_service.floppy: unknown storage driver"),
    ("data_volume: /data", "data_volume: /data\nstorage_service:\n  s3: {}\n  gcs: {}", "names 2 storage drivers"),
    ("data_volume: /data", "data_volume: /data\nexternal_redis:\n  host: redis\n  registry_db_index: 1\n"
     "  jobservice_db_index: 2\n  chartmuseum_db_index: 3", "external_redis.host: must be host:port"),
    ("data_volume: /data", "data_volume: /data\nmetric:\n  enabled: true\n  port: 0\n  path: /metrics",
     "metric.port: must be from 1 to 65535, not 0"),
])
def test_each_problem_is_named_with_its_line(old, new, expected):
    text = VALID.replace(old, new)
    assert text != VALID
    found = problems(text)
    assert any(expected in p for p in found), found


def test_all_problems_at_once():
    text = (VALID.replace("  port: 80", "  port: 0").replace("  level: info", "  level: x")
            .replace("  max_job_workers: 10", "  max_job_workers: many"))
    assert len(problems(text)) == 3


def test_yaml11_booleans_are_booleans_as_harbor_reads_them():
    assert problems(VALID.replace("  ignore_unfixed: false", "  ignore_unfixed: no")) == []


def test_earlier_targets_allow_what_that_release_had():
    text = VALID.replace("_version: 2.4.0", "_version: 2.0.0").replace("    - trivy", "    - clair")
    assert problems(text, "2.0.0") == []
    assert any("clair" in p for p in problems(text.replace("2.0.0", "2.4.0")))
