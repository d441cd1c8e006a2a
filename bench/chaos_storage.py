"""Hostile registry storage: `harbor-upgrade artifacts` on trees an attacker or an accident
leaves (FIFOs, symbolic links to devices and out of the root, symlink loops, 2 GB sparse
and 5 MB objects, JSON nesting 900 and 20,000 levels, paths over 4,096 bytes, names with
terminal controls or bytes that are not UTF-8), each run in a subprocess with a timeout.

    python bench/chaos_storage.py            # every case once (34), in a seeded order
    python bench/chaos_storage.py -n 60      # more runs (the cases again, in new orders)

Also the ``storage`` part of bench/chaos.py (``campaign``). The cases and the verdict are
those of tests/integration/test_artifacts_hostile_storage.py (hostile_trees): a run must
exit 1 with "completed with N problems" naming each hostile object's repository, digest and
reason, fill the good repository exactly as a clean tree does, print no traceback and no
terminal control, read nothing outside the storage root (access times of a frozen folder
beside it) and stay under a peak RSS bound. Printed: runs, problems reported, peak RSS, and
the failure counts (tracebacks, hangs, outside reads, ...), which must all be 0.
"""
from __future__ import annotations

import argparse
import collections
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # REPO: tests.support

from harbor_upgrade import db  # noqa: E402
from harbor_upgrade.postgres.cluster import LocalCluster  # noqa: E402
from tests.support.artifacts import fresh_schema  # noqa: E402
from tests.support.hostile_trees import CASES, run_case, run_clean  # noqa: E402

#: what the campaign counts as failures (bench/chaos.py adds them to its own)
FAILURES = ("traceback", "hang", "outside-read", "unexpected-exit", "not-reported", "control-in-output",
            "rows-differ", "memory")


def campaign(base: Path, n: int = 25, seed: int = 1, verbose: bool = False) -> collections.Counter:
    """Run at least n hostile cases (every case at least once) under base; the counts."""
    counts: collections.Counter = collections.Counter({k: 0 for k in FAILURES})
    examples: dict[str, str] = {}
    rng = random.Random(seed)
    order: list[str] = []
    while len(order) < max(n, len(CASES)):
        batch = sorted(CASES)
        rng.shuffle(batch)
        order += batch
    base.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster.create(fast=True)   # a throwaway cluster of its own, removed when stopped
    cluster.start()
    try:
        cluster.createdb("template_harbor")
        template = cluster.dsn("template_harbor")
        cluster.psql(dbname="template_harbor", file=fresh_schema())
        db.migrate(template)
        cluster.createdb("clean", template="template_harbor")
        clean, clean_rows = run_clean(cluster.dsn("clean"), base / "clean")
        if clean["code"] != 0:
            raise SystemExit(f"a clean tree does not pass: {clean['out'] + clean['err']}")
        counts["clean-peak-rss-mb"] = clean["peak_rss"] >> 20
        for i, case in enumerate(order):
            d = base / f"{i:03d}-{case}"
            name = f"case{i}"
            cluster.createdb(name, template="template_harbor")
            result, wrong = run_case(case, cluster.dsn(name), d, clean_rows)
            counts["storage-runs"] += 1
            counts["problems-reported"] += len((result["report"] or {}).get("problems", []))
            counts["peak-rss-mb"] = max(counts["peak-rss-mb"], result["peak_rss"] >> 20)
            counts["slowest-run-s"] = max(counts["slowest-run-s"], round(result["seconds"]))
            for kind, detail in wrong:
                counts[kind] += 1
                examples.setdefault(kind, f"{case}: {detail}"[-1500:])
            if verbose:
                print(f"  {case:28} exit {result['code']}  {result['seconds']:5.1f} s  "
                      f"{result['peak_rss'] >> 20:4d} MB  {', '.join(k for k, _ in wrong) or 'ok'}", flush=True)
            cluster.dropdb(name)
            shutil.rmtree(d, ignore_errors=True)
    finally:
        cluster.stop()
    for kind, example in examples.items():
        print(f"-- first {kind}: {example}")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=len(CASES), help="runs (at least every case once)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="harbor-upgrade-chaos-storage-", dir="/tmp"))
    base.chmod(0o755)
    began = time.monotonic()
    try:
        counts = campaign(base, a.n, a.seed, verbose=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nhostile storage: {counts['storage-runs']} runs of {len(CASES)} cases in "
          f"{time.monotonic() - began:.0f} s, seed {a.seed}")
    for k in ("problems-reported", "peak-rss-mb", "clean-peak-rss-mb", "slowest-run-s"):
        print(f"  {k:18} {counts[k]}")
    failed = 0
    for k in FAILURES:
        print(f"  {k:18} {counts[k]}")
        failed += counts[k]
    print(f"\nchaos storage: {'PASS' if failed == 0 else 'FAIL'} ({failed} failures)")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
