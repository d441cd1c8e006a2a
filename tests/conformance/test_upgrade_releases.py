"""`run` on each release fixture (harbor.yml + database + registry storage, 1.10.0 ... 2.4.0) to
the newest release the tool knows (versions.TARGET): it ends with a passing verify, its database equals the
separate `db migrate` + `artifacts` result (the scanner step's registration aside), and the fixture's passwords
appear in nothing it printed or wrote outside the backup copy."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import psycopg
import pytest

from harbor_upgrade import db, versions
from harbor_upgrade.artifacts import backfill
from harbor_upgrade.registry import open_storage
from harbor_upgrade.report import render_text
from harbor_upgrade.upgrade import Options, run
from tests.support.db_normalize import ClusterPsql, compare_data, compare_schema, data, schema
from tests.support.sites import open_tmpdir

RELEASES = ["1.10.0", "2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0"]
PASSWORDS = ("Harbor12345", "root123")  # harbor_admin_password and database.password of the fixtures
SCANNER_TABLE = "scanner_registration"   # the scanner step's own change, checked on its own


def installation(shared: Path, release: str, base: Path) -> Path:
    """The fixture's harbor.yml pointing at a data volume in base, whose registry/ is a copy
    of the storage fixture."""
    data_volume = base / "data"
    shutil.copytree(shared / "fixtures" / "registry" / "storage", data_volume / "registry")
    harbor_dir = base / "harbor"
    harbor_dir.mkdir()
    text = (shared / "fixtures" / "harbor-yml" / release / "harbor.yml").read_text()
    assert "data_volume: /data\n" in text
    (harbor_dir / "harbor.yml").write_text(text.replace("data_volume: /data\n", f"data_volume: {data_volume}\n"))
    return harbor_dir / "harbor.yml"


@pytest.mark.conformance
@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_run_on_a_release_fixture_equals_db_migrate_plus_artifacts(shared, pg_cluster, start_dumps, start_copy,
                                                                    release):
    base = open_tmpdir(f"harbor-upgrade-release-{release}-")
    try:
        database, ref = start_copy(release), start_copy(release)     # copies of the release's dump
        ref_name = ref.name
        harbor_yml = installation(shared, release, base)
        pg = ClusterPsql(pg_cluster)
        src_ids = start_dumps.source_ids(release)
        start = dt.datetime.utcnow()

        report = run(Options(str(harbor_yml), str(base / "backup"), database.dsn, yes=True)).to_dict()
        assert report["ok"], render_text(report)
        assert report["verify"]["ok"] and [s["name"] for s in report["steps"]] == [
            "backup", "config", "database", "artifacts", "scanner", "verify"]
        assert report["target"] == versions.TARGET and report["hops"][-1] == versions.TARGET
        schema_check = next(c for c in report["verify"]["checks"] if c["name"] == "schema objects")
        assert schema_check["status"] == "pass"
        database_step = next(s for s in report["steps"] if s["name"] == "database")
        if release == "2.4.0" and "2.10.0" in versions.RELEASES:
            # the fixture has labels on projects and repositories: 2.10 drops them, and the report says how many
            assert "harbor_resource_label" in database_step["summary"] and database_step["changed"]["lost"]

        ref_dsn = pg_cluster.dsn(ref_name)
        db.migrate(ref_dsn, to=versions.TARGET)
        storage = open_storage(str(base / "data" / "registry"))
        try:
            backfill(ref_dsn, storage)
        finally:
            storage.close()
        window = (start, dt.datetime.utcnow())

        assert compare_schema(schema(pg, ref_name), schema(pg, database.name)) == []
        ref_data, run_data = data(pg, ref_name, src_ids, window), data(pg, database.name, src_ids, window)
        assert len(ref_data["tables"]["artifact"]["rows"]) > 0
        for d in (ref_data, run_data):
            d["tables"].pop(SCANNER_TABLE)
        assert compare_data(ref_data, run_data)[0] == []

        with psycopg.connect(database.dsn, autocommit=True) as conn:
            scanners = conn.execute(f"SELECT name, immutable, is_default FROM {SCANNER_TABLE} "
                                    "WHERE immutable OR is_default").fetchall()
        assert scanners == [("Trivy", True, True)]

        written = {"report.json": json.dumps(report), "report.txt": render_text(report)}
        for f in (base / "backup").iterdir():
            if f.is_file():
                written[f.name] = f.read_text(errors="replace")
        assert "journal.jsonl" in written
        assert [(name, p) for name, text in written.items() for p in PASSWORDS if p in text] == []
        assert all(p in (base / "harbor" / f"harbor-{versions.TARGET}.yml").read_text() for p in PASSWORDS)
    finally:
        shutil.rmtree(base, ignore_errors=True)
