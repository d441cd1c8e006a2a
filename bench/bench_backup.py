"""Benchmark: backup, verify, restore and the PostgreSQL major upgrade on a large Harbor DB.

Builds a Harbor 1.10 database on PostgreSQL 15 (src/harbor_upgrade/data/harbor-1.10.0-fresh.sql +
tests/support/seed_harbor.py at --scale, ≈188k artifact rows and ≈877k access_log rows at
350), then times, side by side, the three ways to take the pre-upgrade backup inside the stop
window (each with its verification, and the load average beside it):

  A. the dump backup `run` takes of a database it cannot stop (`create_backup`: pg_dump -Fd
     with --jobs, the SQL text's digest, files, manifest; then `verify_backup`: checksums,
     pg_restore into a scratch cluster, row counts),
  B. a bare parallel dump: pg_dump -Fd -j N, verified by pg_restore -j N into a scratch cluster
     and row counts (no digest, no files),
  C. the data folder copy `run` takes of a stopped cluster it owns (`create_datadir_backup`:
     server stopped, parallel copy with sha256 in the same pass, a throwaway server on a
     checked copy of the copy, census compared; then started again),

against Harbor's own guide, `cp -a` of the stopped data folder. Then (unless --backup-only)

  3. `restore_backup` (drop, pg_restore --jobs, fresh pg_dump compared with the backup),
  4. `upgrade_cluster` 15 -> --to-major in each mode (copy, link, clone, dump), each on its
     own copy of the stopped cluster,

against one bare `pg_upgrade` in copy mode without --check or verification (harbor-db 2.3).

    python3 bench/bench_backup.py --scale 350 [--jobs 2] [--to-major 16] [--backup-only] [--reuse DIR]

--reuse DIR builds the database into DIR the first time and reuses it afterwards (DIR is kept).

Measured at scale 350 (853 MB database, 1.8 GB data folder of which 944 MB recycled WAL), 2 jobs, on
2 cores at load 17-21 (so every figure is several times a quiet machine's): A 287.1 s (backup 186.5
+ verify 100.6), B 251.7 s (pg_dump 151.6 + pg_restore 100.1), C 92.6 s when the proof re-read the
backup (copy 34 s, read-back copy 46 s, serve and census 8 s), 64.8 s with the twin written from the
same buffers (copy 52 s, serve and census 10 s, stop 0.3 s, start 0.6 s), cp -a 24.0-45.9 s.
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

from harbor_upgrade.backup import Census, create_backup, create_datadir_backup, restore_backup, verify_backup
from harbor_upgrade.errors import HarborUpgradeError
from harbor_upgrade.postgres.cluster import LocalCluster, find_binaries
from harbor_upgrade.postgres.server import server_user
from harbor_upgrade.postgres.tools import Conn, run_tool, table_counts
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


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def bare_dump_verify(cluster: LocalCluster, dsn: str, out: Path, jobs: int) -> tuple[float, float]:
    """B: pg_dump -Fd -j N, then pg_restore -j N into a scratch cluster and row counts equal."""
    from harbor_upgrade.postgres.scratch import scratch_cluster
    with Conn.parse(dsn).connect() as c:
        want = table_counts(c)
    t0 = time.monotonic()
    run_tool([cluster.bin.tool("pg_dump"), "-Fd", "-j", str(jobs), "-f", str(out), "-d", dsn], what="pg_dump")
    t_dump = time.monotonic() - t0
    t0 = time.monotonic()
    with scratch_cluster(cluster.bin, "bench") as scratch:
        scratch.createdb("registry")
        run_tool([cluster.bin.tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "-j", str(jobs),
                  "-d", scratch.dsn("registry"), str(out)], what="pg_restore")
        with Conn.parse(scratch.dsn("registry")).connect() as c:
            assert table_counts(c) == want
    return t_dump, time.monotonic() - t0


def datadir_copy_verify(cluster: LocalCluster, dsn: str, harbor: Path, dv: Path, out: Path,
                        jobs: int) -> tuple[float, float, float]:
    """C: (stop, copy + verify, start) seconds, the way `run` does it on a cluster it owns."""
    with Conn.parse(dsn).connect() as c:
        census = Census.read(c)
    t0 = time.monotonic()
    cluster.stop()
    t_stop = time.monotonic() - t0
    t0 = time.monotonic()
    create_datadir_backup(cluster.datadir, harbor, out, data_volume=dv, expect=census, jobs=jobs,
                          progress=phases("datadir"))
    t_copy = time.monotonic() - t0
    t0 = time.monotonic()
    cluster.start(fast=True)
    return t_stop, t_copy, time.monotonic() - t0


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
    ap.add_argument("--backup-only", action="store_true", help="stop after the side-by-side backup figures")
    ap.add_argument("--reuse", type=Path, help="build the database here once, reuse it afterwards (kept)")
    a = ap.parse_args(argv)

    base = a.reuse.resolve() if a.reuse else Path(tempfile.mkdtemp(prefix="hu-bench-backup-"))
    reused = a.reuse is not None and (base / "database" / "pg15" / "PG_VERSION").exists()
    if not reused:
        base.mkdir(exist_ok=True)
        pw = server_user()
        if pw is not None:
            os.chown(base, pw.pw_uid, pw.pw_gid)
        (base / "database").mkdir()
        shutil.copystat(base, base / "database")
        if pw is not None:
            os.chown(base / "database", pw.pw_uid, pw.pw_gid)
    rows = {}
    work = base / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        if reused:
            cluster = LocalCluster(base / "database" / "pg15", binaries=find_binaries(major=15))
            t = 0.0
            cluster.start(fast=True)
        else:
            t, cluster = timed(build, base, a.scale, a.seed)
        dsn = cluster.dsn("registry")
        size = cluster.psql("select pg_size_pretty(pg_database_size('registry'))").strip()
        for table in ("artifact", "access_log", "blob", "artifact_blob"):
            rows[table] = int(cluster.psql(f"select count(*) from {table}", dbname="registry"))
        print(f"built Harbor 1.10 DB (scale {a.scale:g}) in {t:.0f}s: {size}, "
              + ", ".join(f"{k} {v:,}" for k, v in rows.items()), flush=True)
        harbor, dv = installation(base)
        print(f"before A: {load()}", flush=True)
        t_backup, manifest = timed(create_backup, dsn, harbor, work / "backup", data_volume=dv, jobs=a.jobs,
                                    progress=phases("backup"))
        print(f"A backup  ({a.jobs} jobs): {t_backup:7.1f}s  ({du(work / 'backup')}, "
              f"{sum(manifest.table_counts.values()):,} rows counted)  {load()}", flush=True)
        t_verify, v = timed(verify_backup, work / "backup")
        assert v.ok, v.problems
        print(f"A verify (checksums + scratch restore): {t_verify:7.1f}s  {load()}", flush=True)
        t_bdump, t_bverify = bare_dump_verify(cluster, dsn, work / "bare-dump", a.jobs)
        print(f"B pg_dump -Fd -j {a.jobs}: {t_bdump:7.1f}s ({du(work / 'bare-dump')}), pg_restore -j {a.jobs} into a "
              f"scratch cluster + counts: {t_bverify:7.1f}s  {load()}", flush=True)
        shutil.rmtree(work / "bare-dump")
        t_stop, t_copy, t_start = datadir_copy_verify(cluster, dsn, harbor, dv, work / "datadir-backup", a.jobs)
        print(f"C server stop {t_stop:.1f}s, data folder copy + verify {t_copy:7.1f}s ({du(work / 'datadir-backup')}), "
              f"server start {t_start:.1f}s  {load()}", flush=True)
        shutil.rmtree(work / "datadir-backup")
        cluster.stop()
        t_cp, _ = timed(subprocess.run, ["cp", "-a", str(cluster.datadir), str(work / "cp-baseline")], check=True)
        shutil.rmtree(work / "cp-baseline")
        cluster.start(fast=True)
        a_total, b_total, c_total = t_backup + t_verify, t_bdump + t_bverify, t_stop + t_copy + t_start
        print(f"\nbackup inside the stop window, scale {a.scale:g}, {a.jobs} jobs ({load()}):\n"
              f"  A current dump backup + verify      {a_total:7.1f}s  x{a_total / c_total:5.2f} of C\n"
              f"  B parallel dump + scratch restore   {b_total:7.1f}s  x{b_total / c_total:5.2f} of C\n"
              f"  C data folder copy + verify (+stop/start) {c_total:7.1f}s  x{c_total / t_cp:5.2f} of cp -a\n"
              f"  baseline cp -a of the stopped data folder ({du(cluster.datadir)}) {t_cp:7.1f}s", flush=True)
        if a.backup_only:
            return
        cluster.psql("delete from access_log where log_id % 2 = 0", dbname="registry")
        t_restore, r = timed(restore_backup, work / "backup", dsn, harbor, data_volume=dv, jobs=a.jobs,
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
        if a.reuse:
            cluster.stop()
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
