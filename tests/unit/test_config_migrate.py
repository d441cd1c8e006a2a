"""`harbor-upgrade migrate` and migrate_file/plan_migration on files of our own."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harbor_upgrade import versions
from harbor_upgrade.config import migrate_file, plan_migration, read_harbor_yml
from harbor_upgrade.config.runner import MAX_BYTES
from harbor_upgrade.config.steps import RELEASES, TARGET
from harbor_upgrade.errors import ExitStatus, InvalidInput, UnsupportedVersion, ValidationFailed

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "harbor-1.10.yml"

SMALL_2_0 = """\
# a 2.0 install of ours
hostname: reg.test.internal   # the name clients use
http:
  port: 8080
harbor_admin_password: 'adminpw-123'
database:
  password: "dbpw-secret-9"
  max_idle_conns: 50
  max_open_conns: 100
data_volume: /data
clair:
  updaters_interval: 12
trivy:
  ignore_unfixed: true
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
_version: 2.0.0
external_redis:
  host: redis.test.internal
  port: 6380
  password: redis-pw-77
  registry_db_index: 1
  jobservice_db_index: 2
  chartmuseum_db_index: 3
  clair_db_index: 4
  trivy_db_index: 6
team_notes: keep me      # not a Harbor key
"""


def load(text: str):
    return YAML(typ="safe", pure=True).load(text)


@pytest.fixture
def small(tmp_path) -> Path:
    p = tmp_path / "harbor.yml"
    p.write_text(SMALL_2_0)
    return p


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_in_place_keeps_a_backup_and_the_operators_text(small, run_cli):
    code, out, err = run_cli("migrate", "-i", small, "-t", "2.4.0")
    assert code == 0, err
    assert "migrating to version 2.4.0" in out
    backup = small.with_name("harbor.yml.2.0.0.bak")
    assert backup.read_text() == SMALL_2_0
    assert listing(small.parent) == ["harbor.yml", "harbor.yml.2.0.0.bak"]
    text = small.read_text()
    assert "# a 2.0 install of ours" in text and "# the name clients use" in text
    assert "team_notes: keep me      # not a Harbor key" in text
    assert "harbor_admin_password: 'adminpw-123'" in text   # quoting survives
    data = load(text)
    assert data["_version"] == "2.4.0"
    assert data["external_redis"]["host"] == "redis.test.internal:6380"
    assert "port" not in data["external_redis"] and "clair_db_index" not in data["external_redis"]
    assert data["external_redis"]["trivy_db_index"] == 6        # the operator's value
    assert data["trivy"] == {"ignore_unfixed": True, "timeout": "5m0s", "skip_update": False, "insecure": False}
    assert "clair" not in data
    assert "# clair:" in text                                    # retired, not thrown away
    # 50/100 -> 50/1000 -> 100/900
    assert (data["database"]["max_idle_conns"], data["database"]["max_open_conns"]) == (100, 900)
    assert "harbor-upgrade 2.4.0" in text                        # our notes say what we did


def test_newest_release_and_the_default_target(small, run_cli, tmp_path):
    default = tmp_path / "default.yml"
    assert run_cli("migrate", "-i", small, "-o", default)[0] == 0
    assert load(default.read_text())["_version"] == versions.TARGET    # the newest of the whole upgrade
    code, out, err = run_cli("migrate", "-i", small, "-t", TARGET)
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith("migrating")] == \
        [f"migrating to version {v}" for v in RELEASES[RELEASES.index("2.1.0"):]]
    data = load(small.read_text())
    assert data["_version"] == TARGET
    assert "chartmuseum_db_index" not in data["external_redis"]      # ChartMuseum left in 2.8
    assert "# harbor-upgrade 2.8.0: ChartMuseum was removed" in small.read_text()
    assert "chart" not in data and data["jobservice"]["job_loggers"] == ["STD_OUTPUT", "FILE"]


def test_running_again_changes_nothing(small, run_cli):
    assert run_cli("migrate", "-i", small)[0] == 0
    first = small.read_bytes()
    code, out, _ = run_cli("migrate", "-i", small)
    assert code == 0 and f"already at {versions.TARGET}" in out
    assert small.read_bytes() == first
    assert listing(small.parent) == ["harbor.yml", "harbor.yml.2.0.0.bak"]


def test_existing_backup_is_never_overwritten(small):
    other = small.with_name("harbor.yml.2.0.0.bak")
    other.write_text("an older backup\n")
    result = migrate_file(small)
    assert other.read_text() == "an older backup\n"
    assert result.backup_path == small.with_name("harbor.yml.2.0.0.bak.2")
    assert result.backup_path.read_text() == SMALL_2_0


def test_output_path_leaves_input_untouched_and_keeps_mode(small, tmp_path):
    os.chmod(small, 0o600)
    out = tmp_path / "new" / "harbor.yml"
    out.parent.mkdir()
    result = migrate_file(small, out, target="2.2.0")
    assert small.read_text() == SMALL_2_0
    assert load(out.read_text())["_version"] == "2.2.0"
    assert result.steps == ["2.1.0", "2.2.0"] and result.backup_path is None
    assert (out.stat().st_mode & 0o777) == 0o600
    assert listing(out.parent) == ["harbor.yml"]


def test_input_at_target_with_output_is_copied_unchanged(small, tmp_path):
    out = tmp_path / "copy.yml"
    result = migrate_file(small, out, target="2.0.0")
    assert out.read_bytes() == small.read_bytes() and not result.changed and result.steps == []


def test_check_exits_1_and_writes_nothing(small, run_cli):
    code, out, _ = run_cli("migrate", "-i", small, "--check")
    assert code == ExitStatus.CHANGES_NEEDED
    assert small.read_text() == SMALL_2_0 and listing(small.parent) == ["harbor.yml"]
    migrate_file(small)
    assert run_cli("migrate", "-i", small, "--check")[0] == ExitStatus.OK


def test_diff_masks_secrets(small, run_cli):
    code, out, err = run_cli("migrate", "-i", small, "--diff")
    assert code == 0
    assert out.startswith("--- ") and f"+_version: {versions.TARGET}" in out
    for secret in ("redis-pw-77", "dbpw-secret-9", "adminpw-123"):
        assert secret not in out + err
    assert small.read_text() == SMALL_2_0


def test_patch_versions_are_their_release_line(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text(SMALL_2_0.replace("_version: 2.0.0", "_version: 2.1.1"))
    assert plan_migration(p, target="2.4.0").steps == ["2.2.0", "2.3.0", "2.4.0"]
    p.write_text(SMALL_2_0.replace("_version: 2.0.0", "_version: 1.10.3"))
    assert plan_migration(p, target="2.4.0").steps == ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0"]
    p.write_text(SMALL_2_0.replace("_version: 2.0.0", "_version: 2.13.5"))
    assert plan_migration(p, target="2.15.0").steps == ["2.14.0", "2.15.0"]


def test_every_validation_problem_at_once(tmp_path, run_cli):
    p = tmp_path / "harbor.yml"
    bad = (SMALL_2_0.replace("port: 8080", "port: 'abc'").replace("level: info", "level: loud")
           .replace("max_job_workers: 10", "max_job_workers: -3"))
    p.write_text(bad)
    code, out, err = run_cli("migrate", "-i", p)
    assert code == ExitStatus.INVALID
    assert "line 4: http.port: must be a port number" in err
    assert "log.level: must be one of" in err and "jobservice.max_job_workers: must be from 1" in err
    assert "3 problems" in err and "Traceback" not in err
    assert p.read_text() == bad and listing(tmp_path) == ["harbor.yml"]


@pytest.mark.parametrize("content,words,exc", [
    (b"", "empty", InvalidInput),
    (b"# only a comment\n\n# and another\n", "only comments", InvalidInput),
    (b"- a\n- b\n", "a list", InvalidInput),
    (b"just text\n", "single value", InvalidInput),
    (b"hostname: [oops\n_version: 2.0.0\n", "not valid YAML", InvalidInput),
    (b"hostname: a\nhostname: b\n_version: 2.0.0\n", "line 2", InvalidInput),
    (b"\x7fELF\x02\x01\x00\x00binary", "binary", InvalidInput),
    (b"hostname: caf\xe9\n_version: 2.0.0\n", "not UTF-8", InvalidInput),
    (b"hostname: x\n", "no _version", InvalidInput),
    (b"hostname: x\n_version: 9.9.9\n", f"newer than {TARGET}", UnsupportedVersion),
    (b"hostname: x\n_version: 1.8.0\n", "older than 1.9.0", UnsupportedVersion),
    (b"hostname: x\n_version: 1.11.0\n", "not a Harbor release", UnsupportedVersion),
    (b"hostname: x\n_version: 2.3\n", "line 2", UnsupportedVersion),
    (b"hostname: x\n_version: v2.3.0\n", "leading 'v'", UnsupportedVersion),
    (b"hostname: x\n_version: banana\n", "X.Y.Z", UnsupportedVersion),
])
def test_bad_input_is_one_clear_message(tmp_path, run_cli, content, words, exc):
    p = tmp_path / "harbor.yml"
    p.write_bytes(content)
    with pytest.raises(exc) as info:
        migrate_file(p)
    assert words in info.value.message and str(p) in info.value.message
    code, out, err = run_cli("migrate", "-i", p)
    assert code == exc.exit_code
    assert err.startswith("error [") and "Traceback" not in err and str(p) in err
    assert p.read_bytes() == content and listing(tmp_path) == ["harbor.yml"]


def test_downgrade_and_unknown_target_are_refused(small, run_cli):
    code, _, err = run_cli("migrate", "-i", small, "-t", "1.10.0")
    assert code == ExitStatus.UNSUPPORTED and "cannot go down" in err
    code, _, err = run_cli("migrate", "-i", small, "-t", "2.99.0")
    assert code == ExitStatus.UNSUPPORTED and "2.99.0" in err
    assert small.read_text() == SMALL_2_0 and listing(small.parent) == ["harbor.yml"]


def test_missing_input_and_missing_output_folder(tmp_path, small, run_cli):
    code, _, err = run_cli("migrate", "-i", tmp_path / "nope.yml")
    assert code == ExitStatus.INVALID and "no such file" in err
    code, _, err = run_cli("migrate", "-i", small, "-o", tmp_path / "no" / "dir" / "out.yml")
    assert code == ExitStatus.INVALID and "does not exist" in err
    assert listing(tmp_path) == ["harbor.yml"]


def test_a_5_mb_file_is_refused_quickly_without_reading_it_as_yaml(tmp_path, run_cli):
    p = tmp_path / "harbor.yml"
    with p.open("w") as fh:
        fh.write("hostname: x\n_version: 2.3.0\nbig:\n")
        line = "  key_{:07d}: some value that makes the file large\n"
        i = 0
        while fh.tell() < 5 * 1024 * 1024:
            fh.write(line.format(i))
            i += 1
    before = p.stat().st_mtime_ns
    t0 = time.monotonic()
    code, _, err = run_cli("migrate", "-i", p)
    assert code == ExitStatus.INVALID and "too large" in err and str(p) in err
    assert time.monotonic() - t0 < 5
    assert p.stat().st_mtime_ns == before and listing(tmp_path) == ["harbor.yml"]
    assert p.stat().st_size > MAX_BYTES


def test_no_temp_file_is_left_when_the_write_fails(small, tmp_path, monkeypatch):
    out = tmp_path / "out.yml"

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(InvalidInput, match="cannot write"):
        migrate_file(small, out)
    assert listing(tmp_path) == ["harbor.yml"]


def test_example_file_migrates_and_reads(tmp_path):
    out = tmp_path / "harbor.yml"
    result = migrate_file(EXAMPLE, out, target="2.4.0")
    assert result.steps == ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0"]
    data = load(out.read_text())
    assert data["site"] == {"owner": "platform-team", "backup_window": "02:00-04:00"}
    assert data["proxy"]["components"] == ["core", "jobservice", "trivy"]
    assert data["database"]["max_open_conns"] == 900     # 300 -> 1000 (2.1) -> 900 (2.3)
    cfg = read_harbor_yml(out)
    assert cfg.version == "2.4.0" and cfg.data_volume == "/srv/harbor"
    assert cfg.registry_storage_path == Path("/srv/harbor/registry")


def test_validation_failure_is_raised_from_the_api(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text(SMALL_2_0.replace("hostname: reg.test.internal   # the name clients use\n", ""))
    with pytest.raises(ValidationFailed, match="hostname: is required"):
        plan_migration(p)


def test_partial_sections_that_crash_harbor_are_completed(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text("hostname: h.test\n_version: 2.3.0\ndatabase:\n  password: pw-part\nproxy:\n  components: [core]\n"
                 "log:\n  level: info\ntrace:\n  enabled: true\n  sample_rate: 1\n  jaeger:\n"
                 "    endpoint: http://127.0.0.1:14268/api/traces\n")
    data = load(plan_migration(p, target="2.4.0").output_text)
    assert data["database"] == {"password": "pw-part", "max_idle_conns": 100, "max_open_conns": 900}
    assert data["proxy"] == {"http_proxy": None, "https_proxy": None, "no_proxy": None, "components": ["core"]}
    assert data["log"]["local"] == {"rotate_count": 50, "rotate_size": "200M", "location": "/var/log/harbor"}
    assert data["trace"]["jaeger"] == {"endpoint": "http://127.0.0.1:14268/api/traces", "username": None,
                                       "password": None, "agent_host": None, "agent_port": None}


def test_external_redis_of_1_10_and_extdb_without_notary_migrate(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text("hostname: h.test\n_version: 1.10.0\nexternal_redis:\n  host: 127.0.0.1\n  port: 6379\n"
                 "  password:\n  registry_db_index: 1\n  jobservice_db_index: 2\n  chartmuseum_db_index: 3\n"
                 "  clair_db_index: 4\nexternal_database:\n  harbor:\n    host: 127.0.0.1\n    port: 5432\n"
                 "    db_name: registry\n    username: harbor\n    password: pw-ext\n    ssl_mode: disable\n")
    data = load(plan_migration(p, target="2.4.0").output_text)
    assert data["external_redis"] == {"host": "127.0.0.1:6379", "password": None, "registry_db_index": 1,
                                      "jobservice_db_index": 2, "chartmuseum_db_index": 3, "trivy_db_index": 5,
                                      "idle_timeout_seconds": 30}
    assert list(data["external_database"]) == ["harbor"]


def test_crlf_file_keeps_its_line_ends(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_bytes(SMALL_2_0.replace("\n", "\r\n").encode())
    out = tmp_path / "out.yml"
    migrate_file(p, out)
    raw = out.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 20


def test_symlinked_harbor_yml_is_replaced_at_its_target(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "harbor.yml").write_text(SMALL_2_0)
    link = tmp_path / "harbor.yml"
    link.symlink_to(real / "harbor.yml")
    result = migrate_file(link)
    assert link.is_symlink() and load(link.read_text())["_version"] == versions.TARGET
    assert result.backup_path.read_text() == SMALL_2_0
