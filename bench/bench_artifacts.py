#!/usr/bin/env python3
"""Benchmark of `harbor-upgrade artifacts` against its yardsticks (issue 4, item 6).

On one generated storage tree (exact distribution layout, ≈110k artifacts by default) and
its 2.4.0-schema database as the SQL upgrade leaves a 1.10 one, it measures, in artifacts
per second:

  baseline   Harbor-shaped walk: docker-registry on 127.0.0.1 serving the tree, per artifact
             GET manifest + GET config, sequential, then one UPDATE per row (on the first
             --baseline-rows rows; a rate, so it extrapolates to the whole tree)
  raw-read   every manifest and config file read and parsed once, one thread
  ours-fs    `harbor-upgrade artifacts --import-untagged` on the filesystem (the whole tree)

and the peak RSS of the backfill, its reader processes included. Targets: ours-fs ≥ 20×
baseline, ≥ 50 % of raw-read; RSS ≤ 300 MB at 100k artifacts.

S3 is measured by bench_artifacts_s3real.py, on SeaweedFS at 0 and 40 ms per request.

    python bench/bench_artifacts.py                         # full size (tree kept in bench/out)
    python bench/bench_artifacts.py --repos 40 --tree /tmp/t # a quick run
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402

from artifacts_baseline import Registry, harbor_walk, raw_read  # noqa: E402
from artifacts_db import clone, load_template  # noqa: E402
from artifacts_tree import TreeShape, generate, load_summary  # noqa: E402
from harbor_upgrade.postgres.cluster import LocalCluster  # noqa: E402
from proc_status import status_kib  # noqa: E402

RUN_CLI = "import sys; from harbor_upgrade.cli import main; sys.exit(main(sys.argv[1:]))"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_backfill(dsn: str, storage: str, jobs: int, logfile: Path, extra: list[str] = (),
                 wrap: list[str] = ()) -> dict:
    """Run the CLI in a child process; wall time, CPU and the peak RSS of its processes."""
    report = logfile.with_suffix(".report.json")
    args = [*wrap, sys.executable, "-c", RUN_CLI, "artifacts", "--dsn", dsn, "--storage", storage,
            "--jobs", str(jobs), "--import-untagged", "--report", str(report), *extra]
    with open(logfile, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        memory = RssSampler(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - t0
        memory.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit_code": proc.returncode, "seconds": round(seconds, 2),
            "peak_rss_mb": memory.peak_total_mb, "peak_rss_one_process_mb": memory.peak_one_mb,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "log": str(logfile),
            "report": str(report) if report.exists() else None}


class RssSampler:
    """Samples, every 20 ms, the resident memory of a process and every process below it (the
    backfill's reader processes): the peak of their sum, and of the largest one.

    Not wait4's ru_maxrss (proc_status): here it was this benchmark after uploading tens of
    thousands of objects, not the backfill."""

    def __init__(self, pid: int):
        self.pid, self.total, self.one = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _tree(pid: int) -> list[int]:
        found, stack = [], [pid]
        while stack:
            p = stack.pop()
            found.append(p)
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{task}/children") as f:
                        stack += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = [status_kib(p, "VmRSS") or 0 for p in self._tree(self.pid)]
            self.total, self.one = max(self.total, sum(sizes)), max(self.one, max(sizes, default=0))
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_total_mb(self) -> float:
        return round(self.total / 1024, 1)

    @property
    def peak_one_mb(self) -> float:
        return round(self.one / 1024, 1)


def check_rows(dsn: str) -> dict:
    """What the run left in the database (ours must abstract every artifact of the tree)."""
    with psycopg.connect(dsn) as db:
        one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        return {"artifacts": one("SELECT count(*) FROM artifact"),
                "references": one("SELECT count(*) FROM artifact_reference"),
                "without_extra_attrs": one("SELECT count(*) FROM artifact WHERE extra_attrs IS NULL"),
                "data_version": one("SELECT max(version) FROM data_migrations")}


def rate(artifacts: int, seconds: float) -> float:
    return round(artifacts / seconds, 1) if seconds else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=HERE / "out" / "artifacts", help="where the tree is kept/made")
    ap.add_argument("--repos", type=int, default=2000)
    ap.add_argument("--tags-per-repo", type=int, default=50)
    ap.add_argument("--index-every", type=int, default=25)
    ap.add_argument("--gen-jobs", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=8, help="--jobs of the backfill on the filesystem")
    ap.add_argument("--baseline-rows", type=int, default=3000)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--py-spy", type=Path, help="also profile the filesystem backfill with py-spy into this file")
    a = ap.parse_args()

    shape = TreeShape(repos=a.repos, tags_per_repo=a.tags_per_repo, index_every=a.index_every)
    summary = load_summary(a.tree)
    if summary is None:
        log(f"generating {shape.expected_artifacts} artifacts in {a.tree} ...")
        summary = generate(a.tree, shape, jobs=a.gen_jobs)
        log(f"generated: {summary}")
    elif summary["shape"] != json.loads(json.dumps(shape.__dict__)):
        sys.exit(f"{a.tree} holds a tree of another shape {summary['shape']}; pick another --tree")
    storage_root = a.tree / "storage"
    out = a.tree / "runs"
    out.mkdir(exist_ok=True)
    results: dict = {"tree": summary}

    cluster = LocalCluster.create(fast=True)
    cluster.start()
    try:
        log("loading the 2.4.0-schema database ...")
        results["db"] = load_template(cluster, "bench_template", a.tree)

        if not a.skip_baseline:
            log(f"baseline: Harbor-shaped walk through docker-registry, first {a.baseline_rows} rows ...")
            dsn = clone(cluster, "bench_template", "bench_baseline")
            with Registry(storage_root=storage_root) as reg:
                results["baseline"] = harbor_walk(reg.addr, dsn, limit=a.baseline_rows)
            log(f"baseline: {results['baseline']}")

        log("raw read of every manifest and config, one thread ...")
        results["raw_read"] = raw_read(storage_root)
        log(f"raw read: {results['raw_read']}")

        log(f"ours on the filesystem, --jobs {a.jobs} ...")
        dsn = clone(cluster, "bench_template", "bench_fs")
        run = run_backfill(dsn, str(storage_root), a.jobs, out / "ours-fs.log")
        run["rows"] = check_rows(dsn)
        run["artifacts_per_s"] = rate(run["rows"]["artifacts"], run["seconds"])
        results["ours_fs"] = run
        log(f"ours fs: {run}")

        if a.py_spy:
            log("profiling the filesystem backfill with py-spy ...")
            dsn = clone(cluster, "bench_template", "bench_prof")
            results["profile"] = run_backfill(dsn, str(storage_root), a.jobs, out / "ours-prof.log",
                                              wrap=["py-spy", "record", "-f", "raw", "-r", "50", "-o", str(a.py_spy),
                                                    "--"])
    finally:
        cluster.stop()

    print_figures(results)
    kept = out / "results.json"
    kept.write_text(json.dumps(results, indent=1))
    log(f"figures kept in {kept}")
    return 0


def per_artifact(seconds: float, artifacts: int) -> float | None:
    return round(seconds * 1000 / artifacts, 2) if artifacts else None


def print_figures(r: dict) -> None:
    def ratio(x, y):
        return f"{x / y:.1f}×" if x and y else "n/a"

    ours = r.get("ours_fs", {})
    raw = r.get("raw_read", {})
    base = r.get("baseline", {})
    print()
    print(f"tree: {r['tree']['artifacts']} artifacts ({r['tree']['tags']} tags), {r['tree']['files']} files")
    print(f"{'what':<40} {'artifacts':>10} {'seconds':>9} {'artifacts/s':>12}")
    rows = [("baseline (Harbor-shaped, sampled)", base), ("raw read (1 thread)", raw), ("ours, filesystem", ours)]
    for name, d in rows:
        n = d.get("artifacts", d.get("rows", {}).get("artifacts") if isinstance(d.get("rows"), dict) else None)
        print(f"{name:<40} {n!s:>10} {d.get('seconds', ''):>9} {d.get('artifacts_per_s', ''):>12}")
    print()
    print(f"ours-fs / baseline      = {ratio(ours.get('artifacts_per_s'), base.get('artifacts_per_s'))} (target ≥ 20×)")
    print(f"ours-fs / raw read      = {ratio(ours.get('artifacts_per_s'), raw.get('artifacts_per_s'))} "
          f"(target ≥ 0.5×)")
    if ours:
        print(f"peak RSS of the backfill (filesystem, all its processes) = {ours.get('peak_rss_mb')} MB "
              f"(target ≤ 300 MB; largest process {ours.get('peak_rss_one_process_mb')} MB); "
              f"exit code {ours.get('exit_code')}")


if __name__ == "__main__":
    sys.exit(main())
