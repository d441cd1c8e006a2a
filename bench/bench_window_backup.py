#!/usr/bin/env python3
"""Benchmark: the stop window's backup alone, the data folder copied in full (before) beside the copy
`run --prepare` took while the server ran, finished in the window (after), on the same database.

Builds a Harbor 1.10 database on PostgreSQL 15 at --scale (bench_backup.build: fresh 1.10 schema +
tests/support/seed_harbor.py, VACUUM ANALYZE), then, --rounds times, side by side:

  before: the server stopped, `create_datadir_backup` (the folder copied with its twin, sha256 in the
          same pass, a throwaway server on the twin, census compared), the server started again;
  after:  `prepare_datadir` while the server runs (not in the window: its seconds printed apart), what
          Harbor's users do meanwhile (--changes: access_log rows, artifact pulls counted, a push of
          tags), the server stopped, `create_datadir_backup(prepared_in=...)` (every file read and
          hashed, those that differ copied again, the same proof), the server started again.

Each prints its copy seconds, its proof seconds (throwaway server start + census) and, for after, how
many files were copied again; the window figure is stop + backup + start; the ratio after/before is
measured in the same run. The machine's load average is printed beside every figure.

    python3 bench/bench_window_backup.py --scale 100 [--rounds 2] [--changes 2000] [--reuse DIR]

Measured 2026-12-02 (scale 100: 256 MB database, 1,554 files; --changes 2000; 2 cores shared with other
helpers, so every second is inflated; the ratios are side by side), final version (each MiB compared by
its sha256), 4 rounds at load 15-26: the window's copy x0.18-0.31 of a full copy (3.3-9.5 s against
16.0-32.2 s), 17 files written again (10.7-12.3 MiB), the backup step x0.31-0.48 (6.4-17.6 s against
19.7-41.8 s), the window (stop + backup + start) x0.33-0.50. The proof (throwaway server + census) is
the same both ways, 0.6-3 s (10-20% of the backup after): not dominant. run --prepare's live copy takes
14-35 s while Harbor serves. The rest of the backup step (harbor folder, data volume, manifest) is ~2-3 s
both ways. A first version that copied again whole files (66 MiB) gave copy x0.25-0.44.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_backup import build, installation  # noqa: E402
from harbor_upgrade.backup import Census, create_datadir_backup, verify_backup  # noqa: E402
from harbor_upgrade.backup.prepared import prepare_datadir  # noqa: E402
from harbor_upgrade.postgres.cluster import LocalCluster, find_binaries  # noqa: E402
from harbor_upgrade.postgres.server import server_user  # noqa: E402
from harbor_upgrade.postgres.tools import Conn  # noqa: E402


def load() -> str:
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def meanwhile(cluster: LocalCluster, changes: int) -> None:
    """What Harbor's users do between --prepare and the stop: log entries, pulls, a few pushed tags."""
    cluster.psql(f"""INSERT INTO access_log (username, project_id, repo_name, repo_tag, guid, operation, op_time)
                     SELECT 'bench', 1, 'library/app', 'v' || g, '', 'pull', now()
                     FROM generate_series(1, {changes}) g""", dbname="registry")
    cluster.psql(f"UPDATE artifact SET pull_time = now() WHERE id IN (SELECT id FROM artifact ORDER BY id "
                 f"LIMIT {max(1, changes // 10)})", dbname="registry")
    cluster.psql("""INSERT INTO artifact (project_id, repo, tag, digest, kind, creation_time, push_time)
                    SELECT project_id, name || '/pushed', 'in-window-' || g || '-' || clock_timestamp(),
                           'sha256:' || md5(g::text) || md5(name), 'Docker-Image', now(), now()
                    FROM project, generate_series(1, 3) g""", dbname="registry")


def backup(cluster: LocalCluster, harbor: Path, dv: Path, out: Path, jobs: int,
           prepared_in: Path | None) -> dict:
    with Conn.parse(cluster.dsn("registry")).connect() as c:
        census = Census.read(c)
    stats: dict = {}
    t0 = time.monotonic()
    cluster.stop()
    t1 = time.monotonic()
    create_datadir_backup(cluster.datadir, harbor, out, data_volume=dv, expect=census, jobs=jobs,
                          prepared_in=prepared_in, stats=stats)
    t2 = time.monotonic()
    cluster.start(fast=True)
    t3 = time.monotonic()
    assert verify_backup(out, restore_check=False).ok
    return {**stats, "stop": t1 - t0, "backup": t2 - t1, "start": t3 - t2, "window": t3 - t0, "load": load()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--changes", type=int, default=2000, help="access_log rows written between prepare and stop")
    ap.add_argument("--reuse", type=Path, help="build the database here once, reuse it afterwards (kept)")
    a = ap.parse_args(argv)
    base = a.reuse.resolve() if a.reuse else Path(tempfile.mkdtemp(prefix="hu-bench-window-backup-"))
    reused = a.reuse is not None and (base / "database" / "pg15" / "PG_VERSION").exists()
    if not reused:
        base.mkdir(exist_ok=True)
        pw = server_user()
        (base / "database").mkdir()
        shutil.copystat(base, base / "database")
        if pw is not None:
            os.chown(base, pw.pw_uid, pw.pw_gid)
            os.chown(base / "database", pw.pw_uid, pw.pw_gid)
    work = base / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        if reused:
            cluster = LocalCluster(base / "database" / "pg15", binaries=find_binaries(major=15))
            cluster.start(fast=True)
        else:
            cluster = build(base, a.scale, a.seed)
        size = cluster.psql("select pg_size_pretty(pg_database_size('registry'))").strip()
        harbor, dv = installation(base)
        print(f"scale {a.scale:g}: database {size}  [{load()}]", flush=True)
        rows = []
        for n in range(a.rounds):
            before = backup(cluster, harbor, dv, work / f"full-{n}", a.jobs, None)
            shutil.rmtree(work / f"full-{n}")
            t0 = time.monotonic()
            prepare_datadir(cluster.datadir, work, a.jobs, lambda _m: None)
            prepare_s = time.monotonic() - t0
            meanwhile(cluster, a.changes)
            after = backup(cluster, harbor, dv, work / f"prepared-{n}", a.jobs, work)
            shutil.rmtree(work / f"prepared-{n}")
            p = after["prepared"]
            print(f"round {n + 1}: before: copy {before['copy_seconds']:.1f} s + proof "
                  f"{before['prove_seconds']:.1f} s, backup {before['backup']:.1f} s, window (stop + backup + start) "
                  f"{before['window']:.1f} s "
                  f"[{before['load']}]", flush=True)
            print(f"         after:  run --prepare's live copy {prepare_s:.1f} s (Harbor serving); in the window copy "
                  f"{after['copy_seconds']:.1f} s ({p['copied']:,} of {p['files']:,} files copied again, "
                  f"{p['bytes_copied'] / 2**20:,.1f} MiB; {p['removed']} removed) + proof {after['prove_seconds']:.1f} "
                  f"s, backup {after['backup']:.1f} s, window {after['window']:.1f} s [{after['load']}]", flush=True)
            print(f"         ratio after/before: backup x{after['backup'] / before['backup']:.2f}, copy "
                  f"x{after['copy_seconds'] / before['copy_seconds']:.2f}, window "
                  f"x{after['window'] / before['window']:.2f}", flush=True)
            rows.append((before, after))
        cluster.stop()
    finally:
        if not a.reuse:
            shutil.rmtree(base, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
