"""How long each step of ``run`` will take on this installation, before anything runs.

``gather`` reads what the estimate needs — cheaply, read-only: the database's size, the rows of
its tables (the planner's statistics), the rows each pending release step touches, a timed
probe query that says how fast the server is now (``db.costs``), and a sample of registry
storage: the repositories listed, a few hundred manifests and configs read and abstracted
through the backfill's own readers (``artifacts.examine``: bounded, hostile-safe), timed.
Then one estimator per step name turns those inputs into seconds.

Where the rates come from (decided here, measured by ``bench/bench_estimate.py --calibrate``):

- Storage is measured, never assumed: its speed depends on the disk or the object store's
  latency, which no constant knows. The sample's seconds per artifact, divided by the readers
  the backfill would use (processes, one per CPU, on a filesystem; ``--jobs`` threads on an
  object store), times the artifacts of the database whose repository storage has.
- Everything PostgreSQL does (the release steps, the dump and its check, pg_upgrade, the
  artifact rows written, verify) is a straight line ``a + b * driver`` per step — per release
  step for the database, its driver the rows of the tables its statements touch — fitted on two
  installations of different size by the calibration bench and kept in
  ``data/estimate_rates.json`` with the probe's time on the calibrating machine. At plan time
  the probe runs again (three times, the best counts: tens of milliseconds) and every rate is
  scaled by now / then, so a slower or busier server gets a longer estimate. A timed run of the
  real statements at plan time would be more exact but costs what it measures; a constant
  without the probe would be right only on the calibrating machine.
- The engine step has one line per mode (``engine-copy``, ``engine-link``) in the bytes of the
  whole cluster, fitted on real moves of the calibration's clusters to the next installed major
  (pg_upgrade --check, pg_upgrade, the row counts compared, the statistics rebuilt, the servers
  stopped and started). Dump and restore is not measured: the backup's line stands in.
- A line the rates file lacks never fails the plan: a release step added after the calibration
  gets the median release's line, a step or mode another fallback (``Rates.step``), and the
  estimate names them (``not_calibrated``). Adding a release touches only its two modules.

The stop window is every step of ``run`` today (Harbor must be stopped for all of them) plus
the run's own part (preflight, the census of manifests, the journal). With ``run --prepare``
the storage read happens while Harbor still serves: ``prepare.seconds`` is that read, and the
window shrinks by it but for listing every repository again (timed on the sample: the
fingerprint that tells a repository changed since); the repositories whose listing changed are
read again in the window, and the estimate takes none as changed.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources

import psycopg

from ..artifacts.backfill import examine
from ..db import costs
from ..errors import HarborUpgradeError
from ..installation import Installation
from ..registry.layout import Layout
from .context import open_installation_storage
from .options import Options

RATES_FILE = "estimate_rates.json"
SAMPLE_ARTIFACTS = 300          # manifests read to measure storage, at least (when there are so many)
SAMPLE_SECONDS = 3.0            # ... and at most this long
LIST_SECONDS = 5.0              # repository listing: beyond this the database's list stands in
RUN_OWN = "run"                 # the run's own part of the window (preflight, census, journal)
PREPARE = "prepare"
DIGITS = 2                      # estimates in hundredths: a step of tens of milliseconds is still not 0


@dataclass
class StorageSample:
    """What the storage sample saw: every repository listed (or as many as LIST_SECONDS
    allowed), and the repositories read in full with their seconds."""
    repositories: int = 0                # repositories with manifests in storage
    listed_all: bool = True
    artifacts_in_storage: int = 0        # database artifacts whose repository storage has
    sampled_repositories: int = 0
    sampled_artifacts: int = 0
    sampled_seconds: float = 0.0        # reading them whole (listing, links, manifests, configs)
    sampled_list_seconds: float = 0.0   # ... of which listing them (what a prepared run does again in the window)
    readers: int = 1                     # parallel readers the backfill would use
    list_seconds: float = 0.0
    problem: str | None = None           # why storage could not be sampled

    @property
    def seconds_per_artifact(self) -> float | None:
        return self.sampled_seconds / self.sampled_artifacts if self.sampled_artifacts else None

    @property
    def list_seconds_per_repository(self) -> float:
        return self.sampled_list_seconds / self.sampled_repositories if self.sampled_repositories else 0.0


@dataclass
class Inputs:
    """Everything the estimators read (gathered by ``gather``, or given by a test)."""
    database_bytes: int = 0
    cluster_bytes: int = 0
    total_rows: int = 0
    artifact_rows: int = 0               # distinct (repository, digest) in the database
    releases: list[tuple[str, int]] = field(default_factory=list)   # pending release step, rows it touches
    storage: StorageSample = field(default_factory=StorageSample)
    engine_mode: str | None = None       # the engine step's mode, when asked
    speed: float = 1.0                   # the server's probe now / at calibration (> 1: slower)
    gather_seconds: float = 0.0


@dataclass(frozen=True)
class Line:
    """A fitted straight line: seconds = a + b * driver (at the calibrating machine's speed)."""
    a: float
    b: float = 0.0

    def at(self, x: float, speed: float = 1.0) -> float:
        return (self.a + self.b * x) * speed


# What a line the rates file lacks falls back to (see Rates.step): a step the calibration never
# measured (a new step, or the engine in a mode it did not time) still gets a figure, named in the
# estimate's "not_calibrated"; never a KeyError in plan.
ENGINE_FALLBACK = Line(5.0, 1e-8)


@dataclass
class Rates:
    """The calibrated lines (data/estimate_rates.json)."""
    probe_seconds: float
    steps: dict[str, Line]
    releases: dict[str, Line]
    measured: dict = field(default_factory=dict)

    def step(self, name: str) -> Line:
        """The line of a step (or of the engine step's mode: "engine-copy", "engine-link",
        "engine-dump"), else its fallback: the engine in an unmeasured mode takes the copy mode's
        line (dump and restore: the backup's, a dump and a restore of the same database), any
        other step a flat zero."""
        if name in self.steps:
            return self.steps[name]
        if name == "engine-dump" and "backup" in self.steps:
            return self.steps["backup"]
        if name.startswith("engine"):
            return self.steps.get("engine-copy", self.steps.get("engine", ENGINE_FALLBACK))
        return Line(0.0)

    def release(self, name: str) -> Line:
        """A release step the calibration did not see (one added after it) gets the median of the
        others' intercepts and slopes: a release like most, not like the one whose few rows made
        its slope steep (a mean would be that outlier's)."""
        if name in self.releases:
            return self.releases[name]
        lines = list(self.releases.values()) or [Line(0.2)]
        return Line(median([x.a for x in lines]), median([x.b for x in lines]))

    def to_dict(self) -> dict:
        return {"measured": self.measured, "probe_seconds": self.probe_seconds,
                "steps": {k: [v.a, v.b] for k, v in self.steps.items()},
                "releases": {k: [v.a, v.b] for k, v in self.releases.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> Rates:
        return cls(float(d["probe_seconds"]), {k: Line(*map(float, v)) for k, v in d["steps"].items()},
                   {k: Line(*map(float, v)) for k, v in d["releases"].items()}, d.get("measured", {}))


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def load_rates() -> Rates:
    text = resources.files("harbor_upgrade").joinpath("data", RATES_FILE).read_text()
    return Rates.from_dict(json.loads(text))


def fit(points: list[tuple[float, float]]) -> Line:
    """The least-squares line through (driver, seconds) points, never negative: a negative
    slope (noise) becomes a flat line at the mean, a negative intercept a line through 0."""
    if not points:
        return Line(0.0)
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return Line(max(0.0, my))
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    if b <= 0:
        return Line(max(0.0, my))
    a = my - b * mx
    if a < 0:
        b = sum(x * y for x, y in points) / sum(x * x for x, _ in points)
        a = 0.0
    return Line(a, b)


# ---------------------------------------------------------------------------- the estimators
# One per step name (RUN_STEPS), each (inputs, rates) -> seconds.

def estimate_backup(i: Inputs, r: Rates) -> float:
    return r.step("backup").at(i.database_bytes, i.speed)


def estimate_config(i: Inputs, r: Rates) -> float:
    return r.step("config").at(0, i.speed)


def engine_line_name(i: Inputs) -> str:
    """The engine step's line: one per mode (pg_upgrade copy, link; dump and restore)."""
    return f"engine-{i.engine_mode or 'copy'}"


def estimate_engine(i: Inputs, r: Rates) -> float:
    """pg_upgrade --check and pg_upgrade, the row counts compared, the statistics rebuilt, the
    servers stopped and started: a line in the bytes of the whole cluster."""
    return r.step(engine_line_name(i)).at(i.cluster_bytes, i.speed)


def estimate_database(i: Inputs, r: Rates) -> float:
    return r.step("database").at(0, i.speed) + sum(r.release(name).at(rows, i.speed) for name, rows in i.releases)


def artifacts_read(i: Inputs) -> float:
    """The storage read of the artifacts step: the sample's rate over the parallel readers."""
    s = i.storage
    per = s.seconds_per_artifact
    if per is None:
        return 0.0
    return per * s.artifacts_in_storage / max(1, s.readers)


def artifacts_relisting(i: Inputs) -> float:
    """What a prepared run still reads in the window: each repository's listing, to tell the
    ones that changed since the prepare (those the estimate takes as none)."""
    s = i.storage
    return s.list_seconds_per_repository * s.repositories / max(1, s.readers)


def estimate_artifacts(i: Inputs, r: Rates) -> float:
    """The read (measured on storage) plus the rows written and checked (calibrated)."""
    return artifacts_read(i) + r.step("artifacts").at(i.artifact_rows, i.speed)


def estimate_scanner(i: Inputs, r: Rates) -> float:
    return r.step("scanner").at(0, i.speed)


def estimate_verify(i: Inputs, r: Rates) -> float:
    return r.step("verify").at(i.total_rows, i.speed)


def estimate_run_own(i: Inputs, r: Rates) -> float:
    """Preflight, the census of manifests before anything changes, the journal."""
    return r.step(RUN_OWN).at(i.artifact_rows, i.speed)


ESTIMATORS: dict[str, Callable[[Inputs, Rates], float]] = {
    "backup": estimate_backup, "config": estimate_config, "engine": estimate_engine,
    "database": estimate_database, "artifacts": estimate_artifacts, "scanner": estimate_scanner,
    "verify": estimate_verify,
}


def not_calibrated(i: Inputs, r: Rates, step_names: list[str]) -> list[str]:
    """The lines these steps need that the rates file lacks (their fallbacks stand in): a step,
    the engine's mode, a release step added after the calibration."""
    need = [engine_line_name(i) if n == "engine" else n for n in step_names if n in ESTIMATORS] + [RUN_OWN]
    if "database" in step_names:
        need += [name for name, _ in i.releases if name not in r.releases]
    return [n for n in need if n not in r.steps and n not in r.releases]


@dataclass
class Estimate:
    steps: dict[str, float]
    run_own: float
    prepare: float          # run --prepare: the storage read, while Harbor serves
    relist: float           # ... of which the window still does: every repository listed again
    inputs: Inputs
    calibrated: dict
    not_calibrated: list[str] = field(default_factory=list)

    @property
    def window(self) -> float:
        """Harbor stopped: every step of the run plus the run's own part."""
        return sum(self.steps.values()) + self.run_own

    @property
    def window_with_prepare(self) -> float:
        return max(0.0, self.window - self.prepare + self.relist)

    def to_dict(self) -> dict:
        inputs = asdict(self.inputs)
        inputs["storage"]["seconds_per_artifact"] = self.inputs.storage.seconds_per_artifact
        inputs["storage"]["list_seconds_per_repository"] = self.inputs.storage.list_seconds_per_repository
        return {"window_seconds": round(self.window, DIGITS),
                "steps": {k: round(v, DIGITS) for k, v in self.steps.items()},
                "run_own_seconds": round(self.run_own, DIGITS),
                "prepare": {"seconds": round(self.prepare, DIGITS),
                            "window_seconds": round(self.window_with_prepare, DIGITS),
                            "relist_seconds": round(self.relist, DIGITS),
                            "what": "the storage read of the artifacts step, done by run --prepare while "
                                    "Harbor still serves; the window still lists every repository again "
                                    "(relist) and reads the ones that changed (taken as none)"},
                "inputs": inputs, "calibrated": self.calibrated,
                "not_calibrated": {"lines": self.not_calibrated,
                                   "what": "steps, engine modes or release steps the rates file has no line for "
                                           "(data/estimate_rates.json): a fallback stands in (a release: the "
                                           "median release's line; the engine: its copy mode's; another step: 0)"}}


def compute(inputs: Inputs, rates: Rates, step_names: list[str]) -> Estimate:
    """The estimate of each named step (those without an estimator: 0), the run's own part,
    and the prepare phase."""
    steps = {name: max(0.0, ESTIMATORS[name](inputs, rates)) if name in ESTIMATORS else 0.0
             for name in step_names}
    prepare = artifacts_read(inputs) if "artifacts" in step_names else 0.0
    relist = min(prepare, artifacts_relisting(inputs)) if "artifacts" in step_names else 0.0
    return Estimate(steps, estimate_run_own(inputs, rates), prepare, relist, inputs, rates.measured,
                    not_calibrated(inputs, rates, step_names))


# ---------------------------------------------------------------------------- gathering

def sample_storage(inst: Installation, dsn: str, by_repository: dict[str, int], jobs: int,
                   clock: Callable[[], float] = time.monotonic) -> StorageSample:
    """List the repositories (for at most LIST_SECONDS), then read whole repositories spread
    over the list until SAMPLE_ARTIFACTS database artifacts were abstracted or SAMPLE_SECONDS
    passed. Reading goes through the backfill's own examine (its readers bound every object)."""
    sample = StorageSample()
    storage = open_installation_storage(inst)
    try:
        layout = Layout(storage)
        object_store = bool(storage.batch_listing)
        sample.readers = max(1, jobs) if object_store else max(1, min(jobs, len(os.sched_getaffinity(0))))
        t0 = clock()
        names = []
        for entry in layout.repositories():
            if entry.kind == "repository":
                names.append(entry.name)
            if clock() - t0 > LIST_SECONDS:
                sample.listed_all = False
                break
        sample.list_seconds = clock() - t0
        sample.repositories = len(names)
        with_rows = [n for n in names if by_repository.get(n)]
        if sample.listed_all:
            sample.artifacts_in_storage = sum(by_repository[n] for n in with_rows)
        else:   # the database's repositories stand in for the ones not listed
            sample.artifacts_in_storage = sum(by_repository.values())
        if not with_rows:
            return sample
        total = sum(by_repository[n] for n in with_rows)
        stride = max(1, total // SAMPLE_ARTIFACTS)   # about SAMPLE_ARTIFACTS artifacts, spread over the list
        picked = with_rows[::stride]
        digests = costs.digests_of(dsn, picked[:200])
        io_pool = ThreadPoolExecutor(max(1, jobs), thread_name_prefix="estimate-read") if object_store else None
        try:
            t1 = clock()
            for name in picked[:200]:
                existing = {d: k for k, d in enumerate(sorted(digests.get(name, [])), 1)}
                s0 = clock()
                layout.list_repository(name)
                sample.sampled_list_seconds += clock() - s0
                s0 = clock()
                examine(layout, name, name.split("/")[0], None, existing, False, io_pool, max(1, jobs))
                sample.sampled_seconds += clock() - s0
                sample.sampled_repositories += 1
                sample.sampled_artifacts += len(existing)
                if sample.sampled_artifacts >= SAMPLE_ARTIFACTS or clock() - t1 > SAMPLE_SECONDS:
                    break
        finally:
            if io_pool:
                io_pool.shutdown(wait=True, cancel_futures=True)
    except HarborUpgradeError as e:
        sample.problem = e.message
    finally:
        storage.close()
    return sample


def gather(inst: Installation, opts: Options, step_names: list[str]) -> Inputs:
    """The inputs of the estimate (read-only; raises HarborUpgradeError when the database
    cannot be read)."""
    t0 = time.monotonic()
    assert inst.dsn is not None
    cost = costs.database_cost(inst.dsn, to=opts.target)
    rates = load_rates()
    by_repository = costs.artifacts_by_repository(inst.dsn)
    inputs = Inputs(database_bytes=cost.database_bytes, cluster_bytes=cost.cluster_bytes,
                    total_rows=cost.total_rows, artifact_rows=sum(by_repository.values()),
                    releases=[(c.release, c.rows) for c in cost.releases],
                    engine_mode=opts.engine_mode if "engine" in step_names else None,
                    speed=max(0.01, cost.probe_seconds / rates.probe_seconds) if rates.probe_seconds else 1.0)
    if "artifacts" in step_names:
        inputs.storage = sample_storage(inst, inst.dsn, by_repository, opts.jobs)
    inputs.gather_seconds = time.monotonic() - t0
    return inputs


def estimate(inst: Installation, opts: Options, step_names: list[str]) -> Estimate | None:
    """The estimate for this installation, or None when it cannot be made (no database to
    read: the preflight says why)."""
    if inst.dsn is None or inst.database is None or inst.database.schema_version is None:
        return None
    try:
        inputs = gather(inst, opts, step_names)
    except (HarborUpgradeError, psycopg.Error, OSError):
        return None   # the plan goes on without it (a query timed out, the storage went away)
    return compute(inputs, load_rates(), step_names)
