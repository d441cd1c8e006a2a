"""The plan: the release hops to the target, every step the run would take, the
preflight checks, and what the operator does next. Writes nothing."""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from .. import db
from ..compose.session import compose_of, database, own_database
from ..errors import HarborUpgradeError
from ..installation import Installation, detect
from ..installers import harbor_path, line_text
from ..postgres.layout import harbor_move_target
from ..results import Advice, RunCommand, RunReport, StepResult, all_ok
from ..secrets import dsn_without_password
from ..versions import HARBOR_DB_MAJOR, SCHEMA_VERSION, path_between
from .context import Step
from .estimate import DIGITS, estimate
from .options import BACKUP_SUBDIR, Options, recorded_engine, start_release
from .preflight import preflight
from .removed import COMPONENT_NAMES, removals, removed_after, removed_between
from .steps import step_names, steps_for
from .steps.engine import engine_target


def hops(inst: Installation, target: str) -> list[str]:
    """The releases from the start to the target, both included ([] when the start is unknown)."""
    start = start_release(inst)
    if start is None or start == "1.9.0":
        return []
    return [start] + path_between(start, target)


def step_plan(inst: Installation, target: str, ok: bool, steps: tuple[Step, ...],
              engine: dict | None = None) -> list[StepResult]:
    """The steps run would take; each is ok to take when the preflight passed."""
    out = []
    db = inst.database
    for step in steps:
        text = step.text.replace("the target release", target)
        if step.name == "engine" and engine:
            text += (f": PostgreSQL {engine['old_version']} → {engine['new_major']} ({engine['mode']}) into "
                     f"{engine['new_datadir']}, served on the same port")
        if step.name == "database" and db and db.schema_version is not None:
            text += f": schema {db.schema_version} → {SCHEMA_VERSION[target]}"
        if step.name == "artifacts":
            text += f" ({inst.storage})"
        out.append(StepResult(step.name, ok, text, planned=True))
    return out


def engine_next_steps(engine: dict, start: str | None, target: str) -> list[Advice]:
    old, new = Path(engine["old_datadir"]), Path(engine["new_datadir"])
    home = harbor_move_target(old, engine["new_major"], new)
    move = f" --move-into {home}" if home else ""
    out = [f"The database now runs on PostgreSQL {engine['new_major']} from {new}, started by harbor-upgrade on the "
           f"old server's port and socket. The old PostgreSQL {engine['old_version']} cluster is kept"
           + (" " if engine["mode"] == "link" else ", unchanged ")
           + f"(Harbor {start or 'as it was'}) in {old}"
           + (" (link mode: it shares its files with the new one and must not be started)"
              if engine["mode"] == "link" else "")
           + f". Once {target} runs well, remove it: harbor-upgrade pg-upgrade --cleanup --old-datadir {old} "
             f"--new-datadir {new}{move}"]
    advice = [Advice(Advice.ENGINE_CLEANUP, out[0])]
    harbor_db = HARBOR_DB_MAJOR[target]
    if engine["new_major"] != harbor_db:
        advice.append(Advice(Advice.ENGINE_SERVER,
                             f"Harbor {target}'s own harbor-db image runs PostgreSQL {harbor_db}: a PostgreSQL "
                             f"{engine['new_major']} cluster is served by a server of that major, given to Harbor "
                             "as external_database in harbor.yml."))
    return advice


def next_steps(inst: Installation, opts: Options, ok: bool, failed_step: str | None,
               engine: dict | None = None) -> list[Advice]:
    out: list[Advice] = []
    b = opts.backup_dir
    if not ok:
        if failed_step:
            out.append(Advice(Advice.CONTINUE, "Fix the problem above, then run the same `harbor-upgrade run` "
                                               f"command again: it continues at the '{failed_step}' step."))
        if b and Path(b, BACKUP_SUBDIR, "manifest.json").exists():
            out.append(Advice(Advice.ROLLBACK,
                              f"Or go back to where you started: harbor-upgrade rollback --backup-dir {b}"))
        return out
    target = opts.target
    removed = removed_between(start_release(inst), target)
    out.append(Advice(Advice.INSTALL,
                      f"Install the Harbor {target} release with the migrated settings: copy "
                      f"{opts.output_config(inst)} to harbor.yml in the {target} installer folder and run "
                      "./install.sh --with-trivy"
                      + (" --with-notary" if inst.components.get("notary") and "notary" not in removed else "")
                      + (" --with-chartmuseum" if inst.components.get("chartmuseum") and "chartmuseum" not in removed
                         else "") + "."))
    if inst.components.get("clair"):
        out.append(Advice(Advice.RESCAN, "Clair is gone and its reports with it: scan all artifacts with Trivy "
                                         "(Interrogation Services > Vulnerability > SCAN NOW) once Harbor is up."))
    later = [f"{COMPONENT_NAMES[c]} (removed in {line_text(r)})" for c, r in removed_after(target).items()
             if inst.components.get(c)]
    if later:
        out.append(Advice(Advice.REMOVED_LATER, f"{' and '.join(later)} still work in {target} but a later release "
                                                "removes them: plan moving charts to OCI and signatures to cosign."))
    if engine:
        out += engine_next_steps(engine, start_release(inst), target)
    if b:
        out.append(Advice(Advice.KEEP_BACKUP,
                          f"Keep {b} until {target} runs well; to go back: harbor-upgrade rollback --backup-dir {b}"))
    return out


def plan(opts: Options) -> RunReport:
    """The plan report: installation, hops, steps and preflight checks. Writes nothing.

    On a Compose installation whose stack is down, the database is read through the
    installation's harbor-db started alone on 127.0.0.1 (and stopped again); while Harbor
    runs, the database is left alone and the plan says so."""
    ci = None if opts.dsn else compose_of(opts.harbor_yml)
    if own_database(ci) and ci is not None and not ci.running and not ci.docker_error:
        with database(opts.harbor_yml, None, ci=ci) as dsn:
            report = plan_on(replace(opts, dsn=dsn))
        assert dsn is not None  # own_database(ci): database() serves harbor-db and yields its DSN
        assert report.installation is not None
        report.installation["dsn_masked"] = None
        if report.run_command is not None:
            report.run_command = replace(report.run_command, dsn=None)
        return report
    return plan_on(opts)


def plan_on(opts: Options) -> RunReport:
    inst = detect(opts.harbor_yml, opts.dsn, opts.storage, opts.s3_endpoint, opts.s3_region)
    backup_dir = Path(opts.backup_dir) if opts.backup_dir else None
    resuming = backup_dir is not None and (backup_dir / "journal.jsonl").exists()
    checks = preflight(inst, backup_dir, resuming, need_db=False, opts=opts)
    ok = all_ok(checks)
    target = opts.target
    gone = removals(inst, start_release(inst), target)
    blocked = any(r.component == "chartmuseum" and r.charts and (r.charts.total or not r.charts.counted)
                  for r in gone)
    run_command = RunCommand(
        opts.harbor_yml, opts.backup_dir, dsn=dsn_without_password(opts.dsn) if opts.dsn else None,
        to=line_text(target) if opts.to else None, engine_bindir=opts.engine_bindir, engine_mode=opts.engine_mode,
        engine_old_bindir=opts.engine_old_bindir, stop_harbor=bool((inst.compose or {}).get("running")),
        drop_chartmuseum=blocked and opts.drop_chartmuseum) if ok else None
    advice = ([Advice(Advice.BEFORE_RUN, f"Before the run: {r.text()}") for r in gone if r.in_use]
              if ok else [Advice(Advice.FIX_CHECKS, "Fix the failed checks above, then plan again.")])
    steps = step_plan(inst, target, ok, steps_for(opts), planned_engine(inst, opts, backup_dir if resuming else None))
    extra = {"harbor_path": harbor_way(inst, target), "removed": [r.to_dict() for r in gone],
             "data_losses": planned_data_losses(inst, target)}
    est = estimate(inst, opts, [s.name for s in steps]) if ok else None
    if est is not None:
        for s in steps:
            s.estimate_seconds = round(est.steps.get(s.name, 0.0), DIGITS)
        extra["estimate"] = est.to_dict()
    return RunReport("plan", ok, steps, target=target, installation=inst.to_dict(), hops=hops(inst, target),
                     checks=checks, next=advice, extra=extra, run_command=run_command)


def planned_data_losses(inst: Installation, target: str) -> list[dict]:
    """The rows the release steps up to target drop by design (2.10: labels of projects and
    repositories), counted read-only; [] without a database, or when it cannot be planned (the
    preflight says why)."""
    db_state = inst.database
    if db_state is None or inst.dsn is None or db_state.release is None or db_state.dirty \
            or db_state.schema_version >= SCHEMA_VERSION[target]:   # (inst.database is read through inst.dsn)
        return []
    try:
        return [asdict(loss) for loss in db.data_losses(inst.dsn, to=target)]
    except HarborUpgradeError:
        return []


def harbor_way(inst: Installation, target: str) -> dict | None:
    """Harbor's own installs from the start to the target, beside harbor-upgrade's one run."""
    start = start_release(inst)
    if start is None or start == "1.9.0":
        return None
    try:
        way = harbor_path(start, target, inst.pg_major_on_disk)
    except HarborUpgradeError:
        return None      # a downgrade or an unknown release: the preflight says so
    d = way.to_dict()
    d["ours"] = (f"harbor-upgrade: one run from {line_text(start)} to {line_text(target)} (config, database, "
                 "artifact metadata; the PostgreSQL engine with --engine-bindir, or left to the target's harbor-db: "
                 f"PostgreSQL {HARBOR_DB_MAJOR[target]})")
    return d


def planned_engine(inst: Installation, opts: Options, backup_dir: Path | None) -> dict | None:
    """The engine upgrade run would do: as recorded by a run on backup_dir, else as resolved now
    (None when not asked, or when it cannot be resolved: the preflight says why)."""
    if "engine" not in step_names(opts):
        return None
    recorded = recorded_engine(backup_dir)
    if recorded:
        return recorded
    try:
        return engine_target(inst, opts)
    except HarborUpgradeError:
        return None

