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
  s3-*       the same baseline and backfill on S3 (moto on 127.0.0.1) over the first
             --s3-repos repositories uploaded under a rootdirectory

and the peak RSS of the backfill, its reader processes included. Targets: ours-fs ≥ 20×
baseline, ≥ 50 % of raw-read; ours-s3 ≥ 10× the S3 baseline; RSS ≤ 300 MB at 100k artifacts.

On moto every request costs the one moto process (one Python process, one core at most)
CPU; the bench starts moto answering S3 only (see moto_s3.py), and measures each S3 figure
behind two HTTP fronts of the same moto application: `keepalive` (a plain HTTP/1.1 server
that keeps connections alive, as S3 does) and `werkzeug` (moto's stock development server,
which closes every connection, starts a thread for each and logs each request). Besides the
rates it prints moto's CPU time per artifact for each side, the figure least disturbed by
the machine's other load. The Harbor-shaped walk costs moto 6 requests per artifact (2 of
them ListObjectsV2, which moto answers by scanning every key of the bucket); ours costs 2 GETs
per artifact (link files are proven by the listing) and 2 grouped listings per repository.
So the ratio grows with the bucket: measured 10.0–10.5× (keep-alive) and 7.0–7.6×
(werkzeug) with 40 repositories (17,900 objects), 15.2× and 13.1× with the default 80
(35,470 objects; the upload takes ≈3 minutes a front). A real registry's bucket holds far
more; real S3 lists in constant time but serves parallel readers without a one-core cap.

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
from artifacts_s3 import MotoServer, sample_files, upload  # noqa: E402
from artifacts_tree import TreeShape, generate, load_summary, repo_names  # noqa: E402
from proc_status import status_kib  # noqa: E402
from harbor_upgrade.postgres.cluster import LocalCluster  # noqa: E402

S3_BUCKET, S3_ROOT = "harbor-registry", "/harbor/registry"
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
    ap.add_argument("--s3-jobs", type=int, default=8,
                    help="--jobs of the backfill on S3 (on moto, 32 measured no faster than 8: moto's one "
                         "Python process is the limit)")
    ap.add_argument("--baseline-rows", type=int, default=3000)
    ap.add_argument("--s3-repos", type=int, default=80)
    ap.add_argument("--s3-baseline-rows", type=int, default=600)
    ap.add_argument("--moto-fronts", default="keepalive,werkzeug",
                    help="HTTP fronts of moto to measure S3 behind, comma-separated (keepalive, werkzeug)")
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-fs", action="store_true", help="only the S3 part")
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
        if not a.skip_fs:
            log("loading the 2.4.0-schema database ...")
            results["db"] = load_template(cluster, "bench_template", a.tree)

        if not (a.skip_baseline or a.skip_fs):
            log(f"baseline: Harbor-shaped walk through docker-registry, first {a.baseline_rows} rows ...")
            dsn = clone(cluster, "bench_template", "bench_baseline")
            with Registry(storage_root=storage_root) as reg:
                results["baseline"] = harbor_walk(reg.addr, dsn, limit=a.baseline_rows)
            log(f"baseline: {results['baseline']}")

        if not a.skip_fs:
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

        if a.py_spy and not a.skip_fs:
            log("profiling the filesystem backfill with py-spy ...")
            dsn = clone(cluster, "bench_template", "bench_prof")
            results["profile"] = run_backfill(dsn, str(storage_root), a.jobs, out / "ours-prof.log",
                                              wrap=["py-spy", "record", "-f", "raw", "-r", "50", "-o", str(a.py_spy),
                                                    "--"])

        if not a.skip_s3:
            repos = repo_names(TreeShape(repos=a.repos))[:a.s3_repos]
            load_template(cluster, "bench_s3_template", a.tree, repos=set(repos))
            results["s3"] = {front: bench_s3(a, cluster, storage_root, out, repos, front)
                             for front in a.moto_fronts.split(",")}
    finally:
        cluster.stop()

    print_figures(results)
    kept = out / ("results-s3.json" if a.skip_fs else "results.json")
    kept.write_text(json.dumps(results, indent=1))
    log(f"figures kept in {kept}")
    return 0


def bench_s3(a, cluster, storage_root: Path, out: Path, repos: list[str], front: str) -> dict:
    res: dict = {"repositories": len(repos), "moto_front": front}
    with MotoServer(front=front) as moto:
        client = moto.client()
        files = sample_files(storage_root, repos)
        log(f"s3 ({front}): uploading {len(files)} objects of {len(repos)} repositories to moto ...")
        res["objects"] = len(files)
        res["upload_s"] = round(upload(client, S3_BUCKET, S3_ROOT, storage_root, files), 1)
        log(f"s3 ({front}): uploaded in {res['upload_s']} s")
        s3 = {"endpoint": moto.endpoint, "bucket": S3_BUCKET, "rootdirectory": S3_ROOT,
              "access_key": os.environ["AWS_ACCESS_KEY_ID"], "secret_key": os.environ["AWS_SECRET_ACCESS_KEY"]}
        if not a.skip_baseline:
            log(f"s3 ({front}) baseline: docker-registry's S3 driver on moto, first {a.s3_baseline_rows} rows ...")
            dsn = clone(cluster, "bench_s3_template", "bench_s3_baseline")
            with Registry(s3=s3) as reg:
                cpu = moto.cpu_seconds()
                res["baseline"] = harbor_walk(reg.addr, dsn, limit=a.s3_baseline_rows)
                res["baseline"]["moto_cpu_ms_per_artifact"] = per_artifact(moto.cpu_seconds() - cpu,
                                                                           res["baseline"]["artifacts"])
            log(f"s3 ({front}) baseline: {res['baseline']}")
        log(f"s3 ({front}): ours, --jobs {a.s3_jobs} ...")
        dsn = clone(cluster, "bench_s3_template", "bench_s3")
        cpu = moto.cpu_seconds()
        run = run_backfill(dsn, f"s3://{S3_BUCKET}{S3_ROOT}", a.s3_jobs, out / f"ours-s3-{front}.log",
                           extra=["--s3-endpoint", moto.endpoint, "--s3-region", "us-east-1"])
        moto_cpu = moto.cpu_seconds() - cpu
        run["rows"] = check_rows(dsn)
        run["artifacts_per_s"] = rate(run["rows"]["artifacts"], run["seconds"])
        run["moto_cpu_ms_per_artifact"] = per_artifact(moto_cpu, run["rows"]["artifacts"])
        res["ours"] = run
        log(f"s3 ({front}) ours: {run}")
        client.close()
    return res


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
    print(f"{'what':<40} {'artifacts':>10} {'seconds':>9} {'artifacts/s':>12} {'moto CPU ms/art':>16}")
    rows = [("baseline (Harbor-shaped, sampled)", base), ("raw read (1 thread)", raw), ("ours, filesystem", ours)]
    s3 = r.get("s3") or {}
    for front, f in s3.items():
        rows += [(f"S3 baseline (sampled), moto {front}", f.get("baseline", {})),
                 (f"ours, S3, moto {front}", f.get("ours", {}))]
    for name, d in rows:
        n = d.get("artifacts", d.get("rows", {}).get("artifacts") if isinstance(d.get("rows"), dict) else None)
        print(f"{name:<40} {n!s:>10} {d.get('seconds', ''):>9} {d.get('artifacts_per_s', ''):>12}"
              f" {d.get('moto_cpu_ms_per_artifact', ''):>16}")
    print()
    print(f"ours-fs / baseline      = {ratio(ours.get('artifacts_per_s'), base.get('artifacts_per_s'))} (target ≥ 20×)")
    print(f"ours-fs / raw read      = {ratio(ours.get('artifacts_per_s'), raw.get('artifacts_per_s'))} "
          f"(target ≥ 0.5×)")
    for front, f in s3.items():
        b, o = f.get("baseline", {}), f.get("ours", {})
        print(f"ours-s3 / S3 baseline, moto {front:<9} = {ratio(o.get('artifacts_per_s'), b.get('artifacts_per_s'))}"
              f" (target ≥ 10×); moto CPU per artifact, baseline / ours = "
              f"{ratio(b.get('moto_cpu_ms_per_artifact'), o.get('moto_cpu_ms_per_artifact'))}")
    if ours:
        print(f"peak RSS of the backfill (filesystem, all its processes) = {ours.get('peak_rss_mb')} MB "
              f"(target ≤ 300 MB; largest process {ours.get('peak_rss_one_process_mb')} MB); "
              f"exit code {ours.get('exit_code')}")
    for front, f in s3.items():
        if f.get("ours"):
            print(f"peak RSS of the backfill (S3, moto {front}) = {f['ours'].get('peak_rss_mb')} MB; "
                  f"exit code {f['ours'].get('exit_code')}")


if __name__ == "__main__":
    sys.exit(main())
