"""The database backed up as a copy of its stopped cluster's data folder (real PostgreSQL 15):
backup -> verify (a throwaway server on a copy) -> change everything -> restore gives the same
data folder and database; tampering is refused; a running server is refused."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harbor_upgrade.backup import backup_state, create_datadir_backup, restore_backup, verify_backup
from harbor_upgrade.backup.manifest import sign
from harbor_upgrade.backup.prepared import prepare_datadir, prepared_folder
from harbor_upgrade.db.identity import answers
from harbor_upgrade.errors import UnsafeState, ValidationFailed
from harbor_upgrade.journal import Journal
from harbor_upgrade.postgres.cluster import LocalCluster
from harbor_upgrade.postgres.server import Server
from harbor_upgrade.report import CRASH_AFTER_PROGRESS_ENV
from tests.support.backups import make_installation, snapshot
from tests.support.pg import binaries, facts, make_old_cluster
from tests.support.sites import demo_site, scalar


@pytest.fixture
def stopped(base):
    """A Harbor-like PostgreSQL 15 cluster in data_volume/database/pg15 (stopped), a harbor
    folder and the data volume's small state."""
    harbor, dv = make_installation(base / "inst")
    os.chmod(base / "inst", 0o755)
    old = dv / "database" / "pg15"
    (dv / "database" / "PG_VERSION").unlink()   # the support tree's 9.6 marker: here the cluster is pg15
    os.chown(dv / "database", base.stat().st_uid, base.stat().st_gid)
    os.chmod(dv, 0o755)
    make_old_cluster(old, 15)
    return old, harbor, dv


def entries(root: Path) -> dict[str, tuple]:
    """Type, owner, mode and content of everything below a data folder."""
    return {k: v for k, v in snapshot(root).items() if k != "postmaster.opts"}


def test_datadir_backup_verify_restore_round_trip(stopped, base):
    old, harbor, dv = stopped
    want, before = facts(old, 15), entries(old)
    b = base / "backup"
    m = create_datadir_backup(old, harbor, b, data_volume=dv, db_user="harbor", jobs=2)
    assert (m.kind, m.pg_major, m.schema_version, m.dirty) == ("datadir", 15, 15, False)
    assert m.table_counts["artifact"] == 900 and m.roots["datadir"] == str(old)
    assert entries(b / "files" / "datadir") == {k: v for k, v in before.items() if k != "postmaster.opts"}
    assert {s["path"] for s in m.skipped} >= {"data_volume/database", "data_volume/registry"}
    assert stat.S_IMODE((b / "files/harbor/harbor.yml").stat().st_mode) == 0o600   # the rest is locked down

    check = verify_backup(b)
    assert check.ok and check.restored_tables == len(m.table_counts), check.problems

    with LocalCluster(old, binaries(15), superuser="harbor") as c:   # the upgrade changes the database
        c.psql("delete from artifact where id % 2 = 0; update schema_migrations set version = 70", dbname="registry")
    (harbor / "harbor.yml").write_text("changed\n")
    r = restore_backup(b, None, harbor, data_volume=dv)
    assert r.ok and r.compared == "data folder sha256", r.problems
    kept = Path(r.kept_database or "")
    assert kept.parent == old.parent and kept.name.startswith("pg15.before-restore-")
    assert entries(old) == {k: v for k, v in before.items() if k != "postmaster.opts"}
    assert facts(old, 15) == want
    assert facts(kept, 15)["artifacts"] != want["artifacts"]   # the changed one is kept, as it was
    assert (harbor / "harbor.yml").read_text().startswith("# our own test config")


def test_running_cluster_is_refused_by_backup_and_restore(stopped, base):
    old, harbor, dv = stopped
    b = base / "backup"
    with LocalCluster(old, binaries(15), superuser="harbor"):
        with pytest.raises(UnsafeState, match="postmaster.pid") as e:
            create_datadir_backup(old, harbor, b, data_volume=dv, db_user="harbor")
        assert e.value.reference == "postgres-running"
    create_datadir_backup(old, harbor, b, data_volume=dv, db_user="harbor")
    with LocalCluster(old, binaries(15), superuser="harbor"):
        with pytest.raises(UnsafeState, match="postmaster.pid"):
            restore_backup(b, None, harbor, data_volume=dv)
    assert not any(p.name.startswith(("pg15.before", ".pg15")) for p in old.parent.iterdir())


def test_data_folder_with_a_symlink_is_not_copied(stopped, base):
    old, harbor, dv = stopped
    (old / "pg_wal").rename(base / "wal")
    os.symlink(base / "wal", old / "pg_wal")
    with pytest.raises(UnsafeState, match="pg_wal") as e:
        create_datadir_backup(old, harbor, base / "backup", data_volume=dv, db_user="harbor")
    assert e.value.reference == "datadir-has-links"


def _tamper(b: Path, edit) -> None:
    man = json.loads((b / "manifest.json").read_text())
    edit(man)
    text = json.dumps(man, indent=1, sort_keys=True).encode() + b"\n"
    (b / "manifest.json").write_bytes(text)
    sign(b, text)   # whoever holds the key: only the entry checks stand between


def test_tampered_data_folder_backups_are_refused(stopped, base):
    old, harbor, dv = stopped
    b = base / "backup"
    create_datadir_backup(old, harbor, b, data_volume=dv, db_user="harbor")
    before = entries(old)

    # a changed file of the copy (the checksum is found different while it is copied out)
    victim = b / "files/datadir/global/pg_control"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    check = verify_backup(b)
    assert not check.ok and any("global/pg_control" in p and "sha256" in p for p in check.problems), check.problems
    with pytest.raises(ValidationFailed, match="pg_control"):
        restore_backup(b, None, harbor, data_volume=dv)
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert verify_backup(b, restore_check=False).ok

    outside = base / "outside"

    def symlink_entry(man):
        man["files"].append({"area": "datadir", "path": "pg_tblspc/16400", "type": "symlink", "uid": 0, "gid": 0,
                             "mode": 0o777, "mtime_ns": 0, "size": 0, "sha256": None, "target": str(outside)})

    def dot_dot(man):
        e = next(f for f in man["files"] if f["area"] == "datadir" and f["path"] == "PG_VERSION")
        e["path"] = "../../../outside/PG_VERSION"

    for edit, words in ((symlink_entry, "a symlink in a data folder copy"), (dot_dot, "not a relative path")):
        (b / "manifest.json").with_suffix(".orig").write_bytes((b / "manifest.json").read_bytes())
        _tamper(b, edit)
        check = verify_backup(b)
        assert not check.ok and any(words in p for p in check.problems), check.problems
        with pytest.raises(ValidationFailed, match="fails its checks"):
            restore_backup(b, None, harbor, data_volume=dv)
        orig = (b / "manifest.json").with_suffix(".orig")
        text = orig.read_bytes()
        orig.unlink()
        (b / "manifest.json").write_bytes(text)
        sign(b, text)
    assert not outside.exists() and entries(old) == before
    assert verify_backup(b).ok


# -- run --prepare's copy taken while the server runs, finished in the window ------------------------

CHURN = """
insert into artifact (repo, tag, digest, extra)
    select 'churn/' || g, 't' || g, 'sha256:' || md5(g::text), jsonb_build_object('g', g)
    from generate_series(1, 40000) g;
update artifact set tag = tag || '-moved' where id % 3 = 0;
delete from artifact where id % 5 = 0;
vacuum full project;
drop table properties;
create table fresh as select g, repeat(md5(g::text), 4) as pad from generate_series(1, 20000) g;
checkpoint;
"""


def _datadir_entries(manifest) -> list:
    return sorted((e for e in manifest.files if e.area == "datadir"), key=lambda e: e.path)


def test_copy_prepared_while_serving_then_finished_equals_a_fresh_copy(stopped, base):
    """PostgreSQL's recipe: copied live (torn), then, stopped, every file compared by its sha256 and
    the different ones copied again: byte for byte the copy a full copy of the stopped folder gives."""
    old, harbor, dv = stopped
    run_dir = base / "run"
    run_dir.mkdir(mode=0o700)
    said: list[str] = []
    with LocalCluster(old, binaries(15), superuser="harbor") as c:
        c.psql("create table churn_before as select g from generate_series(1, 30000) g", dbname="registry")
        made = prepare_datadir(old, run_dir, 2, said.append, controldata=Server(binaries(15).bindir, old).controldata())
        assert made.files > 100 and (prepared_folder(run_dir) / "record").is_file()
        assert entries(prepared_folder(run_dir) / "copy").keys() == entries(prepared_folder(run_dir) / "twin").keys()
        for statement in (CHURN + "drop table churn_before;").split(";"):   # heavy changes while it serves
            if statement.strip():
                c.psql(statement, dbname="registry")
    stats: dict = {}
    inc = create_datadir_backup(old, harbor, base / "incremental", data_volume=dv, db_user="harbor", jobs=2,
                                prepared_in=run_dir, progress=said.append, stats=stats)
    done = stats["prepared"]
    assert 0 < done["copied"] < done["files"] and done["removed"] > 0, done
    assert not prepared_folder(run_dir).exists() and not any("cannot be used" in m for m in said)
    full = create_datadir_backup(old, harbor, base / "full", data_volume=dv, db_user="harbor", jobs=2)
    assert entries(base / "incremental/files/datadir") == entries(base / "full/files/datadir")
    assert _datadir_entries(inc) == _datadir_entries(full)   # sizes, sha256, owners, modes, mtimes
    assert inc.table_counts == full.table_counts and inc.table_counts["fresh"] == 20000
    check = verify_backup(base / "incremental")
    assert check.ok and check.restored_tables == len(inc.table_counts), check.problems


def test_prepared_copy_that_differs_from_its_record_is_not_trusted(stopped, base):
    old, harbor, dv = stopped
    run_dir = base / "run"
    run_dir.mkdir(mode=0o700)
    folder = prepared_folder(run_dir)
    outside = base / "outside-file"
    outside.write_bytes(b"not the cluster's")
    for damage in ("record", "copy-symlink", "twin-size", "no-record"):
        with LocalCluster(old, binaries(15), superuser="harbor"):
            prepare_datadir(old, run_dir, 2, lambda _m: None)
        if damage == "record":
            raw = bytearray((folder / "record").read_bytes())
            raw[len(raw) // 2] ^= 0x01
            (folder / "record").write_bytes(bytes(raw))
        elif damage == "copy-symlink":   # a hostile entry: nothing is written through it, the copy is dropped
            (folder / "copy/PG_VERSION").unlink()
            os.symlink(outside, folder / "copy/PG_VERSION")
        elif damage == "twin-size":
            with open(folder / "twin/global/pg_control", "ab") as f:
                f.write(b"x")
        else:
            (folder / "record").unlink()
        said: list[str] = []
        stats: dict = {}
        to = base / f"backup-{damage}"
        m = create_datadir_backup(old, harbor, to, data_volume=dv, db_user="harbor", jobs=2,
                                  prepared_in=run_dir, progress=said.append, stats=stats)
        assert "prepared" not in stats, damage
        assert any("cannot be used" in line and "copied in full" in line for line in said), (damage, said)
        assert not folder.exists() and outside.read_bytes() == b"not the cluster's"
        assert entries(to / "files/datadir") == entries(old), damage
        assert m.table_counts["artifact"] == 900
    assert verify_backup(to).ok


def test_prepare_refuses_a_data_folder_with_a_symlink(stopped, base):
    old, _harbor, _dv = stopped
    (old / "pg_wal").rename(base / "wal")
    os.symlink(base / "wal", old / "pg_wal")
    with pytest.raises(UnsafeState, match="pg_wal") as e:
        prepare_datadir(old, base, 2, lambda _m: None)
    assert e.value.reference == "datadir-has-links" and not prepared_folder(base).exists()


# -- `run` on a local cluster it can stop: killed during the copy, run again, rolled back -----------

@pytest.fixture
def site():
    with demo_site("harbor-upgrade-datadir-run-") as inst:
        yield inst


STATE = "SELECT row((SELECT count(*) FROM artifact), (SELECT version FROM schema_migrations))::text"


def run_command(inst) -> list[str]:
    return [sys.executable, "-m", "harbor_upgrade", "run", "--harbor-yml", str(inst.harbor_yml), "--backup-dir",
            str(inst.backup_dir), "--dsn", inst.dsn, "--yes", "--json"]


def test_run_killed_during_the_copy_serves_again_then_finishes_and_rolls_back_killed_and_again(site, run_cli):
    before = scalar(site.dsn, STATE)
    copy = site.backup_dir / "backup" / "files" / "datadir"
    p = subprocess.Popen(run_command(site), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        if copy.is_dir() and sum(1 for _ in copy.rglob("*")) > 20:   # the copy is under way
            os.killpg(p.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL, "the run ended before its copy could be cut short"
    assert backup_state(site.backup_dir / "backup") == "incomplete"
    assert not answers(site.dsn)   # killed with the server stopped for the copy

    r = subprocess.run(run_command(site), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(r.stdout)
    backup_step = report["steps"][0]
    assert backup_step["changed"]["kind"] == "datadir" and backup_step["summary"].startswith("data folder copy")
    assert "started it again" in r.stderr
    journal = Journal.read(site.backup_dir)
    assert [e["event"] for e in journal.records if e["event"].startswith("backup-s")] == \
        ["backup-stopped", "backup-served", "backup-stopped", "backup-served"]
    assert verify_backup(site.backup_dir / "backup").ok
    assert scalar(site.dsn, STATE) != before

    # a rollback killed with the server stopped (its 2nd progress event: the restore's first, after the stop)
    rollback = [sys.executable, "-m", "harbor_upgrade", "rollback", "--backup-dir", str(site.backup_dir), "--yes",
                "--json"]
    r = subprocess.run(rollback, capture_output=True, text=True, timeout=600,
                       env={**os.environ, CRASH_AFTER_PROGRESS_ENV: "2"})
    assert r.returncode == -signal.SIGKILL, r.stdout[-3000:] + r.stderr[-3000:]
    assert not answers(site.dsn)
    code, out, err = run_cli("rollback", "--backup-dir", site.backup_dir, "--yes", "--json")
    assert code == 0, out + err
    rolled = json.loads(out)
    assert rolled["ok"] and rolled["steps"][1]["summary"].endswith("row counts of the backup"), rolled
    assert scalar(site.dsn, STATE) == before
    kept = Path(rolled["kept_datadir"])
    assert kept.name.startswith("database.before-restore-") and (kept / "PG_VERSION").exists()
