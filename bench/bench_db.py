"""Benchmark: `harbor-upgrade db migrate` on a large Harbor 1.10 database.

Builds a Harbor 1.10 database (src/harbor_upgrade/data/harbor-1.10.0-fresh.sql + bench/db_seed_harbor.py
at --scale, ≈200k artifact rows and ≈1M access_log rows at the default 375; the
replication history is then multiplied up to --replication-executions executions and
about twice as many tasks), then times

  1. a plain dump and restore of it: `pg_dump src | psql copy` into an empty database,
  2. `harbor-upgrade db migrate --dsn <src>` (1.10 -> 2.4.0),

and prints both, their ratio (target: migrate <= 2x dump-restore), the speed-up over
Harbor's own SQL (1,467 s for 1.10 -> 2.4.0 at scale 350 on this kind of machine,
specs/db-migration.md §7; target >= 20x) and the peak RSS of the migrate process.

    python bench/bench_db.py [--scale 375] [--replication-executions 100000]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harbor_upgrade.postgres.cluster import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proc_status import status_kib  # noqa: E402

HERE = Path(__file__).resolve().parent
FRESH_1_10 = HERE.parent / "src" / "harbor_upgrade" / "data" / "harbor-1.10.0-fresh.sql"  # shipped for the demo
HARBOR_SECONDS_AT_350 = 1467.4

COUNTS = ["artifact", "access_log", "blob", "artifact_blob", "repository", "scan_report",
          "replication_execution", "replication_task", "retention_execution", "retention_task"]
COUNTS_AFTER = ["artifact", "tag", "audit_log", "execution", "task", "blob"]


def multiply_replication(cluster: LocalCluster, db: str, target: int) -> None:
    """Copy every replication execution (with its tasks) until there are about `target`."""
    n = int(cluster.psql("SELECT count(*) FROM replication_execution", dbname=db))
    copies = max(0, math.ceil(target / max(n, 1)) - 1)
    if not copies:
        return
    cluster.psql(f"""
        CREATE TEMP TABLE m AS
            SELECT e.id AS old_id, nextval('replication_execution_id_seq') AS new_id
            FROM replication_execution e, generate_series(1, {copies});
        INSERT INTO replication_execution (id, policy_id, status, status_text, total, failed, succeed,
                                           in_progress, stopped, trigger, start_time, end_time)
            SELECT m.new_id, e.policy_id, e.status, e.status_text, e.total, e.failed, e.succeed,
                   e.in_progress, e.stopped, e.trigger, e.start_time, e.end_time
            FROM m JOIN replication_execution e ON e.id = m.old_id;
        INSERT INTO replication_task (execution_id, resource_type, src_resource, dst_resource,
                                      operation, job_id, status, start_time, end_time, status_revision)
            SELECT m.new_id, t.resource_type, t.src_resource, t.dst_resource, t.operation,
                   t.job_id, t.status, t.start_time, t.end_time, t.status_revision
            FROM m JOIN replication_task t ON t.execution_id = m.old_id;
        ANALYZE;""", dbname=db)


def counts(cluster: LocalCluster, db: str, tables: list[str]) -> dict[str, int]:
    return {t: int(cluster.psql(f"SELECT count(*) FROM {t}", dbname=db)) for t in tables}


def timed_shell(cmd: str, env: dict) -> float:
    t0 = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def run_migrate(dsn: str) -> tuple[float, int, dict]:
    """(seconds, peak RSS in KiB, report) of one `harbor-upgrade db migrate` process."""
    out = tempfile.TemporaryFile()
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "harbor_upgrade", "db", "migrate", "--dsn", dsn,
                             "--json"], stdout=out, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, status_kib(proc.pid, "VmHWM") or 0)
        time.sleep(0.05)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"migrate failed: {proc.stderr.read().decode()[-3000:]}")
    out.seek(0)
    return seconds, peak, json.loads(out.read())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=375)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--replication-executions", type=int, default=100_000)
    a = ap.parse_args(argv)

    sys.path.insert(0, str(HERE))
    import db_seed_harbor

    with LocalCluster.create(fast=True) as cluster:
        env = cluster.env()
        t0 = time.monotonic()
        data = Path(cluster.datadir.parent) / "seed.sql"
        data.write_text(db_seed_harbor.generate(a.seed, a.scale, "normal", "none"))
        cluster.createdb("registry")
        cluster.psql(dbname="registry", file=FRESH_1_10)
        cluster.psql(dbname="registry", file=data)
        data.unlink()
        multiply_replication(cluster, "registry", a.replication_executions)
        cluster.psql("VACUUM ANALYZE", dbname="registry")
        before = counts(cluster, "registry", COUNTS)
        print(f"built the 1.10 database (scale {a.scale:g}, seed {a.seed}) in {time.monotonic() - t0:.0f}s: "
              + ", ".join(f"{k} {v:,}" for k, v in before.items()), flush=True)
        size = cluster.psql("SELECT pg_size_pretty(pg_database_size('registry'))").strip()

        cluster.createdb("registry_copy")
        dump_restore = timed_shell(
            f"{cluster.bin.tool('pg_dump')} -d registry | "
            f"{cluster.bin.tool('psql')} -X -q -v ON_ERROR_STOP=1 -d registry_copy", env)
        print(f"pg_dump | psql into an empty database ({size}): {dump_restore:.1f}s", flush=True)
        cluster.dropdb("registry_copy")

        seconds, rss_kib, report = run_migrate(cluster.dsn("registry"))
        after = counts(cluster, "registry", COUNTS_AFTER)
        version = cluster.psql("SELECT version || ',' || dirty FROM schema_migrations", dbname="registry")

    print(f"harbor-upgrade db migrate 1.10 -> 2.4.0: {seconds:.1f}s (schema_migrations {version.strip()})")
    for step in report["steps"]:
        slowest = sorted(step["statements"], key=lambda s: -s["seconds"])[:3]
        print(f"  {step['name']}: {step['seconds']:.1f}s  (slowest: "
              + "; ".join(f"{s['what']} {s['seconds']:.1f}s" for s in slowest) + ")")
    print("  result: " + ", ".join(f"{k} {v:,}" for k, v in after.items()))
    print(f"ratio migrate / dump-restore: {seconds / dump_restore:.2f}  (target <= 2)")
    print(f"speed-up over Harbor's SQL (1,467 s at scale 350): {HARBOR_SECONDS_AT_350 / seconds:.0f}x "
          f"(target >= 20x; this database is scale {a.scale:g}"
          + (f" with replication history multiplied to {before['replication_execution']:,} executions"
             if a.replication_executions else "") + ")")
    print(f"peak RSS of the migrate process: {rss_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
