"""A backup is hostile input: tampered manifests are refused by verify and by restore and
nothing outside the roots is touched; restore never destroys before it has proved the
backup's copy (a missing owner role, connected clients), and across PostgreSQL majors it
compares data. Real PostgreSQL, real files, run as root like an operator's restore."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from harbor_upgrade.backup import MANIFEST, MANIFEST_SUM, create_backup, restore_backup, verify_backup
from harbor_upgrade.backup.manifest import KEY_ENV
from harbor_upgrade.errors import ExternalFailure, UnsafeState, ValidationFailed
from harbor_upgrade.postgres.cluster import LocalCluster, find_binaries
from harbor_upgrade.postgres.scratch import scratch_root
from tests.support.backups import make_installation, plain_dump, snapshot
from tests.support.pg import MINI_HARBOR_SQL
from tests.support.sites import open_tmpdir

NOBODY = 65534


@pytest.fixture
def backed_up(database, tmp_path):
    database.psql(MINI_HARBOR_SQL)
    harbor, dv = make_installation(tmp_path)
    backup = tmp_path / "backup"
    create_backup(database.dsn, harbor, backup, data_volume=dv)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    (outside / "victim").write_text("outside the roots\n")
    return database, harbor, dv, backup, outside


def tamper(backup: Path, edit) -> None:
    """What someone who can write the backup folder (but not read the key) can do: edit the
    manifest and recompute its sha256."""
    man = json.loads((backup / MANIFEST).read_text())
    edit(man)
    text = json.dumps(man, indent=1, sort_keys=True) + "\n"
    (backup / MANIFEST).write_text(text)
    (backup / MANIFEST_SUM).write_text(hashlib.sha256(text.encode()).hexdigest() + "  manifest.json\n")


def add_file(backup: Path, man: dict, area: str, path: str, data: bytes, **over) -> None:
    stored = backup / "files" / area / path
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(data)
    man["files"].append({"area": area, "path": path, "type": "file", "uid": 0, "gid": 0, "mode": 0o644,
                         "mtime_ns": 0, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                         "target": None, **over})


def outside_state(outside: Path) -> tuple:
    st = outside.stat()
    return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), sorted(os.listdir(outside)),
            (outside / "victim").read_text())


def assert_refused_everywhere(database, harbor, dv, backup, outside, words: str) -> None:
    before_out, before_dump, before_harbor = outside_state(outside), plain_dump(database.dsn), snapshot(harbor)
    result = verify_backup(backup)
    assert not result.ok and result.restored_tables == 0
    assert words in " ".join(result.problems), result.problems
    with pytest.raises(ValidationFailed) as e:
        restore_backup(backup, database.dsn, harbor, data_volume=dv)
    assert e.value.reference == "backup-corrupt" and words in e.value.message
    assert outside_state(outside) == before_out
    assert plain_dump(database.dsn) == before_dump and snapshot(harbor) == before_harbor
    assert not (outside.parent / "x").exists()


def test_symlink_entry_out_of_the_target_is_refused(backed_up):
    database, harbor, dv, backup, outside = backed_up

    def edit(man):
        man["files"].append({"area": "harbor", "path": "evil", "type": "symlink", "uid": 0, "gid": 0,
                             "mode": 0o777, "mtime_ns": 0, "size": 0, "sha256": None, "target": str(outside)})
        add_file(backup, man, "harbor", "evil/victim", b"written through a symlink\n")
    tamper(backup, edit)
    assert_refused_everywhere(database, harbor, dv, backup, outside, "its parent evil is a symlink")


def test_dot_dot_path_is_refused(backed_up):
    database, harbor, dv, backup, outside = backed_up
    tamper(backup, lambda man: man["files"].append(
        {"area": "harbor", "path": "../../x", "type": "file", "uid": 0, "gid": 0, "mode": 0o644, "mtime_ns": 0,
         "size": 1, "sha256": hashlib.sha256(b"x").hexdigest(), "target": None}))
    assert_refused_everywhere(database, harbor, dv, backup, outside, "not a relative path inside its root")


def test_chown_chmod_of_an_outside_folder_is_refused(backed_up):
    database, harbor, dv, backup, outside = backed_up
    rel = os.path.relpath(outside, harbor)   # ../outside
    tamper(backup, lambda man: man["files"].append(
        {"area": "harbor", "path": rel, "type": "dir", "uid": NOBODY, "gid": NOBODY, "mode": 0o777,
         "mtime_ns": 0, "size": 0, "sha256": None, "target": None}))
    assert_refused_everywhere(database, harbor, dv, backup, outside, "not a relative path inside its root")


def test_recomputed_checksums_are_caught_by_the_hmac(backed_up):
    database, harbor, dv, backup, outside = backed_up
    evil = b"hostname: attacker.example\n"

    def edit(man):
        entry = next(f for f in man["files"] if f["path"] == "harbor.yml")
        entry.update(size=len(evil), sha256=hashlib.sha256(evil).hexdigest(), uid=NOBODY, mode=0o666)
        (backup / "files/harbor/harbor.yml").write_bytes(evil)
    tamper(backup, edit)
    assert_refused_everywhere(database, harbor, dv, backup, outside, "HMAC does not match")


def test_without_the_key_a_recorded_digest_proves_the_backup(backed_up, tmp_path, monkeypatch):
    database, harbor, dv, backup, outside = backed_up
    digest = hashlib.sha256((backup / MANIFEST).read_bytes()).hexdigest()
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "another-machine.key"))
    unproved = verify_backup(backup, restore_check=False)
    assert not unproved.ok and "cannot be proved authentic" in unproved.problems[0]
    proved = verify_backup(backup, restore_check=False, expect_manifest_sha256=f"sha256:{digest}")
    assert proved.ok and proved.authenticated == "the manifest sha256 given"
    tamper(backup, lambda man: man["table_counts"].update(project=1))
    lying = verify_backup(backup, restore_check=False, expect_manifest_sha256=digest)
    assert not lying.ok and "not the" in lying.problems[0]


def test_a_symlink_planted_in_the_target_is_replaced_not_written_through(backed_up):
    database, harbor, dv, backup, outside = backed_up
    before = outside_state(outside)
    # common/config is a folder of the backup; someone made it a symlink to a folder outside
    (harbor / "common/config/core/env").unlink()
    (harbor / "common/config/core").rmdir()
    os.symlink(outside, harbor / "common/config/core")
    os.symlink(outside / "victim", harbor / "harbor.yml.tmp-link")
    (harbor / "docker-compose.yml").unlink()
    os.symlink(outside / "victim", harbor / "docker-compose.yml")  # a file of the backup
    r = restore_backup(backup, database.dsn, harbor, data_volume=dv)
    assert r.ok, r.problems
    assert outside_state(outside) == before
    assert (harbor / "common/config/core").is_dir() and not (harbor / "common/config/core").is_symlink()
    assert (harbor / "common/config/core/env").read_bytes() == b"CORE_SECRET=abc\nPORT=8080\n"
    assert not (harbor / "docker-compose.yml").is_symlink()
    assert "harbor/harbor.yml.tmp-link" in r.extra_files


def test_restore_on_a_cluster_missing_the_owner_role_leaves_the_old_database(database, tmp_path):
    role = f"hu_owner_{os.getpid()}"
    database.psql(f"create role {role}; alter database {database.name} owner to {role}; "
                  f"alter schema public owner to {role}; set role {role}; {MINI_HARBOR_SQL}")
    harbor, dv = make_installation(tmp_path)
    create_backup(database.dsn, harbor, tmp_path / "backup", data_volume=dv)
    database.psql(f"reassign owned by {role} to postgres; drop owned by {role}; drop role {role}")
    database.psql("insert into project (name) values ('after the backup')")
    before = plain_dump(database.dsn)
    with pytest.raises(ExternalFailure) as e:
        restore_backup(tmp_path / "backup", database.dsn, harbor, data_volume=dv)
    assert role in e.value.message
    assert plain_dump(database.dsn) == before
    assert database.scalar("select count(*) from pg_tables where schemaname = 'public'") == "5"
    assert database.scalar(f"select count(*) from pg_database where datname like '{database.name}%'") == "1"


def test_restore_refuses_connected_clients_unless_forced_and_keeps_the_old_database(backed_up):
    database, harbor, dv, backup, _ = backed_up
    database.psql("delete from artifact")
    client = psycopg.connect(database.dsn, autocommit=True, application_name="harbor-core")
    try:
        with pytest.raises(UnsafeState) as e:
            restore_backup(backup, database.dsn, harbor, data_volume=dv)
        assert e.value.reference == "db-in-use" and "harbor-core" in e.value.message
        assert database.scalar("select count(*) from artifact") == "0"
        r = restore_backup(backup, database.dsn, harbor, data_volume=dv, force_connected=True)
        assert r.ok and r.kept_database and r.kept_database.startswith(database.name + "_before_restore_")
        assert database.scalar("select count(*) from artifact") == "900"
        with pytest.raises(psycopg.OperationalError):
            client.execute("select 1")
    finally:
        client.close()
    kept = database.cluster.psql("select count(*) from artifact", dbname=r.kept_database).strip()
    assert kept == "0"   # the database as it was, kept under another name
    database.cluster.dropdb(r.kept_database)


def test_restore_into_another_major_compares_data(backed_up, tmp_path):
    database, harbor, dv, backup, _ = backed_up
    try:
        newer = find_binaries(major=16)
    except ExternalFailure:
        pytest.skip("PostgreSQL 16 binaries are not installed")
    with LocalCluster.create(binaries=newer, fast=True) as c16:
        c16.createdb(database.name)
        r = restore_backup(backup, c16.dsn(database.name), harbor, data_volume=dv)
        assert r.ok and r.compared == "data", r.problems
        assert c16.psql("select count(*) from artifact", dbname=database.name).strip() == "900"
        # data that differs is seen
        c16.psql("update artifact set tag = 'changed' where id = 7", dbname=database.name)
        c16.psql(f"alter database {database.name} rename to {database.name}_x")
        c16.psql(f"create database {database.name} template {database.name}_x")
        from harbor_upgrade.backup import _prove_database, read_manifest
        from harbor_upgrade.postgres.tools import Conn, client_binaries
        m = read_manifest(backup)
        compared, diff = _prove_database(Conn.parse(c16.dsn(database.name)), client_binaries(16), backup, m, 16)
        assert compared == "data" and len(diff) == 1 and "artifact" in diff[0]


def test_killed_backup_verify_leaves_no_scratch_cluster_after_the_next_run(backed_up, monkeypatch):
    _, _, _, backup, _ = backed_up
    # A scratch root of this test's own (TMPDIR, which the subprocesses inherit): the machine's is
    # shared with every other run (another pytest worker, another checkout) whose clusters would
    # come and go in it meanwhile.
    private = open_tmpdir("hu-scratch-test-")
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    assert scratch_root().parent == private
    before = set(scratch_root().iterdir())
    p = subprocess.Popen(["harbor-upgrade", "backup", "verify", str(backup)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    running, pid = None, 0
    while time.monotonic() < deadline and pid <= 0:   # initdb's single-user backend writes a negative pid
        running = next(iter(set(scratch_root().iterdir()) - before), None)
        try:
            pid = int((running / "data/postmaster.pid").read_text().split()[0])
        except (TypeError, OSError, ValueError, IndexError):
            pass
        time.sleep(0.05)
    p.kill()   # SIGKILL while the scratch server runs: nothing of ours can clean up
    p.wait()
    assert pid > 0, "the scratch cluster never started"
    assert Path(f"/proc/{pid}").exists()
    r = subprocess.run(["harbor-upgrade", "backup", "verify", str(backup)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not running.exists() and set(scratch_root().iterdir()) <= before
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()
    shutil.rmtree(private, ignore_errors=True)
