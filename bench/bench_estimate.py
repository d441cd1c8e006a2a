"""Benchmark: plan's estimate against the real run, step by step (issue 13 item 3).

Builds a Harbor 1.10 installation (bench/harbor_1_10.py): the database of tests/support/seed_harbor.py
at --scale whose repositories include those of a generated storage tree
(bench/artifacts_tree.py, --tree-repos repositories of 50 tags: 400 ≈ 22,000 artifacts) in
the exact distribution layout under data_volume/registry. Then, through the CLI as an
operator types it:

  1. ``plan --json``: its wall time, the part of it the estimate took, and the estimate of
     every step and of the stop window;
  2. ``run --yes --json``: every step's seconds and the run's wall time (the window: Harbor
     is stopped for all of it today);

and prints estimate, actual and their ratio per step and for the window, PASS when within
±50 % (a step under 1 s passes within ±0.5 s: below that the noise of a loaded machine is
the figure), with the load average beside.

    python bench/bench_estimate.py                      # scale 100 + 22,000 artifacts
    python bench/bench_estimate.py --scale 350 --tree-repos 2000
    python bench/bench_estimate.py --calibrate          # fits the rates at two sizes and
                                                        # writes src/harbor_upgrade/data/estimate_rates.json

--calibrate builds two installations (--calibrate-at, default scale 20 with 80 tree
repositories, and scale 100 with 400), times the run of each and each database release
step (``db migrate --json`` on a copy of the database), and fits the lines of
upgrade/estimate.py through the two points; the probe's time on this machine is stored
beside them. Re-run it after the steps change speed.

Measured 2026-12-02 (2 cores, load 18-20, rates calibrated at 14:31 on seed 1; checked on seed 2,
scale 100 + 22,000 artifacts): plan 15.4 s wall of which the estimate 6.1 s; estimate / actual:
backup 124/86 s, config 0.3/0.2, database 92/75, artifacts 136/158, scanner 0.1/0.0, verify
11/8, window 408/371 s (1.10): PASS on every line. Not measured: the engine step (its line is
not calibrated), scale 350.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from artifacts_tree import TreeShape  # noqa: E402
from harbor_1_10 import Site, kept_tree  # noqa: E402
from harbor_1_10 import build as build_site  # noqa: E402
from harbor_upgrade.upgrade import estimate as est  # noqa: E402

ROOT = HERE.parent
RATES = ROOT / "src" / "harbor_upgrade" / "data" / est.RATES_FILE
CLI = "import sys; from harbor_upgrade.cli import main; sys.exit(main(sys.argv[1:]))"
TOLERANCE = 0.5
SMALL_SECONDS = 1.0
SMALL_TOLERANCE = 0.5


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def build(base: Path, scale: float, tree_repos: int, seed: int, tree_seed: int, trees: Path) -> Site:
    tree = None
    if tree_repos:
        tree = trees / f"tree-{tree_repos}-seed{tree_seed}"
        summary = kept_tree(tree, TreeShape(repos=tree_repos, seed=tree_seed))   # kept for the next runs
        log(f"storage tree: {tree_repos} repositories, {summary['artifacts']:,} artifacts, "
            f"{summary['files']:,} files (generated in {summary['seconds']} s, kept in {tree})")
    site = build_site(base, scale, seed, tree)
    log(f"built: scale {scale}, {site.artifact_rows:,} artifact rows in {site.seconds:.0f} s ({load()})")
    return site


def cli(*args: str) -> tuple[dict, float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True)
    seconds = time.monotonic() - t0
    try:
        return json.loads(proc.stdout), seconds
    except json.JSONDecodeError:
        raise SystemExit(f"{args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}") from None


def plan(site: Site) -> tuple[dict, float]:
    report, seconds = cli("plan", "--harbor-yml", str(site.harbor_yml), "--dsn", site.dsn, "--json")
    if "estimate" not in report:
        raise SystemExit(f"plan gave no estimate: {json.dumps(report.get('checks'))[:2000]}")
    return report, seconds


def run(site: Site) -> tuple[dict, float]:
    report, seconds = cli("run", "--harbor-yml", str(site.harbor_yml), "--dsn", site.dsn, "--backup-dir",
                          str(site.base / "backup"), "--yes", "--json")
    if not report.get("ok"):
        raise SystemExit(f"run failed: {report.get('error')}")
    return report, seconds


def release_seconds(site: Site) -> dict[str, float]:
    """Each release step's seconds, on a copy of the database (db migrate --json)."""
    site.cluster.createdb("registry_copy", template="registry")
    try:
        report, _ = cli("db", "migrate", "--dsn", site.cluster.dsn("registry_copy"), "--json")
    finally:
        site.cluster.psql("DROP DATABASE IF EXISTS registry_copy")
    return {s["release"]: s["seconds"] for s in report["steps"]}


def verdict(estimate: float, actual: float) -> str:
    if actual < SMALL_SECONDS and abs(estimate - actual) <= SMALL_TOLERANCE:
        return "PASS (±0.5 s)"
    return "PASS" if abs(estimate - actual) <= TOLERANCE * actual else "FAIL"


def compare(plan_report: dict, plan_seconds: float, run_report: dict, run_seconds: float) -> bool:
    e = plan_report["estimate"]
    actual = {s["name"]: s["seconds"] for s in run_report["steps"]}
    inputs = e["inputs"]
    storage = inputs["storage"]
    print(f"plan: {plan_seconds:.1f} s wall, of which the estimate's inputs {inputs['gather_seconds']:.2f} s "
          f"(plan without them ≈ {plan_seconds - inputs['gather_seconds']:.1f} s); speed factor "
          f"{inputs['speed']:.2f}; storage sample: {storage['sampled_artifacts']} artifacts in "
          f"{storage['sampled_repositories']} repositories, {storage['sampled_seconds']:.2f} s, "
          f"{storage['repositories']} repositories listed in {storage['list_seconds']:.2f} s, "
          f"{storage['artifacts_in_storage']:,} artifacts to read with {storage['readers']} readers")
    print(f"{'step':<12}{'estimate':>10}{'actual':>10}{'ratio':>8}  verdict   ({load()})")
    ok = True
    for name, secs in actual.items():
        guess = e["steps"].get(name, 0.0)
        v = verdict(guess, secs)
        ok &= v.startswith("PASS")
        print(f"{name:<12}{guess:>9.1f}s{secs:>9.1f}s{guess / secs if secs else float('nan'):>8.2f}  {v}")
    window = e["window_seconds"]
    v = verdict(window, run_seconds)
    ok &= v.startswith("PASS")
    print(f"{'window':<12}{window:>9.1f}s{run_seconds:>9.1f}s{window / run_seconds:>8.2f}  {v}  "
          "(the whole run command, Harbor stopped throughout)")
    print(f"prepare (run --prepare's storage read, outside the window): estimate {e['prepare']['seconds']:.1f} s; "
          f"window with it ≈ {e['prepare']['window_seconds']:.1f} s")
    return ok


def measure(args, scale: float, tree_repos: int, calibrate: bool) -> dict:
    base = Path(tempfile.mkdtemp(prefix="hu-bench-estimate-"))
    base.chmod(0o755)
    site = None
    try:
        site = build(base, scale, tree_repos, args.seed, args.tree_seed, Path(args.trees).resolve())
        releases = release_seconds(site) if calibrate else {}
        plan_report, plan_seconds = plan(site)
        log(f"plan: {plan_seconds:.1f} s ({load()})")
        run_report, run_seconds = run(site)
        log(f"run: {run_seconds:.1f} s ({load()})")
        ok = compare(plan_report, plan_seconds, run_report, run_seconds)
        return {"plan": plan_report, "run": run_report, "run_seconds": run_seconds, "releases": releases, "ok": ok}
    finally:
        if site is not None:
            site.cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def calibrate(points: list[dict]) -> est.Rates:
    """Lines through the measured points, in the seconds of the calibrating machine (each
    point scaled by the probe of its own plan against their mean)."""
    old = est.load_rates()
    probes = [p["plan"]["estimate"]["inputs"]["speed"] * old.probe_seconds for p in points]
    probe = sum(probes) / len(probes)

    def norm(p: dict, seconds: float) -> float:
        return seconds * probe / (p["plan"]["estimate"]["inputs"]["speed"] * old.probe_seconds)

    def inputs(p: dict) -> dict:
        return p["plan"]["estimate"]["inputs"]

    def actual(p: dict, name: str) -> float:
        return next(s["seconds"] for s in p["run"]["steps"] if s["name"] == name)

    drivers = {"backup": "database_bytes", "config": None, "database": None, "scanner": None,
               "verify": "total_rows", "engine": "cluster_bytes"}
    steps: dict[str, est.Line] = {}
    for name, driver in drivers.items():
        if name == "engine":
            steps[name] = old.steps.get(name, est.Line(5.0, 1e-8))
            continue
        if name == "database":   # the part outside the release steps: the step's seconds minus theirs
            pts = [(0.0, norm(p, actual(p, name) - sum(p["releases"].values()))) for p in points]
        else:
            pts = [(float(inputs(p)[driver]) if driver else 0.0, norm(p, actual(p, name))) for p in points]
        steps[name] = est.fit(pts)
    # artifacts: what the sampled read does not explain, against the database's artifacts
    pts = []
    for p in points:
        i = inputs(p)
        s = i["storage"]
        read = (s["seconds_per_artifact"] or 0.0) * s["artifacts_in_storage"] / max(1, s["readers"])
        pts.append((float(i["artifact_rows"]), max(0.0, norm(p, actual(p, "artifacts") - read))))
    steps["artifacts"] = est.fit(pts)
    steps[est.RUN_OWN] = est.fit([(float(inputs(p)["artifact_rows"]),
                                   norm(p, p["run_seconds"] - sum(s["seconds"] for s in p["run"]["steps"])))
                                  for p in points])
    releases = {}
    for name in points[0]["releases"]:
        rows = {p_i: dict(inputs(p)["releases"]).get(name, 0) for p_i, p in enumerate(points)}
        releases[name] = est.fit([(float(rows[k]), norm(p, p["releases"][name])) for k, p in enumerate(points)])
    measured = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "by": "bench/bench_estimate.py --calibrate",
                "points": [{"scale": p["scale"], "tree_repos": p["tree_repos"],
                            "artifact_rows": inputs(p)["artifact_rows"], "run_seconds": round(p["run_seconds"], 1)}
                           for p in points],
                "load": load()}
    return est.Rates(probe, steps, releases, measured)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=100)
    ap.add_argument("--tree-repos", type=int, default=400, help="storage tree repositories (50 tags each; 0: the "
                                                                "demo's storage)")
    ap.add_argument("--seed", type=int, default=1, help="seed_harbor's seed")
    ap.add_argument("--tree-seed", type=int, default=1)
    ap.add_argument("--trees", default=str(HERE / "out"), help="where generated storage trees are kept")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--calibrate-at", default="20:80,100:400", help="scale:tree-repos pairs for --calibrate")
    args = ap.parse_args(argv)
    log(f"bench_estimate ({load()})")
    if not args.calibrate:
        result = measure(args, args.scale, args.tree_repos, False)
        print("RESULT:", "PASS" if result["ok"] else "FAIL")
        return
    points = []
    for pair in args.calibrate_at.split(","):
        scale, repos = pair.split(":")
        p = measure(args, float(scale), int(repos), True)
        p["scale"], p["tree_repos"] = float(scale), int(repos)
        points.append(p)
    rates = calibrate(points)
    RATES.write_text(json.dumps(rates.to_dict(), indent=1) + "\n")
    log(f"wrote {RATES}")


if __name__ == "__main__":
    main()
