"""The journaled run: the lock, the confirmation, the journal's plan, the steps in order
(skipping those the journal shows done), and the report."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..artifacts.prefetch import prepare_prefetch
from ..compose.detect import ComposeInstallation
from ..compose.errors import EngineCompose
from ..compose.session import compose_of, container_journal, database, own_database
from ..compose.stack import refuse_running, stop_harbor
from ..config import plan_migration
from ..db.inventory import artifact_digests
from ..errors import HarborUpgradeError, InvalidInput, PrepareAfterRun, UnsafeState
from ..installation import Installation, detect
from ..journal import Journal
from ..postgres.scratch import sweep
from ..postgres.server import Server
from ..private import check_writable, write_private
from ..progress import Progress, Silent
from ..results import FAIL, PASS, WARN, Advice, CheckResult, RunReport, StepResult, all_ok
from ..secrets import mask_text
from ..verify import ServedPairs, missing_manifests
from .context import Context, Step, open_installation_storage
from .estimate import estimate
from .lock import InstallationLock, RunLock
from .options import KNOWN_MISSING, Options, start_release
from .plan import hops, next_steps, plan, planned_engine, step_plan
from .preflight import check_disk, check_start, check_storage, check_versions_agree, preflight
from .removed import refuse_dropping_charts, removals
from .steps import DEFAULT_STEP_NAMES, PREFETCH_TEXT, PREPARE_DATADIR_TEXT, steps_for
from .steps.backup import prepare_datadir_copy, restore_backup_server
from .steps.engine import engine_state, old_cluster_usable


def record_missing_before(ctx: Context, pairs: list[tuple[str, str]] | None = None) -> int:
    """Which artifact rows have no manifest in storage before anything changes: verify
    reports those as pre-existing rather than as damage done by the upgrade. The pairs found
    served stay in memory (``ctx.served_at_start``): this process's verify does not look them
    up again. pairs: the database's (read before anything changed), else read now."""
    storage = open_installation_storage(ctx.inst)
    try:
        pairs = artifact_digests(ctx.dsn) if pairs is None else pairs
        missing = missing_manifests(storage, pairs)
    finally:
        storage.close()
    write_private(ctx.backup_dir / KNOWN_MISSING, json.dumps(sorted(missing)))
    gone = set(missing)
    ctx.served_at_start = ServedPairs(p for p in pairs if p not in gone)
    return len(missing)


#: steps that change neither the database nor storage: the census may still be looking up storage
#: while they run (the backup stops and restarts the database's server: the pairs were read before)
CENSUS_MAY_OVERLAP = frozenset({"backup"})


def start_census(ctx: Context) -> Future[int]:
    """record_missing_before on a thread: the database's pairs are read now, before any step;
    storage is looked up while the first steps (CENSUS_MAY_OVERLAP) run. ``run_steps`` waits for
    it before any other step."""
    pairs = artifact_digests(ctx.dsn)
    pool = ThreadPoolExecutor(1, thread_name_prefix="census")
    try:
        return pool.submit(record_missing_before, ctx, pairs)
    finally:
        pool.shutdown(wait=False)


def restore_engine_server(backup_dir: Path) -> str | None:
    """A run killed inside the engine step may leave the database unserved (the old server
    stopped, the new one not started) or served on a private socket: serve it again the way
    the DSN expects — from the new cluster once it is finished, else from the untouched old
    one — so that the installation can be detected and the run continue."""
    if not (backup_dir / "journal.jsonl").exists():
        return None
    with RunLock(backup_dir):
        journal = Journal.open(backup_dir)
        rec = journal.last("engine-plan")
        if rec is None or journal.last("rollback"):
            return None
        finished = journal.is_done("engine") or engine_state(rec) is not None
        if finished and not (Path(rec["new_datadir"]) / "PG_VERSION").exists():
            return None  # pg-upgrade --cleanup --move-into took it elsewhere: the operator serves it now
        if not finished:
            old_cluster_usable(rec)
        datadir, bindir = ((Path(rec["new_datadir"]), rec["new_bindir"]) if finished
                           else (Path(rec["old_datadir"]), rec["old_bindir"]))
        how = Server(bindir, datadir).ensure_serving(rec["listen"])
        if how != "already running":
            journal.write("engine-server", "engine", datadir=str(datadir), how=how)
        return str(datadir)


@dataclass
class Clock:
    """The run's two durations: the total from the command's start, and the stop window from the
    moment Harbor is stopped (--stop-harbor) or, when it is down already, the in-window run goes
    ahead (confirmed) — each up to the verification passing."""
    began: float = field(default_factory=time.monotonic)
    window_began: float | None = None

    def window_starts(self) -> None:
        if self.window_began is None:
            self.window_began = time.monotonic()

    def figures(self, ok: bool, prepare_seconds: float | None) -> dict:
        now = time.monotonic()
        window = now - (self.window_began if self.window_began is not None else self.began)
        return {"window_seconds": round(window, 3) if ok else None,
                "total_seconds": round(now - self.began + (prepare_seconds or 0.0), 3),
                "prepare_seconds": None if prepare_seconds is None else round(prepare_seconds, 3)}


def confirmed(opts: Options, question: str, confirm: Callable[[str], bool] | None) -> None:
    """--yes, or the operator's yes (``confirm`` is None when nobody can be asked); else nothing is changed."""
    if opts.yes:
        return
    if confirm is None:
        raise UnsafeState("run changes the installation and needs a confirmation: pass --yes",
                          reference="confirmation-needed", hint="harbor-upgrade plan shows what it will do")
    if not confirm(question):
        raise UnsafeState("not confirmed; nothing was changed", reference="not-confirmed")


def run(opts: Options, progress: Progress | None = None,
        confirm: Callable[[str], bool] | None = None) -> RunReport:
    """Run (or continue) the upgrade; the report's ``ok`` is False when a check or a step failed.
    Without ``--yes`` it asks ``confirm`` (the CLI gives one only when it can ask someone).

    On a Compose installation with Harbor's own database (and no --dsn), Harbor must be
    down — or is stopped first with ``stop_harbor`` — and the run works on the
    installation's harbor-db started alone on 127.0.0.1, stopped and removed at the end."""
    if not opts.backup_dir:
        raise InvalidInput("run needs --backup-dir: the backup and the journal go there",
                           reference="backup-dir-missing")
    if opts.dry_run:
        report = plan(opts)
        report.command = "run --dry-run"
        return report
    if opts.prepare:
        return prepare(opts, progress)
    clock = Clock()
    progress = progress or Silent()
    backup_dir = Path(opts.backup_dir).resolve()
    check_writable(backup_dir, "--backup-dir", is_dir=True)
    for left in sweep():   # scratch clusters of a killed run (or verify): stopped and removed
        progress.note(f"removed {left}, a scratch cluster an interrupted command left behind")
    ci = None if opts.dsn else compose_of(opts.harbor_yml)
    if ci is None:
        return run_on(opts, progress, confirm, backup_dir, clock)
    if own_database(ci) and opts.engine_bindir:
        raise EngineCompose("--engine-bindir upgrades a cluster served by this machine's PostgreSQL; on a Compose "
                            "installation the engine is left to the target release's harbor-db",
                            hint="run without --engine-bindir (plan tells what happens to the engine)")
    journal = container_journal(backup_dir)
    if ci.running:
        if not opts.stop_harbor:
            refuse_running(ci)
        confirmed(opts, f"Stop Harbor ({len(ci.running)} containers of {ci.compose_file}) and upgrade "
                        f"{opts.harbor_yml} to {opts.target} (backup in {backup_dir})?", confirm)
        opts = replace(opts, yes=True)
        clock.window_starts()
        if not own_database(ci):   # external_database: only the stack stops
            progress.note(f"stopping Harbor ({len(ci.running)} containers of project {ci.project}): docker "
                          "compose down")
            stop_harbor(ci, journal)
    if not own_database(ci):
        report = run_on(opts, progress, confirm, backup_dir, clock)
    else:
        with database(opts.harbor_yml, None, stop=opts.stop_harbor, journal=journal, say=progress.note,
                      ci=ci) as dsn:
            report = run_on(replace(opts, dsn=dsn), progress, confirm, backup_dir, clock)
    report.next = compose_next_steps(report, ci, opts)
    return report


def check_config(inst: Installation, target: str) -> CheckResult:
    """harbor.yml migrates to the target (nothing written): what the in-window config step will do."""
    try:
        result = plan_migration(inst.harbor_yml, target)
    except HarborUpgradeError as e:
        return CheckResult("harbor.yml migrates", FAIL, e.message, hint=e.hint or "fix harbor.yml, then prepare again")
    return CheckResult("harbor.yml migrates", WARN if result.warnings else PASS,
                       f"{result.from_version} → {target}: {len(result.changes)} changes"
                       + (f", {len(result.warnings)} warnings: " + "; ".join(mask_text(w) for w in result.warnings)
                          if result.warnings else ""))


def estimate_of(opts: Options, inst: Installation) -> dict | None:
    """plan's estimate of each step's seconds and of the window (upgrade/estimate.py), for --prepare's report."""
    est = estimate(inst, opts, [s.name for s in steps_for(opts)])
    return est.to_dict() if est is not None else None


def prepare(opts: Options, progress: Progress | None = None) -> RunReport:
    """``run --prepare``: what needs no stop, while the old Harbor still serves. Reads harbor.yml, the
    database when it is reachable (read-only) and the registry storage; checks the config and the
    storage; writes only the artifact prefetch into the backup folder (``artifacts.prefetch``),
    which the in-window run applies. Never writes the database, never needs Harbor stopped."""
    began = time.monotonic()
    progress = progress or Silent()
    assert opts.backup_dir   # run() refuses a run without one
    backup_dir = Path(opts.backup_dir).resolve()
    check_writable(backup_dir, "--backup-dir", is_dir=True)
    if (backup_dir / "journal.jsonl").exists() and Journal.read(backup_dir).last("run-start"):
        raise PrepareAfterRun(f"the run in {backup_dir} has begun: run --prepare is for before it",
                              hint=f"continue the run: harbor-upgrade run --backup-dir {backup_dir} ... (same options)")
    target = opts.target
    inst = detect(opts.harbor_yml, opts.dsn, opts.storage, opts.s3_endpoint, opts.s3_region)
    checks = [check_start(inst, target), check_versions_agree(inst), check_config(inst, target),
              check_disk(inst, backup_dir, db_copies=2.2), check_storage(inst)]
    report = RunReport("run --prepare", False, [], target=target, installation=inst.to_dict(),
                       hops=hops(inst, target), backup_dir=str(backup_dir), checks=checks)
    if not all_ok(checks):
        report.steps = [StepResult(name, False, "not run: a check failed", planned=True)
                        for name in ("datadir copy", "prefetch")]
        report.next = [Advice(Advice.FIX_CHECKS, "Fix the failed checks above, then prepare again; nothing was "
                                                 "written.")]
        return report
    estimate = estimate_of(opts, inst)   # first: the prefetch file records the whole --prepare's seconds
    if estimate is not None:
        report.extra["estimate"] = estimate
    progress.note(f"datadir copy: {PREPARE_DATADIR_TEXT}")
    copied = prepare_datadir_copy(inst, backup_dir, opts.jobs, progress.note)
    storage = open_installation_storage(inst)
    progress.note(f"prefetch: {PREFETCH_TEXT}")
    t0 = time.monotonic()
    try:
        made = prepare_prefetch(storage, backup_dir, jobs=opts.jobs, progress=progress.task("prefetch"),
                                about={"harbor_yml": str(inst.harbor_yml), "target": target}, began=began)
    finally:
        storage.close()
    report.steps = [copied,
                    StepResult("prefetch", True, f"{made.repositories:,} repositories ({made.artifacts:,} artifacts) "
                               f"read and abstracted into {made.path}"
                               + (f"; {made.not_recorded:,} with problems or unreadable, read in the window"
                                  if made.not_recorded else ""),
                               seconds=time.monotonic() - t0, changed=made.to_dict())]
    report.ok = True
    report.extra["prepare_seconds"] = round(time.monotonic() - began, 3)
    report.next = [Advice(Advice.RUN, "In the stop window: stop Harbor, then run the same command without --prepare "
                                      "(with the same --backup-dir): it reads again only the repositories pushed to "
                                      "or changed since.")]
    return report


def compose_next_steps(report: RunReport, ci: ComposeInstallation, opts: Options) -> list[Advice]:
    """After a run on a Compose installation nothing of Harbor runs: say so first."""
    if report.ok:
        where = (f" and harbor-upgrade's own harbor-db is removed; {ci.db_dir} holds the upgraded database, ready "
                 "for the new release's install.sh" if own_database(ci) else "; the external database is upgraded")
        return ([Advice(Advice.HARBOR_DOWN, f"Nothing of Harbor runs now: the stack of {ci.compose_file} is down"
                                            f"{where}.")]
                + [a for a in report.next if a.kind != Advice.KEEP_BACKUP]
                + [Advice(Advice.KEEP_BACKUP, f"Keep {opts.backup_dir} until {opts.target} runs well; to go back "
                                              f"instead: harbor-upgrade rollback --backup-dir {opts.backup_dir} "
                                              f"--yes, then docker compose up -d in {ci.harbor_dir} (the old stack).")])
    return report.next + [Advice(Advice.HARBOR_DOWN, f"Harbor is not running; to start the old one as it is: docker "
                                                     f"compose up -d in {ci.harbor_dir} (after a rollback when a step "
                                                     "changed the database).")]


def run_on(opts: Options, progress: Progress, confirm: Callable[[str], bool] | None,
           backup_dir: Path, clock: Clock | None = None) -> RunReport:
    """The run against the database opts.dsn reaches (or harbor.yml's external one)."""
    clock = clock or Clock()
    served = restore_engine_server(backup_dir)
    if served:
        progress.note(f"continuing an engine upgrade: the database is served from {served}")
    if restore_backup_server(backup_dir):
        progress.note("a run was interrupted while its backup step had the database's server stopped: "
                      "started it again")
    inst = detect(opts.harbor_yml, opts.dsn, opts.storage, opts.s3_endpoint, opts.s3_region)
    checks = preflight(inst, backup_dir, (backup_dir / "journal.jsonl").exists(), opts=opts)
    steps = steps_for(opts)
    target = opts.target
    report = RunReport("run", False, [], target=target, installation=inst.to_dict(), hops=hops(inst, target),
                       backup_dir=str(backup_dir), checks=checks)
    if not all_ok(checks):
        report.steps = step_plan(inst, target, False, steps, planned_engine(inst, opts, backup_dir))
        report.next = [Advice(Advice.FIX_CHECKS, "Fix the failed checks above, then run again; nothing was changed.")]
        return report
    refuse_dropping_charts(removals(inst, start_release(inst), target), opts.drop_chartmuseum)
    confirmed(opts, f"Upgrade {inst.harbor_yml} to {target} (backup in {backup_dir})?", confirm)
    clock.window_starts()
    assert inst.dsn is not None  # every check passed: check_stopped (need_db) fails without a database
    with RunLock(backup_dir), InstallationLock(inst.dsn, "this run") as installation_lock:
        ctx = Context(opts, inst, open_journal(backup_dir, steps, target), backup_dir, progress)
        census = begin(ctx, checks, steps)
        try:
            report.steps, report.error = run_steps(ctx, steps, installation_lock, census)
        finally:
            if census is not None:
                wait([census])   # a failed step: the census's own error (if any) is not the news
        report.ok = report.error is None
        failed = report.steps[-1].name if report.error else None
        ctx.journal.write("run-end", ok=report.ok, failed_step=failed)
    engine = ctx.journal.last("engine-plan") if ctx.journal.is_done("engine") else None
    report.journal = str(ctx.journal.path)
    report.next = next_steps(inst, opts, report.ok, failed, engine)
    report.verify = ctx.outcome.get("verify")
    report.steps += [StepResult(s.name, False, "not run", planned=True) for s in steps[len(report.steps):]]
    report.extra.update(clock.figures(report.ok, ctx.outcome.get("prepare_seconds")))
    return report


def open_journal(backup_dir: Path, steps: tuple[Step, ...], target: str) -> Journal:
    """The run's journal, refused when the folder was rolled back to or the run started with another
    target or other steps."""
    journal = Journal.open(backup_dir)
    if journal.last("rollback"):
        raise InvalidInput(f"{backup_dir} was rolled back to: its backup is the installation's state now",
                           reference="backup-dir-rolled-back",
                           hint="run again with a new, empty --backup-dir (keep this one)")
    recorded_plan = journal.last("plan")
    if recorded_plan and recorded_plan.get("target", target) != target:
        raise InvalidInput(f"the run in {backup_dir} goes to {recorded_plan['target']}; this command asks for "
                           f"{target}", reference="run-steps-differ",
                           hint=f"run again with --to {recorded_plan['target']}, or roll back and start anew")
    names = [s.name for s in steps]
    if recorded_plan and recorded_plan.get("steps", DEFAULT_STEP_NAMES) != names:
        raise InvalidInput(f"the run in {backup_dir} was started with the steps "
                           f"{', '.join(recorded_plan['steps'])}; this command asks for {', '.join(names)}",
                           reference="run-steps-differ",
                           hint="run again with the options the run started with (--engine-bindir or not)")
    return journal


def begin(ctx: Context, checks: list[CheckResult], steps: tuple[Step, ...]) -> Future[int] | None:
    """Record the plan (on a first run), start the census of the gaps storage had before (when
    not taken yet: ``start_census``), then the run's start."""
    names = [s.name for s in steps]
    if not ctx.journal.records:
        ctx.journal.write("plan", installation=ctx.inst.to_dict(), hops=hops(ctx.inst, ctx.opts.target),
                          target=ctx.opts.target, steps=names,
                          checks=[c.to_dict() for c in checks])
    census = None if (ctx.backup_dir / KNOWN_MISSING).exists() else start_census(ctx)
    ctx.journal.write("run-start", resumed_at=ctx.journal.first_unfinished(names))
    return census


def run_steps(ctx: Context, steps: tuple[Step, ...], installation_lock: InstallationLock,
              census: Future[int] | None = None) -> tuple[list[StepResult], HarborUpgradeError | None]:
    """Each step in order, skipping those the journal shows done, up to the first that fails;
    the census (when running) finished before any step but those that may overlap it."""
    results = []
    for step in steps:
        if census is not None and step.name not in CENSUS_MAY_OVERLAP:
            census.result()   # its error (storage unreadable) stops the run before anything changes
            census = None
        rec = ctx.journal.done_record(step.name)
        if rec is not None:   # the step is done (journal.is_done)
            results.append(StepResult(step.name, True, rec.get("summary", ""), resumed=True))
            continue
        ctx.progress.note(f"{step.name}: {step.text}")
        if not installation_lock.ensure():   # again after the engine step restarted the server
            ctx.progress.note("  (the cluster's postgres database is out of reach: no installation lock is held)")
        ctx.journal.start(step.name)
        t0 = time.monotonic()
        try:
            out = step.run(ctx)
        except HarborUpgradeError as e:
            seconds = time.monotonic() - t0
            ctx.journal.failed(step.name, f"[{e.reference}] {e.message}", seconds=round(seconds, 3))
            results.append(StepResult(step.name, False, e.message, seconds=seconds))
            return results, e
        except BaseException as e:  # a bug or an interrupt: record where, then let it surface
            ctx.journal.failed(step.name, f"{type(e).__name__}: {e}")
            raise
        seconds = time.monotonic() - t0
        ctx.journal.done(step.name, seconds=round(seconds, 3), **out.to_dict())
        results.append(StepResult(step.name, True, out.summary, seconds=seconds, changed=out.changed,
                                  checksums=out.checksums))
    return results, None
