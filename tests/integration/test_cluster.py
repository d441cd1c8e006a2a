from harbor_upgrade.postgres.cluster import LocalCluster


def test_session_cluster_runs_sql(database):
    database.psql("create table t(a int); insert into t values (1),(2)")
    assert database.scalar("select sum(a) from t") == "3"


def test_throwaway_cluster_is_removed_on_stop():
    c = LocalCluster.create(fast=True)
    owned = c.owned_dir
    with c:
        assert c.psql("select 1").strip() == "1"
    assert not owned.exists()
