"""The rollback point is never lost: after a finished run, a deleted or damaged journal makes
the next run refuse (the pre-upgrade backup stays as it was); one run per installation,
whatever its backup folder; a read-only backup folder is refused before any work; what the
run writes is 0600 in 0700 folders; rollback asks first and lists what it left in place."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from harbor_upgrade.upgrade.lock import InstallationLock
from harbor_upgrade.versions import SCHEMA_VERSION, TARGET
from tests.support.sites import demo_site, scalar


@pytest.fixture(scope="module")
def finished():
    with demo_site("harbor-upgrade-safety-test-") as inst:
        r = run(inst)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        yield inst


def run(inst, backup_dir: Path | None = None, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harbor_upgrade", "run", "--harbor-yml", str(inst.harbor_yml),
                           "--backup-dir", str(backup_dir or inst.backup_dir), "--dsn", inst.dsn, "--yes", *extra],
                          capture_output=True, text=True, timeout=600)


def manifest_bytes(inst) -> bytes:
    return (inst.backup_dir / "backup" / "manifest.json").read_bytes()


def test_what_the_run_writes_is_private(finished):
    b = finished.backup_dir
    assert stat.S_IMODE(b.stat().st_mode) == 0o700
    for name in ("journal.jsonl", "missing-before.json", "journal.lock", "backup/manifest.json",
                 "backup/manifest.hmac"):
        assert stat.S_IMODE((b / name).stat().st_mode) == 0o600, name
    assert json.loads(manifest_bytes(finished))["schema_version"] == 15


def test_deleted_journal_after_a_finished_run_is_refused_and_the_backup_stays(finished):
    journal = finished.backup_dir / "journal.jsonl"
    before = manifest_bytes(finished)
    saved = journal.read_bytes()
    journal.unlink()
    try:
        r = run(finished, None, "--json")
        assert r.returncode == 4, r.stdout[-2000:] + r.stderr[-2000:]
        error = json.loads(r.stdout)["error"]
        assert error["reference"] == "backup-not-adopted"
        assert f"schema {SCHEMA_VERSION[TARGET]}" in error["message"] and "holds schema 15" in error["message"]
        assert manifest_bytes(finished) == before
        assert scalar(finished.dsn, "SELECT max(version) FROM schema_migrations") == SCHEMA_VERSION[TARGET]
    finally:
        journal.write_bytes(saved)


def test_a_byte_flipped_in_the_journal_is_refused_naming_the_line(finished):
    journal = finished.backup_dir / "journal.jsonl"
    saved = journal.read_bytes()
    raw = bytearray(saved)
    middle = saved.index(b"\n", len(saved) // 2) - 5   # inside a complete middle line
    raw[middle] ^= 0x01
    journal.write_bytes(bytes(raw))
    before = manifest_bytes(finished)
    try:
        r = run(finished)
        assert r.returncode == 4, r.stdout[-2000:] + r.stderr[-2000:]
        assert "journal-damaged" in r.stderr and "line " in r.stderr and "Traceback" not in r.stderr
        assert journal.read_bytes() == bytes(raw) and manifest_bytes(finished) == before
    finally:
        journal.write_bytes(saved)


def test_a_second_run_on_the_installation_is_refused_whatever_its_backup_folder(finished, tmp_path):
    other = tmp_path / "other-backup"
    with InstallationLock(finished.dsn, "a test's run"):
        r = run(finished, other)
    assert r.returncode == 4, r.stdout[-2000:] + r.stderr[-2000:]
    assert "run-locked" in r.stderr and "another harbor-upgrade run is working on database registry" in r.stderr
    assert not (other / "backup").exists()


@contextmanager
def read_only_folder(path: Path):
    """A folder nobody can write, root included (the immutable attribute)."""
    path.mkdir()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_backup_folder_is_refused_before_any_work(finished, tmp_path):
    with read_only_folder(tmp_path / "read-only") as ro:
        r = run(finished, ro)
        assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
        assert "output-unwritable" in r.stderr and "Traceback" not in r.stderr
        assert os.listdir(ro) == []


def test_rollback_asks_first_then_lists_what_it_left_and_keeps_the_old_database(finished):
    base = [sys.executable, "-m", "harbor_upgrade", "rollback", "--backup-dir", str(finished.backup_dir),
            "--dsn", finished.dsn]
    r = subprocess.run(base, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 4 and "confirmation-needed" in r.stderr
    assert scalar(finished.dsn, "SELECT max(version) FROM schema_migrations") == SCHEMA_VERSION[TARGET]
    r = subprocess.run(base + ["--yes", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert f"harbor/harbor-{TARGET}.yml" in report["left_in_place"]
    assert any(s["name"] == "left in place" and f"harbor-{TARGET}.yml" in s["summary"] for s in report["steps"])
    assert scalar(finished.dsn, "SELECT version FROM schema_migrations") == 15
    # the run's backup was a copy of the stopped cluster's data folder: the upgraded folder is kept
    # beside it, reported once as kept and not file by file as left in place
    kept = Path(report["kept_datadir"])
    assert kept.name.startswith("database.before-restore-") and (kept / "PG_VERSION").is_file()
    assert not [e for e in report["left_in_place"] if kept.name in e]


def test_an_unwritable_artifacts_report_is_refused_before_the_database_is_touched(tmp_path, run_cli):
    with read_only_folder(tmp_path / "ro") as ro:
        # the DSN points nowhere: the refusal must come before any connection
        code, _, err = run_cli("artifacts", "--dsn", "postgresql://harbor@127.0.0.1:1/registry", "--storage",
                               tmp_path, "--report", ro / "report.json")
    assert code == 2 and "output-unwritable" in err and "report.json" in err
