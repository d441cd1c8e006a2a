"""plan, run --dry-run and the refusals of run, on a sample 1.10 installation: nothing is
written unless run goes ahead."""
from __future__ import annotations

import json
import shutil

import psycopg
import pytest

from harbor_upgrade import demo

from test_demo import open_tmpdir


@pytest.fixture(scope="module")
def site():
    base = open_tmpdir("harbor-upgrade-cli-test-")
    inst = demo.build(base / "site")
    yield inst
    inst.cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


def schema_version(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT version FROM schema_migrations").fetchone()[0]


def test_plan_shows_hops_steps_and_checks_and_writes_nothing(site, run_cli):
    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--backup-dir",
                           site.backup_dir, "--json")
    assert code == 0, out
    p = json.loads(out)
    assert p["ok"] and p["hops"][0] == "1.10.0" and p["hops"][-1] == "2.4.0"
    assert [s["name"] for s in p["steps"]] == ["backup", "config", "database", "artifacts", "scanner", "verify"]
    assert all(s["planned"] and s["ok"] for s in p["steps"])
    checks = {c["name"]: c["status"] for c in p["checks"]}
    assert checks["supported start"] == "pass" and checks["Clair"] == "warn" and checks["database lint"] == "pass"
    assert p["installation"]["components"]["clair"] and p["installation"]["database"]["schema_version"] == 15
    assert not site.backup_dir.exists() and schema_version(site.dsn) == 15
    assert not (site.harbor_yml.parent / "harbor-2.4.0.yml").exists()

    code, out, _ = run_cli("run", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--backup-dir",
                           site.backup_dir, "--dry-run")
    assert code == 0 and "Preflight" in out and "planned" in out
    assert not site.backup_dir.exists() and schema_version(site.dsn) == 15


def test_run_asks_for_confirmation_and_refuses_without_a_terminal(site, run_cli):
    code, _, err = run_cli("run", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--backup-dir",
                           site.backup_dir)
    assert code == 4 and "confirmation-needed" in err and "--yes" in err
    assert not site.backup_dir.exists() and schema_version(site.dsn) == 15


def test_a_running_harbor_fails_the_preflight_and_nothing_changes(site, run_cli):
    with psycopg.connect(site.dsn, application_name="harbor-core"):
        code, out, _ = run_cli("run", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--backup-dir",
                               site.backup_dir, "--yes", "--json")
    assert code == 4
    r = json.loads(out)
    stopped = next(c for c in r["checks"] if c["name"] == "Harbor stopped")
    assert not r["ok"] and stopped["status"] == "fail" and "harbor-core" in stopped["samples"][0]
    assert r["steps"] and not any(s["ok"] for s in r["steps"])
    assert not site.backup_dir.exists() and schema_version(site.dsn) == 15


def test_a_harbor_older_than_1_10_is_refused(site, run_cli, tmp_path):
    old = tmp_path / "harbor.yml"
    old.write_text(site.harbor_yml.read_text().replace("_version: 1.10.0", "_version: 1.8.0"))
    code, out, _ = run_cli("plan", "--harbor-yml", old, "--dsn", site.dsn, "--json")
    start = next(c for c in json.loads(out)["checks"] if c["name"] == "supported start")
    assert code == 4 and start["status"] == "fail" and "1.10 first" in start["hint"]
