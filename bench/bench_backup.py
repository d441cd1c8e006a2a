"""Benchmark: backup, verify, restore and the PostgreSQL major upgrade on a large Harbor DB.

Builds a Harbor 1.10 database on PostgreSQL 15 (src/harbor_upgrade/data/harbor-1.10.0-fresh.sql +
tests/support/seed_harbor.py at --scale, ≈188k artifact rows and ≈877k access_log rows at
350), then times

  1. `create_backup` (pg_dump -Fd with --jobs, files, manifest with row counts and sha256),
  2. `verify_backup` (checksums + restore into a scratch cluster + row counts),
  3. `restore_backup` (drop, pg_restore --jobs, fresh pg_dump compared with the backup),
  4. `upgrade_cluster` 15 -> --to-major in each mode (copy, link, clone, dump), each on its
     own copy of the stopped cluster,

against the baselines of Harbor's own path: `cp -a` of the stopped data folder (the
guide's backup) and one bare `pg_upgrade` in copy mode without --check or verification
(harbor-db 2.3). It prints every time and its ratio to the baseline.

    python bench/bench_backup.py [--scale 350] [--jobs 2] [--to-major 16]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harbor_upgrade.backup import create_backup, restore_backup, verify_backup
from harbor_upgrade.errors import HarborUpgradeError
from harbor_upgrade.postgres.cluster import LocalCluster, find_binaries
from harbor_upgrade.postgres.server import server_user
from harbor_upgrade.postgres.upgrade import MODES, upgrade_cluster

HERE = Path(__file__).resolve().parent
FRESH_1_10 = HERE.parent / "src" / "harbor_upgrade" / "data" / "harbor-1.10.0-fresh.sql"  # shipped for the demo


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    out = fn(*args, **kw)
    return time.monotonic() - t0, out


def phases(label: str):
    """A progress callback that prints when each phase starts."""
    t0 = time.monotonic()
    return lambda msg: print(f"    {label} +{time.monotonic() - t0:6.1f}s {msg}", flush=True)


def du(path: Path) -> str:
    return subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True).stdout.split()[0]


def as_owner(path: Path) -> dict:
    st = path.stat()
    return {"user": st.st_uid, "group": st.st_gid, "extra_groups": []} if os.geteuid() == 0 else {}


def build(base: Path, scale: float, seed: int) -> LocalCluster:
    sys.path.insert(0, str(HERE.parent))  # the checkout: tests.support
    from tests.support import seed_harbor
    cluster = LocalCluster.create(base / "database" / "pg15", binaries=find_binaries(major=15), fast=True)
    cluster.start(fast=True)
    data = base / "seed.sql"
    data.write_text(seed_harbor.generate(seed, scale, "normal", "none"))
    cluster.createdb("registry")
    cluster.psql(dbname="registry", file=FRESH_1_10)
    cluster.psql(dbname="registry", file=data)
    data.unlink()
    cluster.psql("VACUUM ANALYZE", dbname="registry")
    return cluster


def installation(base: Path) -> tuple[Path, Path]:
    harbor, dv = base / "harbor", base / "data"
    for p, body in {harbor / "harbor.yml": "hostname: bench.test\n_version: 1.10.0\n",
                    harbor / "common/config/core/env": "CORE_SECRET=x\n" * 20,
                    dv / "secret/keys/secretkey": "0123456789abcdef",
                    dv / "job_logs/job.log": "line\n" * 100_000}.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    return harbor, dv


def bare_pg_upgrade(old_bin, new_bin, old: Path, new: Path, work: Path) -> float:
    """Harbor 2.3's way: initdb, pg_upgrade in copy mode, nothing checked first or after."""
    kw = as_owner(old)
    new.mkdir(mode=0o700)
    work.mkdir(mode=0o700)
    if kw:
        os.chown(new, kw["user"], kw["group"])
        os.chown(work, kw["user"], kw["group"])
    t0 = time.monotonic()
    subprocess.run([new_bin.tool("initdb"), "-D", str(new), "-U", "postgres", "-E", "UTF8", "--locale=C"],
                   check=True, capture_output=True, cwd=work, **kw)
    subprocess.run([new_bin.tool("pg_upgrade"), "-b", str(old_bin.bindir), "-B", str(new_bin.bindir),
                    "-d", str(old), "-D", str(new), "-U", "postgres", "-s", str(work),
                    "-p", "50431", "-P", "50432"], check=True, capture_output=True, cwd=work, **kw)
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=350)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--to-major", type=int, default=16)
    a = ap.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="hu-bench-backup-"))
    pw = server_user()
    if pw is not None:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    (base / "database").mkdir()
    shutil.copystat(base, base / "database")
    if pw is not None:
        os.chown(base / "database", pw.pw_uid, pw.pw_gid)
    rows = {}
    try:
        t, cluster = timed(build, base, a.scale, a.seed)
        dsn = cluster.dsn("registry")
        size = cluster.psql("select pg_size_pretty(pg_database_size('registry'))").strip()
        for table in ("artifact", "access_log", "blob", "artifact_blob"):
            rows[table] = int(cluster.psql(f"select count(*) from {table}", dbname="registry"))
        print(f"built Harbor 1.10 DB (scale {a.scale:g}) in {t:.0f}s: {size}, "
              + ", ".join(f"{k} {v:,}" for k, v in rows.items()), flush=True)
        harbor, dv = installation(base)

        t_backup, manifest = timed(create_backup, dsn, harbor, base / "backup", data_volume=dv, jobs=a.jobs,
                                    progress=phases("backup"))
        print(f"backup  ({a.jobs} jobs): {t_backup:7.1f}s  ({du(base / 'backup')}, "
              f"{sum(manifest.table_counts.values()):,} rows counted)", flush=True)
        t_verify, v = timed(verify_backup, base / "backup")
        assert v.ok, v.problems
        print(f"verify (checksums + scratch restore): {t_verify:7.1f}s", flush=True)
        cluster.psql("delete from access_log where log_id % 2 = 0", dbname="registry")
        t_restore, r = timed(restore_backup, base / "backup", dsn, harbor, data_volume=dv, jobs=a.jobs,
                               progress=phases("restore"))
        assert r.ok, r.problems
        print(f"restore ({a.jobs} jobs, + fresh pg_dump compared): {t_restore:7.1f}s", flush=True)
        cluster.stop()

        old = cluster.datadir
        t_cp, _ = timed(subprocess.run, ["cp", "-a", str(old), str(base / "cp-baseline")], check=True)
        print(f"baseline cp -a of the stopped data folder ({du(old)}): {t_cp:7.1f}s  "
              f"-> backup x{t_backup / t_cp:.2f}, restore x{t_restore / t_cp:.2f}", flush=True)
        shutil.rmtree(base / "cp-baseline")

        old_bin, new_bin = find_binaries(major=15), find_binaries(major=a.to_major)
        copy = base / "database" / "pg15-copy"
        subprocess.run(["cp", "-a", str(old), str(copy)], check=True)
        t_bare = bare_pg_upgrade(old_bin, new_bin, copy, base / "bare-new", base / "bare-work")
        print(f"baseline bare pg_upgrade copy 15 -> {a.to_major} (no --check, no verify): {t_bare:7.1f}s",
              flush=True)
        shutil.rmtree(copy)
        shutil.rmtree(base / "bare-new")
        for mode in MODES:
            subprocess.run(["cp", "-a", str(old), str(copy)], check=True)
            new = base / f"new-{mode}"
            try:
                t_up, res = timed(upgrade_cluster, old_bin.bindir, copy, new_bin.bindir, new, mode=mode, jobs=a.jobs)
                split = ", ".join(f"{k} {v:.1f}" for k, v in res.seconds.items() if k != "total")
                print(f"pg-upgrade {mode:5s} 15 -> {a.to_major} ({a.jobs} jobs): {t_up:7.1f}s  "
                      f"x{t_up / t_bare:.2f} of bare pg_upgrade  [{split}]", flush=True)
            except HarborUpgradeError as e:
                why = [line for line in e.message.splitlines() if "could not" in line] or [e.message[:200]]
                print(f"pg-upgrade {mode:5s}: refused here: {why[0].strip()}", flush=True)
            shutil.rmtree(copy, ignore_errors=True)
            shutil.rmtree(new, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
