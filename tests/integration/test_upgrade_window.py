"""run --prepare (while Harbor serves: nothing of the database written) then the run in the stop
window on the sample 1.10 installation: the window reads again only the repository changed since,
and the report shows the window beside the total, in text and in JSON."""
from __future__ import annotations

import json

import pytest

from harbor_upgrade.artifacts.prefetch import prefetch_path
from harbor_upgrade.backup import verify_backup
from harbor_upgrade.report import render_text
from tests.support.sites import demo_site, scalar


@pytest.fixture(scope="module")
def site():
    with demo_site("harbor-upgrade-window-test-") as inst:
        yield inst


def test_prepare_then_the_window_reads_only_what_changed_and_reports_window_and_total(site, run_cli, tmp_path):
    backup = tmp_path / "backup"
    common = ("--harbor-yml", str(site.harbor_yml), "--backup-dir", str(backup), "--dsn", site.dsn)
    before = scalar(site.dsn, "SELECT count(*) FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0")
    code, out, err = run_cli("run", *common, "--prepare", "--json")
    assert code == 0, out + err
    prepared = json.loads(out)
    assert prepared["command"] == "run --prepare" and prepared["ok"]
    assert [s["name"] for s in prepared["steps"]] == ["datadir copy", "prefetch"]
    assert prepared["steps"][1]["changed"]["repositories"] == 5
    copied = prepared["steps"][0]
    assert copied["changed"]["files"] > 100 and "copied while its server ran" in copied["summary"], copied
    assert (backup / "prepared-datadir" / "record").is_file()
    assert prepared["prepare_seconds"] > 0
    assert {c["name"] for c in prepared["checks"]} >= {"harbor.yml migrates", "registry storage"}
    assert "Harbor stopped" not in {c["name"] for c in prepared["checks"]}, "prepare runs while Harbor serves"
    assert prefetch_path(backup).is_file()
    assert scalar(site.dsn, "SELECT version FROM schema_migrations") == 15
    assert scalar(site.dsn, "SELECT to_regnamespace('harbor_upgrade_artifacts') IS NULL")
    assert scalar(site.dsn, "SELECT count(*) FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0") \
        == before, "prepare wrote to the database"
    assert not (backup / "journal.jsonl").exists()

    # Harbor served meanwhile: a tag moved in team-blue/api
    api = [p for p in site.images if p.repository == "team-blue/api"]
    link = site.storage / "docker/registry/v2/repositories/team-blue/api/_manifests/tags/latest/current/link"
    link.write_text(api[0].digest)

    code, out, err = run_cli("run", *common, "--yes", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"]
    backup_step = report["steps"][0]
    assert backup_step["changed"]["kind"] == "datadir", backup_step
    assert 0 < backup_step["changed"]["prepared"]["copied"] < backup_step["changed"]["prepared"]["files"]
    assert "the copy run --prepare took while it served finished" in backup_step["summary"]
    assert not (backup / "prepared-datadir").exists()
    assert verify_backup(backup / "backup").ok
    artifacts = next(s for s in report["steps"] if s["name"] == "artifacts")
    assert (artifacts["changed"]["prefetched"], artifacts["changed"]["reread"]) == (4, 1), artifacts
    assert "4 repositories from the prefetch, 1 read again" in artifacts["summary"]
    assert 0 < report["window_seconds"] <= report["total_seconds"]
    assert report["prepare_seconds"] == pytest.approx(prepared["prepare_seconds"], abs=0.5)
    assert report["total_seconds"] >= report["window_seconds"] + report["prepare_seconds"] - 0.01
    assert report["window_seconds"] >= sum(s["seconds"] or 0 for s in report["steps"]) - 0.01

    text = render_text(report)
    assert "Stop window (Harbor stopped → verified): " in text and "with run --prepare: " in text
    code, out, err = run_cli("run", *common, "--yes")   # again: every step done, the window of this command
    assert code == 0, out + err
    assert "Stop window (Harbor stopped → verified): " in out

    code, out, err = run_cli("run", *common, "--prepare")
    assert code != 0 and "prepare-after-run" in out + err
