"""`harbor-upgrade db migrate` gives exactly Harbor's own result (../shared oracle)."""
from __future__ import annotations

import re
import subprocess
import sys

import psycopg
import pytest

from harbor_upgrade import db as harbor_db

RELEASES = ["1.10.0", "2.0.0", "2.1.0", "2.2.0", "2.3.0"]
pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def dn(shared):
    sys.path.insert(0, str(shared / "tools"))
    import db_normalize
    return db_normalize


class Psql:
    """The psql interface db_normalize expects, over the session cluster."""

    def __init__(self, cluster):
        self.cluster = cluster

    def psql(self, sql, db, as_command=True):
        return self.cluster.psql(sql, dbname=db)


def server_now(dsn: str):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT (now() AT TIME ZONE 'UTC')::timestamp").fetchone()[0]


def test_check_db_every_release_equals_harbor(shared):
    """The comparison the issue asks for, exactly as the checker runs it."""
    r = subprocess.run([sys.executable, str(shared / "tools" / "check_db.py"),
                        "--cmd", "harbor-upgrade db migrate --dsn {dsn}", "--from", "all"],
                       capture_output=True, text=True, timeout=900)
    verdicts = re.findall(r"^db-oracle: (.*)\[seed 1 from ([\d.]+)\]$", r.stdout, re.M)
    assert [v[1] for v in verdicts] == RELEASES, r.stdout[-3000:] + r.stderr[-2000:]
    for verdict, release in verdicts:
        m = re.match(r"schema equal, data (\d+)/(\d+) tables equal\s*$", verdict)
        assert m and m.group(1) == m.group(2), f"from {release}: {verdict}\n{r.stdout[-3000:]}"
    assert r.returncode == 0


@pytest.mark.parametrize("release", ["2.0.0", "2.1.0", "2.2.0", "2.3.0"])
def test_intermediate_release_has_harbors_schema_of_that_release(shared, dn, pg_cluster, database,
                                                                  release):
    """--to stops at a release whose schema is the one Harbor's own files leave there."""
    fixtures = shared / "fixtures" / "harbor-db"
    database.load(fixtures / "harbor-1.10.0.sql")
    harbor_db.migrate(database.dsn, to=release)
    reference = f"ref_{database.name}"
    pg_cluster.createdb(reference)
    try:
        pg_cluster.psql(dbname=reference, file=fixtures / f"harbor-{release}.sql")
        pg = Psql(pg_cluster)
        diffs = dn.compare_schema(dn.schema(pg, reference), dn.schema(pg, database.name))
    finally:
        pg_cluster.dropdb(reference)
    assert diffs == []


def test_sigkill_then_rerun_equals_harbor(shared, dn, pg_cluster, database):
    """Killed inside 2.2.0 (2.0.0 and 2.1.0 committed), rerun: Harbor's result all the same."""
    from integration.test_db_migrate import kill_during_step
    database.load(shared / "fixtures" / "harbor-db" / "harbor-1.10.0.sql")
    pg = Psql(pg_cluster)
    src = dn.source_ids(pg, database.name)
    t0 = server_now(database.dsn)
    kill_during_step(database.dsn, "2.2.0")
    assert harbor_db.status(database.dsn).schema_version == 41
    harbor_db.migrate(database.dsn)
    t1 = server_now(database.dsn)
    data = dn.data(pg, database.name, src_ids=src, window=(t0, t1))
    oracle = dn.load_json(str(shared / "fixtures" / "harbor-db" / "expected" / "seed1" /
                              "from-1.10.0.data.json.gz"))
    diffs, status = dn.compare_data(oracle, data)
    assert diffs == [] and all(status.values())
