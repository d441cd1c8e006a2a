"""What the operator sees while the backfill runs: a bar on a terminal, periodic lines otherwise."""
from __future__ import annotations

from harbor_upgrade.artifacts import BackfillReport, Problem
from harbor_upgrade.cli.artifacts import BarProgress, PlainProgress, render


def test_plain_lines_give_progress_rate_and_eta(capsys):
    p = PlainProgress(every=0.0)
    p.start(total=1000, done=100)
    p.advance(400)
    p.finish()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "artifacts: 1000 rows in the database, 100 done before"
    assert err[1].startswith("artifacts: 500/1000 (50.0%) ") and "/s ETA " in err[1]


def test_bar_runs_through(capsys):
    p = BarProgress()
    p.start(total=10, done=0)
    p.advance(10)
    p.finish()
    assert "10/10" in capsys.readouterr().err


def test_report_says_completed_with_n_problems():
    report = BackfillReport(storage="/s", artifacts_done=3, untagged_found=2, data_version_set=True,
                            problems=[Problem("lib/a", "sha256:" + "0" * 64, "manifest-invalid", "not JSON")])
    lines = render(report)
    assert lines[-1].startswith("completed with 1 problems")
    assert "problem: lib/a@sha256:" + "0" * 64 + ": manifest-invalid (not JSON)" in lines
    assert any("--import-untagged" in line for line in lines)
    assert not report.ok and report.to_dict()["problems"][0]["reason"] == "manifest-invalid"
