"""The demo from README: a sample 1.10 installation built from scratch, upgraded, verified;
then `verify` and `rollback` on it, and no password anywhere in what the run wrote."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import psycopg
import pytest

from harbor_upgrade import demo, verify, versions
from harbor_upgrade.postgres.cluster import LocalCluster
from harbor_upgrade.registry import open_storage
from harbor_upgrade.report import ProgressReporter, render_text
from tests.support.sites import open_tmpdir, scalar

PASSWORDS = (demo.ADMIN_PASSWORD, demo.DB_PASSWORD)
STEPS = ["backup", "config", "database", "artifacts", "scanner", "verify"]


@pytest.fixture(scope="module")
def demo_run():
    base = open_tmpdir("harbor-upgrade-demo-test-")
    d = base / "site"
    err = io.StringIO()
    with ProgressReporter(stream=err) as progress:
        report = demo.run_demo(d, progress, keep_running=True).to_dict()
    cluster = LocalCluster(d / "data" / "database", socket_dir=d / "run",
                           port=int(report["demo"]["database"].split(":")[-1].split("/")[0]))
    cluster.started = True
    yield d, report, err.getvalue(), cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_demo_upgrades_the_sample_and_verify_passes(demo_run):
    d, report, err, _ = demo_run
    assert report["ok"] is True, render_text(report)
    assert [s["name"] for s in report["steps"]] == STEPS and all(s["ok"] for s in report["steps"])
    # 1.10 to the newest release the tool knows, every release in between
    assert report["hops"] == list(versions.RELEASES[1:]) and report["target"] == versions.TARGET
    assert report["verify"]["ok"] and all(c["status"] == "pass" for c in report["verify"]["checks"])
    # the database step times each release step (plan's estimate is calibrated on them)
    database = next(s for s in report["steps"] if s["name"] == "database")
    assert list(database["changed"]["release_seconds"]) == list(versions.RELEASES[2:])
    assert all(x >= 0 for x in database["changed"]["release_seconds"].values())
    counts = {c["name"]: (c["before"], c["after"]) for c in report["verify"]["counts"]}
    assert counts["projects"] == (3, 3) and counts["robots"] == (1, 1) and counts["members"] == (5, 4)
    dsn = report["demo"]["database"]
    assert scalar(dsn, "SELECT version FROM schema_migrations") == versions.SCHEMA_VERSION[versions.TARGET]
    # the manifest list's children became artifacts with references; the OCI image got its config's type
    assert scalar(dsn, "SELECT count(*) FROM artifact_reference") == 2
    assert scalar(dsn, "SELECT media_type FROM artifact WHERE repository_name = 'library/nginx'") == demo.OCI_CONFIG
    assert scalar(dsn, "SELECT name FROM scanner_registration WHERE is_default") == "Trivy"
    migrated = (d / "harbor" / f"harbor-{versions.TARGET}.yml").read_text()
    assert f"_version: {versions.TARGET}" in migrated and "# Sample Harbor 1.10 settings" in migrated
    text = render_text(report)
    assert "Result: OK" in text and "What to do next:" in text and "scan all artifacts" in text
    assert "release step 2.2.0" in err and "artifacts: 8/8 (100%)" in err


def test_sample_storage_is_the_distribution_layout_with_right_digests_and_sizes(demo_run):
    d = demo_run[0]
    v2 = d / "data" / "registry" / "docker" / "registry" / "v2"
    blobs = list((v2 / "blobs" / "sha256").glob("*/*/data"))
    assert blobs
    for data in blobs:
        assert demo.digest_of(data.read_bytes()).split(":")[1] == data.parent.name
    for link in (v2 / "repositories").rglob("link"):
        digest = link.read_text()
        assert (v2 / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data").exists(), link
    lst = json.loads((v2 / "blobs" / "sha256").joinpath(*_blob_path(v2, "library/busybox", "1.33")).read_bytes())
    assert lst["mediaType"] == demo.DOCKER_LIST
    for child in lst["manifests"]:
        data = (v2 / "blobs" / "sha256" / child["digest"][7:9] / child["digest"][7:] / "data").read_bytes()
        assert len(data) == child["size"]
        manifest = json.loads(data)
        config_ref = manifest["config"]
        config = (v2 / "blobs" / "sha256" / config_ref["digest"][7:9] / config_ref["digest"][7:] / "data").read_bytes()
        assert len(config) == config_ref["size"]
        assert json.loads(config)["architecture"] == child["platform"]["architecture"]


def _blob_path(v2: Path, repo: str, tag: str) -> tuple[str, str, str]:
    digest = (v2 / "repositories" / repo / "_manifests" / "tags" / tag / "current" / "link").read_text()
    return digest[7:9], digest[7:], "data"


def test_no_password_in_any_output_log_report_or_journal(demo_run):
    d, report, err, _ = demo_run
    # the passwords are really there to leak: the installation's own settings hold them
    assert all(p in (d / "harbor" / "harbor.yml").read_text() for p in PASSWORDS)
    texts = {"report.json": json.dumps(report), "report.txt": render_text(report), "stderr": err}
    backup_dir = d / "backup"
    for f in backup_dir.rglob("*"):
        inside_backup_copy = backup_dir / "backup" in f.parents
        if f.is_file() and not inside_backup_copy:
            texts[str(f)] = f.read_text(errors="replace")
    for f in (d / "data").glob("*.log"):
        texts[str(f)] = f.read_text(errors="replace")
    assert any("journal.jsonl" in k for k in texts)
    leaks = [(name, p) for name, text in texts.items() for p in PASSWORDS if p in text]
    assert leaks == []


def test_verify_command_passes_then_names_a_broken_invariant(demo_run, run_cli):
    d, report, _, _ = demo_run
    dsn = report["demo"]["database"]
    code, out, _ = run_cli("verify", "--dsn", dsn, "--storage", d / "data" / "registry", "--backup-dir",
                           d / "backup", "--json")
    assert code == 0, out
    assert json.loads(out)["ok"] is True
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE artifact SET media_type = 'UNKNOWN' WHERE repository_name = 'library/nginx'")
        try:
            code, out, _ = run_cli("verify", "--dsn", dsn, "--storage", d / "data" / "registry")
        finally:
            conn.execute(f"UPDATE artifact SET media_type = '{demo.OCI_CONFIG}' "
                         "WHERE repository_name = 'library/nginx'")
    assert code == 1
    assert "artifact media types" in out and "1 artifacts with media type UNKNOWN" in out and "library/nginx" in out


def test_runs_verify_looks_up_only_the_pairs_its_census_did_not_find_served(demo_run):
    d, report, _, _ = demo_run
    dsn = report["demo"]["database"]
    check = next(c for c in report["verify"]["checks"] if c["name"] == "manifests in storage")
    # the census saw the 1.10 rows' manifests; busybox's arm64 child (no tag of its own) is a row the upgrade made
    assert "(8 of 9 found there by this run's census when the window began, 1 looked up now)" in check["detail"]
    with psycopg.connect(dsn) as conn:
        pairs = [(r[0], r[1]) for r in conn.execute("SELECT repository_name, digest FROM artifact ORDER BY id")]
    link = d / "data" / "registry" / "docker" / "registry" / "v2" / verify.manifest_paths(*pairs[0])[0]
    hidden = link.with_name("link.hidden")
    link.rename(hidden)
    try:
        storage = open_storage(str(d / "data" / "registry"))
        # a pair the census did not find served is looked up: its missing manifest fails
        result = verify.verify(dsn, storage, served_at_start=verify.ServedPairs(pairs[1:]))
        assert [c for c in result.checks if c.name == "manifests in storage"][0].status == "fail"
        assert pairs[1] in verify.ServedPairs(pairs[1:]) and pairs[0] not in verify.ServedPairs(pairs[1:])
        assert len(verify.ServedPairs(pairs + pairs)) == len(pairs)
    finally:
        hidden.rename(link)


def test_rollback_restores_the_1_10_database_and_checks_it(demo_run, run_cli):
    d, report, _, _ = demo_run
    dsn = report["demo"]["database"]
    code, out, _ = run_cli("rollback", "--backup-dir", d / "backup", "--yes", "--json")
    assert code == 0, out
    r = json.loads(out)
    assert r["ok"] and [s["name"] for s in r["steps"]] == ["restore", "verify", "left in place"]
    assert scalar(dsn, "SELECT version FROM schema_migrations") == 15
    assert scalar(dsn, "SELECT count(*) FROM artifact") == 10
    # the folder now holds the state the installation is in: another run there is refused
    code, _, err = run_cli("run", "--harbor-yml", d / "harbor" / "harbor.yml", "--backup-dir", d / "backup",
                           "--dsn", dsn, "--yes")
    assert code == 2 and "backup-dir-rolled-back" in err


def test_keep_running_leaves_the_sample_database_to_outlive_the_process(demo_run):
    d, report, _, cluster = demo_run
    assert report["demo"]["postgres_running"] is True
    # the exit handler stops every cluster still registered: the kept one must not be
    from harbor_upgrade.postgres import cluster as cluster_module
    assert not any(c.datadir == cluster.datadir for c in cluster_module._LIVE)
    assert scalar(report["demo"]["database"], "SELECT 1") == 1


def test_a_failed_build_leaves_no_half_built_sample(monkeypatch, tmp_path):
    def broken(root):
        (root / "docker").mkdir(parents=True)
        raise OSError("disk full")
    monkeypatch.setattr(demo, "write_storage", broken)
    with pytest.raises(OSError):
        demo.build(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError):
        demo.build(tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []
