"""Backup -> change everything -> restore gives the same files and the same database dump;
a corrupted backup is refused by verify and by restore. Real PostgreSQL, real files."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from harbor_upgrade.backup import MANIFEST, create_backup, read_manifest, restore_backup, verify_backup
from harbor_upgrade.backup.manifest import sign
from harbor_upgrade.errors import ValidationFailed
from harbor_upgrade.postgres.tools import canonical_lines, client_binaries
from tests.support.backups import HARBOR_YML, make_installation, plain_dump, snapshot
from tests.support.pg import MINI_HARBOR_SQL


def backup_dump(backup: Path, major: int) -> list[bytes]:
    tools = client_binaries(major)
    out = subprocess.run([tools.tool("pg_restore"), "-f", "-", str(backup / "database")],
                         capture_output=True, check=True).stdout
    return list(canonical_lines(out.splitlines(keepends=True)))


def change_files(harbor: Path, dv: Path) -> None:
    (harbor / "harbor.yml").write_text(HARBOR_YML.replace("1.10.0", "2.4.0") + "trivy:\n  ignore_unfixed: false\n")
    (harbor / "common/config/core/env").unlink()
    (harbor / "common/config/nginx/nginx.conf").write_text("changed\n")
    os.chmod(harbor / "common/config/nginx/nginx.conf", 0o666)
    os.chown(dv / "secret/keys/secretkey", 0, 0)
    os.chmod(dv / "secret", 0o755)
    (dv / "secret/current").unlink()
    (dv / "secret/current").write_text("now a file")
    (dv / "job_logs").rename(dv / "job_logs.moved")
    (harbor / "common/config/trivy-adapter").mkdir()
    (harbor / "common/config/trivy-adapter/env").write_text("new in 2.4\n")


def test_backup_change_everything_restore_is_exact(database, tmp_path):
    database.psql(MINI_HARBOR_SQL)
    harbor, dv = make_installation(tmp_path)
    before_files = {"harbor": snapshot(harbor), "data": snapshot(dv, skip=("registry", "database"))}
    before_dump = plain_dump(database.dsn)

    m = create_backup(database.dsn, harbor, tmp_path / "backup", data_volume=dv, jobs=2)
    assert (m.harbor_version, m.schema_version, m.dirty, m.pg_major) == ("1.10.0", 15, False, 15)
    assert m.table_counts == {"artifact": 900, "project": 22, "properties": 2, "repository": 150,
                              "schema_migrations": 1}
    assert {s["path"] for s in m.skipped} == {"data_volume/registry", "data_volume/database"}
    assert not (tmp_path / "backup/files/data_volume/registry").exists()
    for p in [tmp_path / "backup", *(tmp_path / "backup").rglob("*")]:
        assert stat.S_IMODE(p.lstat().st_mode) == (0o700 if p.is_dir() else 0o600), p
    env = next(f for f in m.files if f.path == "common/config/core/env")
    env_sha256 = hashlib.sha256(b"CORE_SECRET=abc\nPORT=8080\n").hexdigest()
    assert (env.uid, env.mode, env.sha256) == (10000, 0o600, env_sha256)

    database.psql("alter table project add column registry_id int; update project set name = name || '-x' "
                  "where project_id < 5; delete from artifact where id % 3 = 0; insert into artifact (repo) "
                  "values ('new'); create table artifact_trash (id int); update schema_migrations set version = 70;"
                  "select setval('access_log_log_id_seq', 99999)")
    change_files(harbor, dv)
    assert plain_dump(database.dsn) != before_dump

    r = restore_backup(tmp_path / "backup", database.dsn, harbor, data_volume=dv)
    assert r.ok and r.dump_identical, r.problems
    assert plain_dump(database.dsn) == before_dump
    assert backup_dump(tmp_path / "backup", 15) == before_dump
    assert snapshot(harbor, skip=()) == {**before_files["harbor"],
                                         **{k: v for k, v in snapshot(harbor).items() if "trivy" in k}}
    assert snapshot(dv, skip=("registry", "database", "job_logs.moved")) == before_files["data"]
    assert sorted(r.extra_files) == ["data_volume/job_logs.moved", "data_volume/job_logs.moved/2fd3.log",
                                     "harbor/common/config/trivy-adapter",
                                     "harbor/common/config/trivy-adapter/env"]


def test_restore_after_harbor_migration(shared, database, tmp_path):
    """The issue's 'Done when': a Harbor 1.10 database migrated to 2.4 by our db migrate
    comes back byte for byte (as a pg_dump) with the files."""
    from harbor_upgrade.db import migrate
    database.load(shared / "fixtures/harbor-db/harbor-1.10.0.sql")
    harbor, dv = make_installation(tmp_path)
    before_dump, before_files = plain_dump(database.dsn), snapshot(harbor)
    m = create_backup(database.dsn, harbor, tmp_path / "backup", data_volume=dv)
    assert m.schema_version == 15 and m.table_counts["access_log"] == 2768
    migrate(database.dsn, to="2.4.0", force_connected=True)
    assert database.scalar("select version from schema_migrations") == "70"
    (harbor / "harbor.yml").write_text("_version: 2.4.0\n")
    r = restore_backup(tmp_path / "backup", database.dsn, harbor, data_volume=dv)
    assert r.ok, r.problems
    assert database.scalar("select version from schema_migrations") == "15"
    assert plain_dump(database.dsn) == before_dump
    assert snapshot(harbor) == before_files


def test_verify_restores_into_a_scratch_cluster_and_compares_counts(database, tmp_path):
    database.psql(MINI_HARBOR_SQL)
    harbor, dv = make_installation(tmp_path)
    create_backup(database.dsn, harbor, tmp_path / "backup", data_volume=dv)
    good = verify_backup(tmp_path / "backup")
    assert good.ok and good.restored_tables == 5, good.problems
    # A manifest that lies about a count, signed with the key (its holder made a mistake): only the
    # scratch restore sees it.
    man = json.loads((tmp_path / "backup" / MANIFEST).read_text())
    man["table_counts"]["artifact"] = 901
    text = json.dumps(man, indent=1, sort_keys=True) + "\n"
    (tmp_path / "backup" / MANIFEST).write_text(text)
    sign(tmp_path / "backup", text.encode())
    assert verify_backup(tmp_path / "backup", restore_check=False).ok
    lying = verify_backup(tmp_path / "backup")
    assert lying.problems == ["table artifact: 900 rows after a scratch restore, 901 in the manifest"]


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("target", ["dump", "file", "manifest"])
def test_corrupted_backup_is_refused_by_verify_and_restore(database, tmp_path, target):
    database.psql(MINI_HARBOR_SQL)
    harbor, dv = make_installation(tmp_path)
    backup = tmp_path / "backup"
    m = create_backup(database.dsn, harbor, backup, data_volume=dv)
    victim = {"dump": backup / max(m.stored, key=lambda s: s.size).path,
              "file": backup / "files/harbor/harbor.yml",
              "manifest": backup / MANIFEST}[target]
    _flip_one_byte(victim)
    result = verify_backup(backup)
    assert not result.ok and result.restored_tables == 0
    assert victim.name in " ".join(result.problems)

    database.psql("insert into project (name) values ('made after the backup')")
    (harbor / "harbor.yml").write_text("edited after the backup\n")
    with pytest.raises(ValidationFailed) as e:
        restore_backup(backup, database.dsn, harbor, data_volume=dv)
    assert e.value.reference == "backup-corrupt"
    assert database.scalar("select count(*) from project where name = 'made after the backup'") == "1"
    assert (harbor / "harbor.yml").read_text() == "edited after the backup\n"


def test_cli_backup_verify_restore(database, tmp_path, run_cli):
    database.psql(MINI_HARBOR_SQL)
    harbor, dv = make_installation(tmp_path)
    code, out, err = run_cli("backup", "--dsn", database.dsn, "--harbor-dir", harbor, "--data-volume", dv,
                             "--to", tmp_path / "b", "--jobs", "2")
    assert code == 0, err
    assert "not copied: data_volume/registry" in out and "snapshot" in out and "backup verify" in out
    code, out, err = run_cli("backup", "verify", tmp_path / "b")
    assert code == 0 and "is good" in out, err
    code, out, err = run_cli("backup", "--dsn", database.dsn, "--harbor-dir", harbor, "--to", tmp_path / "b")
    assert code == 2 and "backup-exists" in err
    database.psql("delete from artifact")
    code, out, err = run_cli("restore", "--from", tmp_path / "b", "--dsn", database.dsn, "--harbor-dir", harbor,
                             "--data-volume", dv)
    assert code == 4 and "confirmation-needed" in err  # no terminal under pytest, no --yes
    assert database.scalar("select count(*) from artifact") == "0"
    code, out, err = run_cli("restore", "--from", tmp_path / "b", "--dsn", database.dsn, "--harbor-dir", harbor,
                             "--data-volume", dv, "--yes")
    assert code == 0 and "pg_dump text identical" in out, err
    assert database.scalar("select count(*) from artifact") == "900"
    _flip_one_byte(tmp_path / "b/files/data_volume/secret/keys/secretkey")
    code, out, err = run_cli("backup", "verify", tmp_path / "b", "--no-restore")
    assert code == 2 and "secretkey: sha256 differs" in out


def test_read_manifest_of_a_plain_folder_says_so(tmp_path):
    with pytest.raises(Exception) as e:
        read_manifest(tmp_path)
    assert getattr(e.value, "reference", "") == "backup-missing"


@pytest.mark.parametrize("release,schema,data", [("2.0.0", 31, 30), ("2.1.0", 41, 30)])
def test_manifest_records_schema_and_data_versions(shared, database, tmp_path, release, schema, data):
    # 2.0 kept data_version in schema_migrations, 2.1+ in data_migrations.
    database.load(shared / f"fixtures/harbor-db/harbor-{release}.sql")
    (tmp_path / "harbor").mkdir()
    m = create_backup(database.dsn, tmp_path / "harbor", tmp_path / "backup")
    assert (m.schema_version, m.data_version, m.dirty) == (schema, data, False)
    assert m.harbor_version == release  # no harbor.yml: the release line of the schema version
