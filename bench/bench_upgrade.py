"""Benchmark: the whole `harbor-upgrade run` on a large Harbor 1.10 installation.

Builds a Harbor 1.10 installation (bench/harbor_1_10.py: a database of
src/harbor_upgrade/data/harbor-1.10.0-fresh.sql + tests/support/seed_harbor.py at --scale,
≈53k artifact rows at 100) with the demo's registry storage (so nearly
every artifact row is database-only: the artifact walk is benchmarked on its own in
bench_artifacts.py), then times `run` step by step and prints

  * every step's seconds, and the part of the run that is the orchestration's own
    (preflight, journal, the pre-upgrade manifest census, verify);
  * the ratio to Harbor's own upgrade of the same database: its SQL (116 s at scale 100
    on this kind of machine, specs/db-migration.md §7) plus its serial artifact walk
    (about 110 artifacts/s through the registry API, tools/README.md) — which has no
    backup, no preflight and no verification.

    python bench/bench_upgrade.py [--scale 100]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harbor_1_10 import build  # noqa: E402
from harbor_upgrade.upgrade import Options, run  # noqa: E402

HARBOR_SQL_SECONDS_AT_100 = 116.0
HARBOR_ARTIFACTS_PER_SECOND = 110.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="hu-bench-upgrade-"))
    base.chmod(0o755)
    try:
        site = build(base, args.scale, args.seed)
        artifacts = site.artifact_rows
        print(f"built: scale {args.scale}, {artifacts:,} artifact rows in {site.seconds:.1f} s")
        try:
            t1 = time.monotonic()
            report = run(Options(str(site.harbor_yml), str(site.dir / "backup"), site.dsn, yes=True)).to_dict()
            total = time.monotonic() - t1
        finally:
            site.cluster.stop()
        if not report["ok"]:
            raise SystemExit(f"run failed: {report.get('error')}")
        steps = {s["name"]: s["seconds"] for s in report["steps"]}
        own = total - sum(v for k, v in steps.items() if k not in ("verify",))
        for name, secs in steps.items():
            print(f"  {name:<10} {secs:8.1f} s")
        print(f"run total: {total:.1f} s; orchestration's own part (preflight, journal, manifest census, "
              f"verify): {own:.1f} s ({100 * own / total:.0f}%)")
        harbor = HARBOR_SQL_SECONDS_AT_100 * args.scale / 100 + artifacts / HARBOR_ARTIFACTS_PER_SECOND
        print(f"Harbor's own upgrade of this database (SQL + serial artifact walk, no backup, no checks): "
              f"about {harbor:.0f} s; ratio run / Harbor = {total / harbor:.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
