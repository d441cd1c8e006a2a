"""plan, run --dry-run and the refusals of run, on a sample 1.10 installation: nothing is
written unless run goes ahead."""
from __future__ import annotations

import json
import shutil

import psycopg
import pytest

from harbor_upgrade import demo, versions
from harbor_upgrade.errors import ExternalFailure
from harbor_upgrade.upgrade import estimate
from tests.support.sites import demo_site


@pytest.fixture(scope="module")
def site():
    with demo_site("harbor-upgrade-cli-test-") as inst:
        yield inst


def schema_version(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT version FROM schema_migrations").fetchone()[0]


def test_plan_shows_hops_steps_and_checks_and_writes_nothing(site, run_cli):
    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--backup-dir",
                           site.backup_dir, "--json")
    assert code == 0, out
    p = json.loads(out)
    assert p["ok"] and p["hops"][0] == "1.10.0" and p["hops"][-1] == versions.TARGET == p["target"]
    assert p["harbor_path"]["installs"][0]["release"] == "2.4.0" and p["harbor_path"]["start"] == "1.10.0"
    assert [s["name"] for s in p["steps"]] == ["backup", "config", "database", "artifacts", "scanner", "verify"]
    assert all(s["planned"] and s["ok"] for s in p["steps"])
    checks = {c["name"]: c["status"] for c in p["checks"]}
    assert checks["supported start"] == "pass" and checks["Clair"] == "warn" and checks["database lint"] == "pass"
    assert p["installation"]["components"]["clair"] and p["installation"]["database"]["schema_version"] == 15
    assert not site.backup_dir.exists() and schema_version(site.dsn) == 15
    assert not (site.harbor_yml.parent / f"harbor-{versions.TARGET}.yml").exists()

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


def test_plan_to_an_earlier_release_and_what_a_run_to_it_would_write(site, run_cli):
    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--to", "2.1", "--json")
    p = json.loads(out)
    assert code == 0 and p["target"] == "2.1.0" and p["hops"] == ["1.10.0", "2.0.0", "2.1.0"]
    assert [i["release"] for i in p["harbor_path"]["installs"]] == ["2.1.0"]
    database = next(s for s in p["steps"] if s["name"] == "database")
    assert database["summary"].endswith("schema 15 → 41")
    assert "--to 2.1" in p["next"][0]
    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--to", "1.8")
    assert code == 3 and schema_version(site.dsn) == 15


@pytest.mark.skipif("2.8.0" not in versions.RELEASES, reason="the tool does not reach 2.8 yet")
def test_run_refuses_to_cross_2_8_while_chartmuseum_holds_charts(site, run_cli):
    charts = site.data_volume / "chart_storage"
    for rel in ("library/nginx-1.0.0.tgz", "library/nginx-1.1.0.tgz", "team/app-0.1.0.tgz"):
        (charts / rel).parent.mkdir(parents=True, exist_ok=True)
        (charts / rel).write_bytes(b"chart")
    try:
        code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--json")
        removed = {r["component"]: r for r in json.loads(out)["removed"]}
        assert removed["ChartMuseum"]["charts"]["total"] == 3 and removed["ChartMuseum"]["in_use"]
        assert removed["ChartMuseum"]["charts"]["projects"] == {"library": 2, "team": 1}
        assert removed["Notary"]["release"] == "2.9.0" and "cosign" in removed["Notary"]["before"]
        code, _, err = run_cli("run", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--backup-dir",
                               site.backup_dir, "--yes")
        assert code == 4 and "chartmuseum-charts" in err and "library (2)" in err and "--drop-chartmuseum" in err
        assert not site.backup_dir.exists() and schema_version(site.dsn) == 15
        # up to 2.7 nothing is removed: the plan passes without the flag
        code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--to", "2.7", "--json")
        assert code == 0 and "ChartMuseum" not in {r["component"] for r in json.loads(out)["removed"]}
    finally:
        shutil.rmtree(charts)


@pytest.mark.skipif("2.10.0" not in versions.RELEASES, reason="the tool does not reach 2.10 yet")
def test_plan_counts_what_2_10_drops_by_design(site, run_cli):
    with psycopg.connect(site.dsn, autocommit=True) as conn:
        n = conn.execute("SELECT count(*) FROM harbor_resource_label").fetchone()[0]
    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--json")
    losses = json.loads(out)["data_losses"]
    assert code == 0 and [(x["release"], x["rows"]) for x in losses if "harbor_resource_label" in x["what"]] \
        == [("2.10.0", n)]
    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--to", "2.9", "--json")
    assert not [x for x in json.loads(out)["data_losses"] if x["release"] == "2.10.0"]


def test_plan_estimates_each_step_and_the_stop_window(site, run_cli):
    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--json")
    assert code == 0, out
    p = json.loads(out)
    e = p["estimate"]
    steps = {s["name"]: s["estimate_seconds"] for s in p["steps"]}
    assert steps == e["steps"] and all(0 <= v < 600 for v in steps.values())
    assert steps["backup"] > 0 and steps["database"] > 0 and steps["verify"] > 0
    assert e["window_seconds"] == pytest.approx(sum(steps.values()) + e["run_own_seconds"], abs=0.3)
    assert 0 <= e["prepare"]["seconds"] <= steps["artifacts"]
    assert e["prepare"]["window_seconds"] == pytest.approx(
        e["window_seconds"] - e["prepare"]["seconds"] + e["prepare"]["relist_seconds"], abs=0.2)
    inputs = e["inputs"]
    storage = inputs["storage"]
    # the demo's storage holds every repository the database knows: all its artifacts are read, and sampled
    assert storage["listed_all"] and storage["repositories"] >= 1 and storage["problem"] is None
    assert 0 < storage["sampled_artifacts"] <= storage["artifacts_in_storage"] == inputs["artifact_rows"]
    assert storage["sampled_seconds"] > 0 and storage["readers"] >= 1
    assert inputs["database_bytes"] > 1_000_000 and inputs["total_rows"] > 0 and inputs["speed"] > 0
    assert [r for r, _ in inputs["releases"]][0] == "2.0.0" and inputs["releases"][-1][0] == versions.TARGET
    assert schema_version(site.dsn) == 15    # estimating wrote nothing

    code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn)
    assert code == 0 and "Estimated stop window: ≈" in out and "≈ " in out.split("Steps")[1]


def test_plan_estimates_the_engine_step_by_its_mode(site, run_cli):
    try:
        newer = demo.newer_binaries(site.cluster.bin.major)
    except ExternalFailure:
        pytest.skip(f"no PostgreSQL newer than {site.cluster.bin.major} is installed")
    rates = estimate.load_rates()
    seconds = {}
    for mode in ("copy", "link"):
        code, out, _ = run_cli("plan", "--harbor-yml", site.harbor_yml, "--dsn", site.dsn, "--engine-bindir",
                               str(newer.bindir), "--engine-mode", mode, "--json")
        assert code == 0, out
        e = json.loads(out)["estimate"]
        # the shipped rates measured both modes: the step is its mode's line at the cluster's bytes
        assert f"engine-{mode}" in rates.steps and f"engine-{mode}" not in e["not_calibrated"]["lines"]
        line = rates.steps[f"engine-{mode}"]
        assert e["steps"]["engine"] == pytest.approx(line.at(e["inputs"]["cluster_bytes"], e["inputs"]["speed"]),
                                                     abs=0.051)
        assert e["inputs"]["engine_mode"] == mode and e["inputs"]["cluster_bytes"] >= e["inputs"]["database_bytes"]
        seconds[mode] = e["steps"]["engine"]
    assert seconds["copy"] > 0 and seconds["link"] > 0
