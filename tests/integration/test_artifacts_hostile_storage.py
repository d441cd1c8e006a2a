"""`harbor-upgrade artifacts` on hostile storage trees made here (hostile_trees): every case
ends with exit 1 and "completed with N problems" naming the repository, digest and reason of
each hostile object, every row of the good repository exactly as from a clean tree, no
traceback, no terminal control in the output, nothing read outside the storage root, the
process's peak memory bounded, and no hang (each run has a timeout)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hostile_trees import CASES, GOOD, Tree, baseline, build, freeze_atimes, read_since_frozen
from test_artifacts_backfill import fresh_schema, register, rows  # noqa: F401 (harbor24 below)
from test_artifacts_backfill import harbor24  # noqa: F401

from harbor_upgrade import db

RUN_SECONDS = 120
PEAK_RSS_LIMIT = 400 << 20   # a clean run of these trees peaks near 100 MB; 2 GB objects must not show


def run_artifacts(dsn: str, root: Path, report: Path, timeout: float = RUN_SECONDS) -> dict:
    """The CLI in a subprocess: exit code, output, seconds, peak RSS of it and its readers."""
    out, err = report.with_suffix(".out"), report.with_suffix(".err")
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "harbor_upgrade", "artifacts", "--dsn", dsn,
                                 "--storage", str(root), "--report", str(report)], stdout=o, stderr=e,
                                start_new_session=True)
    hung = threading.Event()

    def kill():
        hung.set()
        os.killpg(proc.pid, 9)

    timer = threading.Timer(timeout, kill)
    began = time.monotonic()
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)   # this child and the readers it waited for
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"code": proc.returncode, "hung": hung.is_set(), "seconds": time.monotonic() - began,
            "peak_rss": usage.ru_maxrss * 1024, "out": out.read_bytes(), "err": err.read_bytes(),
            "report": json.loads(report.read_text()) if report.exists() else None}


def good_rows(dsn: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("push_time", "pull_time")}
            for r in rows(dsn) if r["repository_name"] == GOOD]


@pytest.fixture(scope="module")
def clean_rows(pg_cluster, tmp_path_factory):
    """The good repository's rows from a tree with nothing hostile in it."""
    name = f"clean{os.getpid()}"
    pg_cluster.createdb(name)
    try:
        dsn = pg_cluster.dsn(name)
        pg_cluster.psql(dbname=name, file=fresh_schema())
        db.migrate(dsn)
        base = tmp_path_factory.mktemp("clean")
        t = Tree(base / "storage", base / "outside")
        baseline(t)
        register(dsn, t.db_rows)
        result = run_artifacts(dsn, t.root, base / "report.json")
        assert result["code"] == 0, result["out"] + result["err"]
        yield good_rows(dsn), result["peak_rss"]
    finally:
        pg_cluster.dropdb(name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_storage_is_reported_never_fatal(case, harbor24, tmp_path, clean_rows):
    tree, expected = build(case, tmp_path / "storage", tmp_path / "outside")
    register(harbor24.dsn, tree.db_rows)
    frozen = freeze_atimes(tree.outside)
    result = run_artifacts(harbor24.dsn, tree.root, tmp_path / "report.json")
    out, err = result["out"].decode(errors="replace"), result["err"].decode(errors="replace")
    assert not result["hung"], f"{case}: no end within {RUN_SECONDS}s"
    assert "Traceback" not in out + err, err
    assert result["code"] == 1, out + err
    problems = result["report"]["problems"]
    assert len(problems) == len(expected) and all(any(e.matches(p) for p in problems) for e in expected), problems
    assert f"completed with {len(expected)} problems" in out
    for e in expected:   # each named on the terminal too (the printable form)
        assert f"{e.repository.rstrip('*')}" in out and e.reason in out
    # the terminal sees no control character but the line ends
    assert not [c for c in out + err if (ord(c) < 32 and c not in "\n") or 0x7f <= ord(c) < 0xa0], repr(out + err)
    assert good_rows(harbor24.dsn) == clean_rows[0]
    assert read_since_frozen(frozen) == []
    assert result["peak_rss"] < PEAK_RSS_LIMIT, f"peak RSS {result['peak_rss'] >> 20} MB (clean {clean_rows[1] >> 20} MB)"
