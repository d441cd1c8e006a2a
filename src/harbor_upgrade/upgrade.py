"""The whole upgrade in one command: plan, preflight, the journaled run, resume.

``plan`` describes the installation, the release hops to 2.4.0, every step and the
preflight checks (pass / warn / fail) and writes nothing. ``run`` takes the steps in
order — backup, config, engine (when asked), database, artifacts, scanner, verify —
recording each in the journal inside the backup folder; run again after a crash or a
kill, it skips the steps the journal shows done and continues at the first unfinished
one. Every step is safe to repeat: the backup starts over in an empty folder, the
config is written again from the untouched original, the engine upgrade redoes a
half-made new cluster (the old one is untouched until ``pg-upgrade --cleanup``) and
reuses a finished one, each database release step is one transaction, the artifact
backfill resumes from its checkpoints, and the scanner step is one transaction.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ExitStatus, ExternalFailure, HarborUpgradeError, InvalidInput, UnsafeState
from .installation import Installation, detect
from .journal import Journal, sha256_file
from .postgres.upgrade import folder_size
from .report import FAIL, PASS, WARN, Check, ProgressReporter, all_ok
from .secrets import mask_dsn
from .versions import SCHEMA_VERSION, TARGET, path_between
from .verify import load_known_missing, missing_manifests, verify

STEPS = ("backup", "config", "database", "artifacts", "scanner", "verify")
ENGINE_MODES = ("copy", "link", "dump")
STEP_TEXT = {
    "backup": "back up the database (pg_dump), harbor.yml, common/config and the data volume's small state; "
              "then restore it into a scratch cluster to prove it",
    "config": "write harbor.yml migrated to 2.4.0 next to the original (comments and order kept)",
    "engine": "upgrade the PostgreSQL cluster in data_volume/database to a new major, beside the old one "
              "(kept), and serve the database from it",
    "database": "apply the database release steps (one transaction each)",
    "artifacts": "read every manifest from registry storage and fill in the artifact metadata",
    "scanner": "remove the Clair registration and its reports; register Trivy and make it the default",
    "verify": "compare counts with the backup and check the invariants",
}
BACKUP_SUBDIR = "backup"
KNOWN_MISSING = "missing-before.json"
LOCK_FILE = "journal.lock"

# Harbor's containers run as these users (postgres in harbor-db; harbor elsewhere).
DB_UID, HARBOR_UID = 999, 10000
HARBOR_OWNED = ("registry", "job_logs", "chart_storage", "trivy-adapter")

# What Harbor 2.4's core registers when installed --with-trivy.
TRIVY = {"name": "Trivy", "url": "http://trivy-adapter:8080", "description": "The Trivy scanner adapter"}


@dataclass
class Options:
    harbor_yml: str
    backup_dir: str | None = None
    dsn: str | None = None
    storage: str | None = None
    config_out: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    jobs: int = 4
    yes: bool = False
    dry_run: bool = False
    engine_bindir: str | None = None        # asks for the engine step: the new major's bin folder
    engine_mode: str = "copy"
    engine_old_bindir: str | None = None    # default: found by the old cluster's major

    @property
    def steps(self) -> tuple[str, ...]:
        if not self.engine_bindir:
            return STEPS
        return STEPS[:2] + ("engine",) + STEPS[2:]

    def output_config(self, inst: Installation) -> Path:
        return Path(self.config_out) if self.config_out else Path(inst.harbor_dir) / f"harbor-{TARGET}.yml"


# -- plan ----------------------------------------------------------------------------------------
def start_release(inst: Installation) -> str | None:
    """The release the upgrade starts from: the database's when known, else harbor.yml's."""
    if inst.database and inst.database.release:
        return inst.database.release
    return inst.release


def hops(inst: Installation) -> list[str]:
    start = start_release(inst)
    if start is None or start == "1.9.0":
        return []
    return [start] + path_between(start, TARGET)


def step_plan(inst: Installation, ok: bool = True, steps: tuple[str, ...] = STEPS,
              engine: dict | None = None) -> list[dict]:
    """The steps run would take; each is ok to take when the preflight passed."""
    out = []
    db = inst.database
    for s in steps:
        text = STEP_TEXT[s]
        if s == "engine" and engine:
            text += (f": PostgreSQL {engine['old_version']} → {engine['new_major']} ({engine['mode']}) into "
                     f"{engine['new_datadir']}, served on the same port")
        if s == "database" and db and db.schema_version is not None:
            text += f": schema {db.schema_version} → {SCHEMA_VERSION[TARGET]}"
        if s == "artifacts":
            text += f" ({inst.storage})"
        out.append({"name": s, "planned": True, "ok": ok, "summary": text})
    return out


# -- preflight checks ---------------------------------------------------------------------------
def check_start(inst: Installation) -> Check:
    db = inst.database
    if inst.release_error:
        return Check("supported start", FAIL, inst.release_error,
                     hint="Harbor older than 1.10: upgrade to 1.10 first with Harbor's own tools")
    if db and db.schema_version is not None and db.schema_version < SCHEMA_VERSION["1.10.0"]:
        return Check("supported start", FAIL, f"database schema {db.schema_version} is older than 1.10 (15)",
                     hint="upgrade to 1.10 first with Harbor's own migrator, then run harbor-upgrade")
    if start_release(inst) == "1.9.0":
        return Check("supported start", FAIL, f"harbor.yml _version {inst.config_version} is older than 1.10",
                     hint="upgrade to 1.10 first, then run harbor-upgrade")
    if db and db.schema_version is not None and db.release is None:
        return Check("supported start", FAIL, f"database schema {db.schema_version} is no known Harbor version")
    start = start_release(inst)
    if start == TARGET:
        return Check("supported start", PASS, f"already at {TARGET}: the steps only check and record")
    return Check("supported start", PASS, f"{start} → {TARGET} is supported")


def check_versions_agree(inst: Installation) -> Check:
    db = inst.database
    if not db or not db.release or not inst.release:
        return Check("versions agree", PASS, "nothing to compare")
    if db.release != inst.release:
        return Check("versions agree", WARN,
                     f"harbor.yml says {inst.config_version}, the database is at {db.release} "
                     f"(schema {db.schema_version}); upgrading from the database's release",
                     hint="check that harbor.yml belongs to this installation (Harbor shipped wrong _version "
                          "values in some releases)")
    return Check("versions agree", PASS, f"harbor.yml and database both at {db.release}")


def check_dirty(inst: Installation, resuming: bool) -> Check:
    db = inst.database
    if db and db.dirty:
        return Check("schema not dirty", WARN if resuming else FAIL,
                     f"schema_migrations is {db.schema_version} and dirty: a migration failed half-way",
                     hint="harbor-upgrade db repair --dsn DSN (checks which version the schema really has)")
    return Check("schema not dirty", PASS, "clean")


def check_stopped(inst: Installation, need_db: bool = True) -> Check:
    db = inst.database
    if db is None:
        return Check("Harbor stopped", FAIL if need_db else WARN, "no database to check: pass --dsn",
                     hint="the database steps need --dsn postgresql://USER[:PASSWORD]@HOST:PORT/registry")
    if db.other_clients:
        return Check("Harbor stopped", FAIL, f"{len(db.other_clients)} other sessions on the database",
                     hint="stop Harbor first: docker compose down (in the harbor folder)", samples=db.other_clients)
    return Check("Harbor stopped", PASS, "no other client on the database")


def free_bytes(path: Path) -> int:
    p = path
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def check_disk(inst: Installation, backup_dir: Path | None) -> Check:
    if backup_dir is None:
        return Check("free disk", PASS, "no backup folder given yet (run --backup-dir): not checked")
    db_size = inst.database.size_bytes if inst.database else 0
    need = int(db_size * 1.2) + folder_size(Path(inst.harbor_dir)) // 2
    free = free_bytes(backup_dir)
    detail = f"{free / 2**20:,.0f} MiB free at {backup_dir}, about {need / 2**20:,.1f} MiB needed"
    if free < need:
        return Check("free disk", FAIL, detail, hint="free space or choose another --backup-dir")
    if free < 2 * need:
        return Check("free disk", WARN, detail + " (less than twice that)")
    return Check("free disk", PASS, detail)


def check_owners(inst: Installation) -> Check:
    dv = Path(inst.data_volume)
    if not dv.is_dir():
        return Check("data folder owners", WARN, f"data volume {dv} is not on this machine: not checked")
    problems = []
    db_dir = dv / "database"
    if db_dir.is_dir():
        st = db_dir.stat()
        if st.st_uid != DB_UID:
            problems.append(f"{db_dir} is owned by uid {st.st_uid}, harbor-db runs as {DB_UID}")
        if st.st_mode & 0o777 != 0o700:
            problems.append(f"{db_dir} has mode {st.st_mode & 0o777:04o}, PostgreSQL needs 0700")
    for name in HARBOR_OWNED:
        p = dv / name
        if p.is_dir() and p.stat().st_uid != HARBOR_UID:
            problems.append(f"{p} is owned by uid {p.stat().st_uid}, Harbor's containers run as {HARBOR_UID}")
    if problems:
        return Check("data folder owners", WARN, f"{len(problems)} folders Harbor's non-root containers "
                     "cannot use as they are", samples=problems,
                     hint=f"chown -R {DB_UID}:{DB_UID} {db_dir} && chmod 0700 {db_dir}; "
                          f"chown -R {HARBOR_UID}:{HARBOR_UID} the others")
    return Check("data folder owners", PASS, f"database {DB_UID} 0700, others {HARBOR_UID}")


def certificate_has_san(path: Path) -> bool:
    # the ssl module's own decoder: no third-party X.509 parser needed for one extension
    return bool(ssl._ssl._test_decode_cert(str(path)).get("subjectAltName"))  # noqa: SLF001


def check_internal_tls(inst: Installation) -> Check:
    if not inst.components.get("internal_tls"):
        return Check("internal TLS certificates", PASS, "internal TLS not in use")
    d = Path(inst.internal_tls_dir or "")
    certs = sorted(d.glob("*.crt")) if d.is_dir() else []
    if not certs:
        return Check("internal TLS certificates", WARN, f"no certificates found in {d}: not checked")
    bad = []
    for c in certs:
        try:
            if not certificate_has_san(c):
                bad.append(c.name)
        except (ssl.SSLError, OSError, ValueError):
            bad.append(f"{c.name} (unreadable)")
    if bad:
        return Check("internal TLS certificates", FAIL,
                     f"{len(bad)} certificates without a subjectAltName: Harbor 2.2+ refuses them", samples=bad,
                     hint="generate new internal certificates with SANs (Harbor's prepare gencert) before "
                          "starting 2.4.0")
    return Check("internal TLS certificates", PASS, f"{len(certs)} certificates carry a subjectAltName")


def check_clair(inst: Installation) -> Check:
    if inst.components.get("clair"):
        return Check("Clair", WARN, "Clair is in use: 2.2 removed it; its reports become invisible and Trivy "
                     "becomes the default scanner", hint="after the upgrade, scan all artifacts with Trivy")
    return Check("Clair", PASS, "not in use")


def check_lint(inst: Installation) -> Check:
    db = inst.database
    if db is None or db.schema_version is None or db.release is None or db.dirty \
            or db.schema_version >= SCHEMA_VERSION[TARGET]:
        return Check("database lint", PASS, "nothing to lint")
    from . import db as dbmod
    findings = dbmod.lint(inst.dsn)
    if findings:
        return Check("database lint", FAIL, f"{len(findings)} kinds of rows would make a release step fail",
                     samples=[f"[{f.step}] {f.table}: {f.problem} ({f.count} rows); fix: {f.fix}" for f in findings],
                     hint="fix those rows (harbor-upgrade db lint --dsn DSN lists them), then plan again")
    return Check("database lint", PASS, "no rows that would break a release step")


def check_storage(inst: Installation) -> Check:
    try:
        storage = open_storage(inst)
    except HarborUpgradeError as e:
        return Check("registry storage", FAIL, e.message, hint=e.hint or "pass --storage")
    try:
        first = next(iter(storage.walk("repositories")), None)
    finally:
        storage.close()
    if first is None:
        return Check("registry storage", WARN, f"{inst.storage} holds no repositories")
    return Check("registry storage", PASS, f"{inst.storage} is readable")


def preflight(inst: Installation, backup_dir: Path | None = None, resuming: bool = False,
              need_db: bool = True, opts: Options | None = None) -> list[Check]:
    """The checks before anything is written; need_db=False (plan) lets a missing --dsn pass as a warning.
    With opts asking for the engine step, its own check too."""
    checks = [check_start(inst), check_versions_agree(inst), check_dirty(inst, resuming),
              check_stopped(inst, need_db),
              check_disk(inst, backup_dir), check_owners(inst), check_internal_tls(inst),
              check_clair(inst), check_storage(inst)]
    if opts is not None and "engine" in opts.steps:
        checks.append(check_engine(inst, opts, recorded_engine(backup_dir) if resuming else None))
    if all_ok(checks) and not resuming:
        checks.append(check_lint(inst))
    return checks


def recorded_engine(backup_dir: Path | None) -> dict | None:
    """The engine step's plan as a run on this backup folder recorded it."""
    if backup_dir is None or not (backup_dir / "journal.jsonl").exists():
        return None
    return Journal.read(backup_dir).last("engine-plan")


def engine_next_steps(engine: dict, start: str | None) -> list[str]:
    from .postgres.layout import harbor_database_dir, harbor_home
    old, new = Path(engine["old_datadir"]), Path(engine["new_datadir"])
    db_dir = harbor_database_dir(old)
    home = harbor_home(db_dir, engine["new_major"]) if db_dir else None
    move = f" --move-into {home}" if home and home != new else ""
    out = [f"The database now runs on PostgreSQL {engine['new_major']} from {new}, started by harbor-upgrade on the "
           f"old server's port and socket. The old PostgreSQL {engine['old_version']} cluster is kept"
           + (" " if engine["mode"] == "link" else ", unchanged ")
           + f"(Harbor {start or 'as it was'}) in {old}"
           + (" (link mode: it shares its files with the new one and must not be started)"
              if engine["mode"] == "link" else "")
           + f". Once 2.4.0 runs well, remove it: harbor-upgrade pg-upgrade --cleanup --old-datadir {old} "
             f"--new-datadir {new}{move}"]
    if engine["new_major"] != 13:
        out.append(f"Harbor {TARGET}'s own harbor-db image runs PostgreSQL 13: a PostgreSQL {engine['new_major']} "
                   "cluster is served by a server of that major, given to Harbor as external_database in harbor.yml.")
    return out


def next_steps(inst: Installation, opts: Options, ok: bool, failed_step: str | None,
               engine: dict | None = None) -> list[str]:
    out: list[str] = []
    b = opts.backup_dir
    if not ok:
        if failed_step:
            out.append(f"Fix the problem above, then run the same `harbor-upgrade run` command again: it continues "
                       f"at the '{failed_step}' step.")
        if b and Path(b, BACKUP_SUBDIR, "manifest.json").exists():
            out.append(f"Or go back to where you started: harbor-upgrade rollback --backup-dir {b}")
        return out
    out.append(f"Install the Harbor {TARGET} release with the migrated settings: copy {opts.output_config(inst)} "
               f"to harbor.yml in the {TARGET} installer folder and run ./install.sh --with-trivy"
               + (" --with-notary" if inst.components.get("notary") else "")
               + (" --with-chartmuseum" if inst.components.get("chartmuseum") else "") + ".")
    if inst.components.get("clair"):
        out.append("Clair is gone and its reports with it: scan all artifacts with Trivy (Interrogation Services "
                   "> Vulnerability > SCAN NOW) once Harbor is up.")
    if inst.components.get("notary") or inst.components.get("chartmuseum"):
        out.append("Notary and ChartMuseum still work in 2.4.0 but are removed in 2.9 and 2.8: plan moving "
                   "signatures to cosign and charts to OCI.")
    if engine:
        out += engine_next_steps(engine, start_release(inst))
    if b:
        out.append(f"Keep {b} until 2.4.0 runs well; to go back: harbor-upgrade rollback --backup-dir {b}")
    return out


def plan(opts: Options) -> dict:
    """The plan report: installation, hops, steps and preflight checks. Writes nothing."""
    inst = detect(opts.harbor_yml, opts.dsn, opts.storage, opts.s3_endpoint, opts.s3_region)
    backup_dir = Path(opts.backup_dir) if opts.backup_dir else None
    resuming = backup_dir is not None and (backup_dir / "journal.jsonl").exists()
    checks = preflight(inst, backup_dir, resuming, need_db=False, opts=opts)
    ok = all_ok(checks)
    return {"ok": ok, "command": "plan", "installation": inst.to_dict(), "hops": hops(inst),
            "steps": step_plan(inst, ok, opts.steps, planned_engine(inst, opts, backup_dir if resuming else None)),
            "checks": [c.to_dict() for c in checks],
            "next": ([f"harbor-upgrade run --harbor-yml {opts.harbor_yml} --backup-dir "
                      f"{opts.backup_dir or 'BACKUP_DIR'}" + (f" --dsn '{mask_dsn(opts.dsn)}'" if opts.dsn else "")
                      + engine_args(opts)]
                     if ok else ["Fix the failed checks above, then plan again."])}


def planned_engine(inst: Installation, opts: Options, backup_dir: Path | None) -> dict | None:
    """The engine upgrade run would do: as recorded by a run on backup_dir, else as resolved now
    (None when not asked, or when it cannot be resolved: the preflight says why)."""
    if "engine" not in opts.steps:
        return None
    recorded = recorded_engine(backup_dir)
    if recorded:
        return recorded
    try:
        return engine_target(inst, opts)
    except HarborUpgradeError:
        return None


def engine_args(opts: Options) -> str:
    if not opts.engine_bindir:
        return ""
    return (f" --engine-bindir {opts.engine_bindir} --engine-mode {opts.engine_mode}"
            + (f" --engine-old-bindir {opts.engine_old_bindir}" if opts.engine_old_bindir else ""))


# -- the steps ----------------------------------------------------------------------------------
def open_storage(inst: Installation):
    """The registry storage, with harbor.yml's own S3 keys when it names the bucket (else the
    usual AWS environment)."""
    from .registry import open_storage as _open
    if inst.storage_kind == "s3" and inst.s3_keys:
        from .registry import parse_s3_spec
        from .registry.s3 import S3Storage
        bucket, root = parse_s3_spec(inst.storage)
        return S3Storage(bucket, root, endpoint_url=inst.s3_endpoint, region=inst.s3_region,
                         access_key=inst.s3_keys[0], secret_key=inst.s3_keys[1])
    return _open(inst.storage, s3_endpoint=inst.s3_endpoint, s3_region=inst.s3_region)


@dataclass
class Context:
    opts: Options
    inst: Installation
    journal: Journal
    backup_dir: Path
    progress: ProgressReporter
    outcome: dict = field(default_factory=dict)    # per-step results the report shows

    @property
    def dsn(self) -> str:
        return self.inst.dsn


StepFn = Callable[[Context], dict]


def step_backup(ctx: Context) -> dict:
    from .backup import create_backup, verify_backup
    to = ctx.backup_dir / BACKUP_SUBDIR
    if to.exists():
        shutil.rmtree(to)  # a backup cut short by a crash: start it over
    dv = Path(ctx.inst.data_volume)
    manifest = create_backup(ctx.dsn, ctx.inst.harbor_dir, to, data_volume=dv if dv.is_dir() else None,
                             jobs=min(ctx.opts.jobs, 4), progress=ctx.progress.note)
    checked = verify_backup(to)
    if not checked.ok:
        raise HarborUpgradeError(f"the backup in {to} does not restore cleanly: " + "; ".join(checked.problems[:5]),
                                 reference="backup-unverified", hint="check free space and PostgreSQL tools, "
                                 "then run again (the backup starts over)")
    return {"summary": f"{sum(manifest.table_counts.values()):,} rows in {len(manifest.table_counts)} tables, "
                       f"{len(manifest.files)} files; restored into a scratch cluster and checked",
            "changed": {"backup": str(to)},
            "checksums": {"manifest.json": sha256_file(to / "manifest.json")}}


def step_config(ctx: Context) -> dict:
    from .config import migrate_file
    out = ctx.opts.output_config(ctx.inst)
    result = migrate_file(ctx.inst.harbor_yml, str(out), target=TARGET)
    changes = getattr(result, "changes", None)
    return {"summary": f"{ctx.inst.config_version} → {TARGET}: {out}"
                       + (f" ({len(changes)} changes)" if changes is not None else ""),
            "changed": {"written": str(out)},
            "checksums": {"input": sha256_file(ctx.inst.harbor_yml), "output": sha256_file(out)}}


def step_database(ctx: Context) -> dict:
    from . import db
    seen: set[str] = set()

    def one_line_per_release(step: str, _what: str) -> None:
        if step not in seen:
            seen.add(step)
            ctx.progress.note(f"  release step {step}")
    report = db.migrate(ctx.dsn, to=TARGET, progress=one_line_per_release)
    names = [s.name for s in report.steps]
    return {"summary": f"schema {report.from_version} → {report.to_version}"
                       + (f": {', '.join(names)}" if names else " (nothing to do)"),
            "changed": {"from_version": report.from_version, "to_version": report.to_version,
                        "rows": sum(s.rows for s in report.steps)}}


def step_artifacts(ctx: Context) -> dict:
    from .artifacts import backfill
    storage = open_storage(ctx.inst)
    try:
        # resume=True continues a backfill this run started and was cut short; else it starts afresh
        report = backfill(ctx.dsn, storage, jobs=ctx.opts.jobs, resume=True,
                          progress=ctx.progress.counter("artifacts"))
    finally:
        storage.close()
    problems = [f"{p.repository}@{p.digest[:19]}: {p.reason}" for p in report.problems]
    reasons = Counter(p.reason for p in report.problems)
    summary = (f"{report.artifacts_done:,} artifacts written, {report.children_created:,} index children and "
               f"{report.references_created:,} references created, {report.untagged_found:,} untagged manifests "
               f"left out, {len(report.ignored_tags)} dangling tags ignored")
    if problems:
        summary += ("; not abstracted: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common())
                    + f" (e.g. {'; '.join(problems[:3])}); verify tells which were so before")
    return {"summary": summary,
            "changed": {"artifacts_done": report.artifacts_done, "children_created": report.children_created,
                        "references_created": report.references_created, "problems": len(problems),
                        "data_version_set": report.data_version_set}}


SCANNER_SQL_CLAIR = "SELECT id, uuid, is_default FROM scanner_registration WHERE immutable AND name = 'Clair'"


def step_scanner(ctx: Context) -> dict:
    """Clair out, Trivy in: what Harbor 2.4's core does at start when installed --with-trivy
    (register the immutable Trivy, make it the default when there is none), plus the
    removal of a Clair registration that 2.2's SQL kept (it keeps Clair when any of its
    columns is NULL) together with its reports."""
    import psycopg
    changed = {"clair_removed": False, "clair_reports_removed": 0, "trivy_registered": False,
               "trivy_default": False}
    with psycopg.connect(ctx.dsn) as conn, conn.transaction():
        cur = conn.cursor()
        clair = cur.execute(SCANNER_SQL_CLAIR).fetchone()
        if clair:
            cur.execute("DELETE FROM scan_report WHERE registration_uuid = %s", (clair[1],))
            changed["clair_reports_removed"] = cur.rowcount
            cur.execute("DELETE FROM scanner_registration WHERE id = %s", (clair[0],))
            changed["clair_removed"] = True
        trivy = cur.execute("SELECT id FROM scanner_registration WHERE immutable AND name = %s",
                            (TRIVY["name"],)).fetchone()
        if not trivy:
            dbname = cur.execute("SELECT current_database()").fetchone()[0]
            # a uuid derived from the database: a repeated run registers the very same scanner
            reg_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"harbor-upgrade:trivy:{dbname}"))
            trivy = cur.execute(
                "INSERT INTO scanner_registration (uuid, url, name, description, auth, access_cred, "
                "use_internal_addr, immutable) VALUES (%s, %s, %s, %s, '', '', true, true) RETURNING id",
                (reg_uuid, TRIVY["url"], TRIVY["name"], TRIVY["description"])).fetchone()
            changed["trivy_registered"] = True
        has_default = cur.execute("SELECT count(*) FROM scanner_registration WHERE is_default").fetchone()[0]
        if not has_default:
            cur.execute("UPDATE scanner_registration SET is_default = true WHERE id = %s", (trivy[0],))
            changed["trivy_default"] = True
        default = cur.execute("SELECT name FROM scanner_registration WHERE is_default").fetchone()[0]
    parts = [f"Clair removed with {changed['clair_reports_removed']} reports" if changed["clair_removed"]
             else "no Clair registration left"]
    parts.append("Trivy registered" if changed["trivy_registered"] else "Trivy already registered")
    parts.append(f"default scanner: {default}")
    return {"summary": "; ".join(parts), "changed": changed}


def step_verify(ctx: Context) -> dict:
    from .backup import read_manifest
    manifest = read_manifest(ctx.backup_dir / BACKUP_SUBDIR)
    storage = open_storage(ctx.inst)
    try:
        result = verify(ctx.dsn, storage, manifest.table_counts, load_known_missing(ctx.backup_dir / KNOWN_MISSING))
    finally:
        storage.close()
    ctx.outcome["verify"] = result.to_dict()
    if not result.ok:
        raise HarborUpgradeError("verification failed: " + "; ".join(result.failures),
                                 reference="verify-failed", exit_code=ExitStatus.CHANGES_NEEDED,
                                 hint=f"harbor-upgrade verify --dsn DSN --backup-dir {ctx.backup_dir} shows the "
                                      "details; to go back: harbor-upgrade rollback")
    warnings = sum(1 for c in result.checks if c.status == WARN)
    return {"summary": f"{len(result.counts)} counts and {len(result.checks)} checks pass"
                       + (f" ({warnings} with warnings)" if warnings else ""),
            "changed": {}}


# -- the engine step ----------------------------------------------------------------------------
# What a client's DSN depends on: the new cluster is served with the old server's values.
LISTEN_SETTINGS = ("port", "listen_addresses", "unix_socket_directories")


def engine_new_datadir(old: Path, new_major: int) -> Path:
    """Beside the old cluster, never inside it: harbor-db's pgNN sub-folder when the old one
    is such a sub-folder (2.3+), else database-pgNN next to data_volume/database (9.6 kept
    its cluster at the top of that folder)."""
    if old.name.startswith("pg") and old.name[2:].isdigit():
        return old.parent / f"pg{new_major}"
    return old.with_name(f"{old.name}-pg{new_major}")


def engine_target(inst: Installation, opts: Options) -> dict:
    """Which cluster the engine step upgrades, with which binaries, into which folder; an
    operator error when any of it is missing or does not fit."""
    from .postgres.cluster import find_binaries
    from .postgres.layout import harbor_cluster
    if opts.engine_mode not in ENGINE_MODES:
        raise InvalidInput(f"--engine-mode {opts.engine_mode!r} is not one of {', '.join(ENGINE_MODES)}",
                           reference="invalid-mode")
    db_dir = Path(inst.data_volume) / "database"
    if not db_dir.is_dir():
        raise InvalidInput(f"{db_dir} is not on this machine: the engine step upgrades only the cluster in the "
                           "installation's data_volume/database", reference="engine-no-local-cluster",
                           hint="upgrade an external database with its own tools, and run without --engine-bindir")
    old = harbor_cluster(db_dir)
    old_bin = find_binaries(major=old.major, bindir=opts.engine_old_bindir)
    if old_bin.major != old.major:
        raise InvalidInput(f"{old.path} is a PostgreSQL {old.pg_version} cluster but --engine-old-bindir "
                           f"{opts.engine_old_bindir} holds PostgreSQL {old_bin.major}", reference="datadir-version")
    new_bin = find_binaries(bindir=opts.engine_bindir)
    if new_bin.major <= old.major:
        raise InvalidInput(f"--engine-bindir {opts.engine_bindir} holds PostgreSQL {new_bin.major}, not newer than "
                           f"the cluster's {old.pg_version}", reference="engine-not-newer")
    return {"old_datadir": str(old.path), "old_version": old.pg_version, "old_bindir": str(old_bin.bindir),
            "new_bindir": str(new_bin.bindir), "new_major": new_bin.major,
            "new_datadir": str(engine_new_datadir(old.path, new_bin.major)), "mode": opts.engine_mode}


def served_cluster(dsn: str) -> tuple[str, dict[str, str]]:
    """The system identifier of the cluster the DSN reaches, and its listen settings."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        sysid = str(conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0])
        listen = {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in LISTEN_SETTINGS}
    return sysid, listen


def datadir_system_id(bindir: str | os.PathLike, datadir: Path) -> str:
    r = subprocess.run([str(Path(bindir) / "pg_controldata"), str(datadir)], capture_output=True, text=True,
                       env={**os.environ, "LC_ALL": "C"})
    for line in r.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Database system identifier":
            return value.strip()
    raise ExternalFailure(f"pg_controldata cannot read {datadir}: {(r.stderr or r.stdout).strip()[-500:]}",
                          reference="postgres-failed")


def answers(dsn: str) -> bool:
    import psycopg
    try:
        psycopg.connect(dsn, autocommit=True, connect_timeout=5).close()
    except psycopg.Error:
        return False
    return True


def check_engine(inst: Installation, opts: Options, recorded: dict | None) -> Check:
    """The engine step's preflight: a local Harbor cluster, binaries of its major and of a
    newer one, an empty place beside it, the disk space the mode needs, and the DSN
    reaching that very cluster (its server is the one the step stops and replaces)."""
    import psycopg
    from .postgres.layout import list_entries
    from .postgres.upgrade import check_space
    name = "engine upgrade"
    if recorded:
        return Check(name, PASS, f"continuing the recorded upgrade of {recorded['old_datadir']} to PostgreSQL "
                                 f"{recorded['new_major']} ({recorded['mode']}) into {recorded['new_datadir']}")
    try:
        t = engine_target(inst, opts)
        old, new = Path(t["old_datadir"]), Path(t["new_datadir"])
        if list_entries(new):
            raise UnsafeState(f"{new} exists and is not empty: the new cluster goes there",
                              hint=f"move {new} away (it is not the installation's cluster), then plan again",
                              reference="datadir-not-empty")
        check_space(old, new, t["mode"])
        if inst.database is not None and served_cluster(inst.dsn)[0] != datadir_system_id(t["old_bindir"], old):
            raise UnsafeState(f"--dsn reaches another PostgreSQL cluster than the one in {old}",
                              hint="pass the DSN of the server running from data_volume/database",
                              reference="engine-other-cluster")
    except HarborUpgradeError as e:
        return Check(name, FAIL, e.message, hint=e.hint)
    except psycopg.Error as e:
        return Check(name, FAIL, f"cannot read the system identifier of the --dsn server: {e}".strip(),
                     hint="the engine step needs a superuser DSN (e.g. postgres)")
    size = folder_size(old)
    return Check(name, PASS, f"PostgreSQL {t['old_version']} in {old} → {t['new_major']} ({t['mode']}) into "
                             f"{new}; the cluster takes {size / 2**20:,.1f} MiB, {free_bytes(new) / 2**20:,.0f} MiB "
                             "are free there")


def pg_ctl(bindir: str | os.PathLike, datadir: Path, *args: str) -> subprocess.CompletedProcess:
    """pg_ctl as the data folder's owner (PostgreSQL never runs as root), without the
    caller's PG* environment."""
    from .postgres.cluster import runnable_bindir
    from .postgres.upgrade import data_owner
    owner = data_owner(datadir)
    runnable = runnable_bindir(Path(bindir), owner.uid, owner.gid)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}
    return subprocess.run([str(runnable / "pg_ctl"), "-D", str(datadir), *args], capture_output=True, text=True,
                          cwd="/", env=env, **owner.run_kw())


def server_running(bindir: str | os.PathLike, datadir: Path) -> bool:
    return (datadir / "postmaster.pid").exists() and pg_ctl(bindir, datadir, "status").returncode == 0


def serves_with(datadir: Path, listen: dict[str, str]) -> bool:
    """Whether the running server of datadir has the given port and (first) socket folder:
    postmaster.pid's 4th and 5th lines."""
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return False
    sockets = [d.strip() for d in listen["unix_socket_directories"].split(",") if d.strip()]
    return len(lines) >= 5 and lines[3].strip() == listen["port"] and lines[4].strip() == (sockets[:1] or [""])[0]


def stop_server(bindir: str | os.PathLike, datadir: Path) -> None:
    r = pg_ctl(bindir, datadir, "stop", "-m", "fast", "-w", "-t", "120")
    if r.returncode != 0:
        raise ExternalFailure(f"pg_ctl stop of {datadir} failed: {(r.stderr or r.stdout).strip()[-1000:]}",
                              reference="engine-stop-failed", hint="stop that PostgreSQL server, then run again")


def start_server(bindir: str | os.PathLike, datadir: Path, listen: dict[str, str]) -> None:
    from .postgres.upgrade import data_owner
    log = datadir.with_name(f"{datadir.name}.log")
    if not log.exists():
        log.touch(mode=0o600)
        data_owner(datadir).chown(log)
    options = " ".join(f"-c {k}='{v}'" for k, v in listen.items())
    r = pg_ctl(bindir, datadir, "-l", str(log), "-o", options, "-w", "-t", "120", "start")
    if r.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise ExternalFailure(f"cannot start PostgreSQL in {datadir}: {r.stderr.strip()[-500:]} {tail}",
                              reference="engine-start-failed", hint=f"see {log}")


def ensure_serving(bindir: str | os.PathLike, datadir: Path, listen: dict[str, str]) -> str:
    """Have datadir's server running with the given listen settings; says what it did."""
    if server_running(bindir, datadir):
        if serves_with(datadir, listen):
            return "already running"
        stop_server(bindir, datadir)  # a private-socket server a killed attempt left behind
    start_server(bindir, datadir, listen)
    return "started"


def engine_state(rec: dict) -> dict | None:
    """The state file upgrade_cluster writes last, once the new cluster is verified: a
    finished upgrade of this very old cluster, or None."""
    from .postgres.layout import read_pg_version
    from .postgres.upgrade import state_path
    new = Path(rec["new_datadir"])
    try:
        state = json.loads(state_path(new).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if state.get("verified") and state.get("old_datadir") == rec["old_datadir"] \
            and state.get("new_major") == rec["new_major"] and read_pg_version(new) == str(rec["new_major"]):
        return state
    return None


def remove_half_made(rec: dict) -> None:
    """What a killed attempt left of the new cluster; the old one is as it was (a link-mode
    attempt that got as far as disabling it is refused before: see old_cluster_usable)."""
    from .postgres import upgrade as engine
    new = Path(rec["new_datadir"])
    if server_running(rec["new_bindir"], new):
        stop_server(rec["new_bindir"], new)
    shutil.rmtree(new, ignore_errors=True)
    engine.state_path(new).unlink(missing_ok=True)


def old_cluster_usable(rec: dict) -> None:
    """pg_upgrade --link renames the old global/pg_control before it links the files; once
    it has, the old cluster shares them with a new one that may have run: neither is safe
    to start or to remove without a look, so an interrupted link-mode attempt stops here."""
    old = Path(rec["old_datadir"])
    if rec["mode"] == "link" and (old / "global" / "pg_control.old").exists():
        raise UnsafeState(f"an interrupted link-mode upgrade left {old} sharing its files with {rec['new_datadir']}, "
                          "and the new cluster was not verified", reference="engine-link-interrupted",
                          hint="restore data_volume/database from your snapshot (link mode needs one), then run "
                               "again; or check the new cluster by hand and finish with harbor-upgrade pg-upgrade")


def step_engine(ctx: Context) -> dict:
    """Stop the old server (as the data folder's owner), upgrade its cluster into a new
    folder beside it, start the new cluster with the old server's port and socket."""
    import psycopg
    from .postgres import upgrade as engine
    from .postgres.layout import list_entries
    say = ctx.progress.note
    rec = ctx.journal.last("engine-plan")
    if rec is None:
        target = engine_target(ctx.inst, ctx.opts)
        if list_entries(target["new_datadir"]):
            raise UnsafeState(f"{target['new_datadir']} exists and is not empty", reference="datadir-not-empty",
                              hint="move it away, then run again")
        rec = ctx.journal.write("engine-plan", "engine", **target, listen=served_cluster(ctx.dsn)[1])
    old, new = Path(rec["old_datadir"]), Path(rec["new_datadir"])
    if server_running(rec["old_bindir"], old):
        say(f"  stopping the PostgreSQL server of {old} (pg_ctl stop as the folder's owner)")
        stop_server(rec["old_bindir"], old)
        ctx.journal.write("engine-stopped", "engine", datadir=str(old))
    state = engine_state(rec)
    if state is None and (old / "postmaster.pid").exists() and answers(ctx.dsn):
        raise UnsafeState(f"the server behind --dsn runs from {old} but is no process pg_ctl can stop here "
                          "(a container?)", reference="postgres-running",
                          hint="stop harbor-db (docker compose down), then run again")
    if state is None:
        if list_entries(new) is not None or engine.state_path(new).exists():
            say(f"  removing {new}, the unfinished new cluster of an interrupted attempt")
            remove_half_made(rec)
            ctx.journal.write("engine-removed", "engine", datadir=str(new))
        try:
            result = engine.upgrade_cluster(rec["old_bindir"], old, rec["new_bindir"], new, mode=rec["mode"],
                                            jobs=max(1, min(ctx.opts.jobs, os.cpu_count() or 1)),
                                            progress=lambda m: say(f"  {m}"))
        except HarborUpgradeError:
            # the API left the old cluster as it was: serve it again, Harbor's database stays usable
            if engine_state(rec) is None and not (old / "global" / "pg_control.old").exists():
                ensure_serving(rec["old_bindir"], old, rec["listen"])
            raise
        ctx.journal.write("engine-upgraded", "engine", seconds={k: round(v, 3) for k, v in result.seconds.items()},
                          notes=result.notes)
        state = engine_state(rec)
    else:
        say(f"  {new} was finished and verified by an interrupted attempt: using it")
    listen = rec["listen"]
    how = ensure_serving(rec["new_bindir"], new, listen)
    say(f"  PostgreSQL {rec['new_major']} in {new}: {how} on port {listen['port']}")
    ctx.journal.write("engine-serving", "engine", datadir=str(new), how=how)
    with psycopg.connect(ctx.dsn, autocommit=True, connect_timeout=10) as conn:
        major = conn.info.server_version // 10000
    if major != rec["new_major"]:
        raise UnsafeState(f"--dsn reaches PostgreSQL {major}, not the new {rec['new_major']} cluster in {new}",
                          reference="engine-other-cluster", hint="check what else listens on that port")
    evidence = (state or {}).get("evidence", {})
    rows = sum(sum(t.values()) for t in evidence.get("tables", {}).values())
    sequences = sum(len(s) for s in evidence.get("sequences", {}).values())
    stopped = any(r["event"] == "engine-stopped" for r in ctx.journal.of_step("engine"))
    ctx.outcome["engine"] = rec
    return {"summary": f"PostgreSQL {rec['old_version']} → {rec['new_major']} ({rec['mode']}) into {new}: "
                       f"{rows:,} rows and {sequences} sequences equal to the old cluster's; serving on port "
                       f"{listen['port']}; the old cluster is kept in {old}",
            "changed": {"old_datadir": str(old), "new_datadir": str(new), "old_version": rec["old_version"],
                        "new_major": rec["new_major"], "mode": rec["mode"], "old_server_stopped": stopped,
                        "new_server": listen},
            "checksums": {"state": sha256_file(engine.state_path(new))}}


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
        how = ensure_serving(bindir, datadir, rec["listen"])
        if how != "already running":
            journal.write("engine-server", "engine", datadir=str(datadir), how=how)
        return str(datadir)


STEP_FUNCS: dict[str, StepFn] = {
    "backup": step_backup, "config": step_config, "engine": step_engine, "database": step_database,
    "artifacts": step_artifacts, "scanner": step_scanner, "verify": step_verify,
}


# -- the run ------------------------------------------------------------------------------------
def artifact_digests(dsn: str) -> list[tuple[str, str]]:
    """(repository, digest) of every artifact row, in the 1.10 layout (repo) or the 2.x one."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'artifact'")}
        repo = "repository_name" if "repository_name" in cols else "repo"
        return [(r[0], r[1]) for r in conn.execute(f"SELECT DISTINCT {repo}, digest FROM artifact ORDER BY 1, 2")]


def record_missing_before(ctx: Context) -> int:
    """Which artifact rows have no manifest in storage before anything changes: verify
    reports those as pre-existing rather than as damage done by the upgrade."""
    storage = open_storage(ctx.inst)
    try:
        missing = missing_manifests(storage, artifact_digests(ctx.dsn))
    finally:
        storage.close()
    path = ctx.backup_dir / KNOWN_MISSING
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted(missing)))
    os.replace(tmp, path)
    return len(missing)


class RunLock:
    """One run per backup folder at a time."""

    def __init__(self, backup_dir: Path):
        backup_dir.mkdir(parents=True, exist_ok=True)
        self.f = open(backup_dir / LOCK_FILE, "w")

    def __enter__(self) -> "RunLock":
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UnsafeState(f"another harbor-upgrade run is using {self.f.name}", reference="run-locked",
                              hint="wait for it to finish") from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def confirm_default(question: str) -> bool:
    import click
    return click.confirm(question, default=False, err=True)


def run(opts: Options, progress: ProgressReporter | None = None,
        confirm: Callable[[str], bool] = confirm_default, interactive: bool | None = None) -> dict:
    """Run (or continue) the upgrade; returns the report (``ok`` False when a step failed)."""
    if not opts.backup_dir:
        raise InvalidInput("run needs --backup-dir: the backup and the journal go there", reference="backup-dir-missing")
    if opts.dry_run:
        report = plan(opts)
        report["command"] = "run --dry-run"
        return report
    progress = progress or ProgressReporter(enabled=False)
    backup_dir = Path(opts.backup_dir).resolve()
    served = restore_engine_server(backup_dir)
    if served:
        progress.note(f"continuing an engine upgrade: the database is served from {served}")
    inst = detect(opts.harbor_yml, opts.dsn, opts.storage, opts.s3_endpoint, opts.s3_region)
    resuming = (backup_dir / "journal.jsonl").exists()
    checks = preflight(inst, backup_dir, resuming, opts=opts)
    steps = list(opts.steps)
    base = {"command": "run", "installation": inst.to_dict(), "hops": hops(inst), "backup_dir": str(backup_dir),
            "checks": [c.to_dict() for c in checks]}
    if not all_ok(checks):
        return {**base, "ok": False,
                "steps": step_plan(inst, False, opts.steps, planned_engine(inst, opts, backup_dir)),
                "next": ["Fix the failed checks above, then run again; nothing was changed."]}
    if not opts.yes:
        tty = interactive if interactive is not None else sys.stdin.isatty()
        if not tty:
            raise UnsafeState("run changes the installation and needs a confirmation: pass --yes",
                              reference="confirmation-needed", hint="harbor-upgrade plan shows what it will do")
        if not confirm(f"Upgrade {inst.harbor_yml} to {TARGET} (backup in {backup_dir})?"):
            raise UnsafeState("not confirmed; nothing was changed", reference="not-confirmed",
                              exit_code=ExitStatus.INTERRUPTED)
    with RunLock(backup_dir):
        journal = Journal.open(backup_dir)
        if journal.last("rollback"):
            raise InvalidInput(f"{backup_dir} was rolled back to: its backup is the installation's state now",
                               reference="backup-dir-rolled-back",
                               hint="run again with a new, empty --backup-dir (keep this one)")
        recorded_plan = journal.last("plan")
        if recorded_plan and recorded_plan.get("steps", list(STEPS)) != steps:
            raise InvalidInput(f"the run in {backup_dir} was started with the steps "
                               f"{', '.join(recorded_plan['steps'])}; this command asks for {', '.join(steps)}",
                               reference="run-steps-differ",
                               hint="run again with the options the run started with (--engine-bindir or not)")
        ctx = Context(opts, inst, journal, backup_dir, progress)
        if not journal.records:
            journal.write("plan", installation=inst.to_dict(), hops=hops(inst), steps=steps,
                          checks=[c.to_dict() for c in checks])
        if not (backup_dir / KNOWN_MISSING).exists():
            record_missing_before(ctx)
        journal.write("run-start", resumed_at=journal.first_unfinished(steps))
        results, failed, error = [], None, None
        for name in steps:
            if journal.is_done(name):
                rec = journal.done_record(name)
                results.append({"name": name, "ok": True, "resumed": True, "summary": rec.get("summary", "")})
                continue
            progress.note(f"{name}: {STEP_TEXT[name]}")
            journal.start(name)
            t0 = time.monotonic()
            try:
                out = STEP_FUNCS[name](ctx)
            except HarborUpgradeError as e:
                seconds = time.monotonic() - t0
                journal.failed(name, f"[{e.reference}] {e.message}", seconds=round(seconds, 3))
                results.append({"name": name, "ok": False, "seconds": seconds, "summary": e.message})
                failed, error = name, e
                break
            except BaseException as e:  # a bug or an interrupt: record where, then let it surface
                journal.failed(name, f"{type(e).__name__}: {e}")
                raise
            seconds = time.monotonic() - t0
            journal.done(name, seconds=round(seconds, 3), **out)
            results.append({"name": name, "ok": True, "seconds": seconds, **out})
        if failed:
            results += [{"name": s, "ok": False, "planned": True, "summary": "not run"}
                        for s in steps[len(results):]]
        ok = failed is None
        journal.write("run-end", ok=ok, failed_step=failed)
    engine = journal.last("engine-plan") if journal.is_done("engine") else None
    report = {**base, "ok": ok, "steps": results, "journal": str(journal.path),
              "next": next_steps(inst, opts, ok, failed, engine)}
    if "verify" in ctx.outcome:
        report["verify"] = ctx.outcome["verify"]
    if error is not None:
        report["error"] = {"reference": error.reference, "message": error.message, "hint": error.hint,
                           "exit_code": int(error.exit_code)}
    return report


# -- verify and rollback on their own ------------------------------------------------------------
def backup_folder(backup_dir: Path) -> Path:
    """The backup inside a run's folder, or the folder itself when it is a plain backup."""
    inner = backup_dir / BACKUP_SUBDIR
    return inner if (inner / "manifest.json").exists() else backup_dir


def verify_report(dsn: str, storage: str | None = None, backup_dir: str | None = None,
                  s3_endpoint: str | None = None, s3_region: str | None = None) -> dict:
    from .backup import read_manifest
    counts = None
    known: set = set()
    if backup_dir:
        b = Path(backup_dir)
        counts = read_manifest(backup_folder(b)).table_counts
        known = load_known_missing(b / KNOWN_MISSING)
    st = None
    if storage:
        from .registry import open_storage as _open
        st = _open(storage, s3_endpoint=s3_endpoint, s3_region=s3_region)
    try:
        result = verify(dsn, st, counts, known)
    finally:
        if st is not None:
            st.close()
    d = result.to_dict()
    steps = [{"name": c["name"], "ok": c["ok"], "summary": f"{c['before']} → {c['after']} ({c['rule']})"}
             for c in d["counts"]] + [{"name": c["name"], "ok": c["ok"], "summary": c["detail"]} for c in d["checks"]]
    return {"ok": result.ok, "command": "verify", "steps": steps, "verify": d,
            "next": [] if result.ok else ["Run `harbor-upgrade run` again to finish the upgrade, or roll back: "
                                          "harbor-upgrade rollback --backup-dir B"]}


def rollback(backup_dir: str, dsn: str | None = None, harbor_dir: str | None = None,
             data_volume: str | None = None, progress: ProgressReporter | None = None) -> dict:
    """Restore the backup a run took, then check the database against the backup's manifest."""
    import psycopg
    from .backup import read_manifest, restore_backup
    from .postgres.tools import table_counts
    b = Path(backup_dir)
    folder = backup_folder(b)
    manifest = read_manifest(folder)
    plan_rec = Journal.read(b).last("plan") if (b / "journal.jsonl").exists() else None
    if dsn is None and plan_rec:
        recorded = plan_rec["installation"].get("dsn_masked")
        if recorded and "********" not in recorded:
            dsn = recorded
    if dsn is None:
        raise InvalidInput("rollback needs --dsn: the run's journal keeps no password",
                           reference="dsn-missing", hint=f"harbor-upgrade rollback --backup-dir {backup_dir} --dsn DSN")
    harbor_dir = harbor_dir or manifest.roots.get("harbor")
    data_volume = data_volume or manifest.roots.get("data_volume")
    progress = progress or ProgressReporter(enabled=False)
    result = restore_backup(folder, dsn, harbor_dir, data_volume=data_volume, progress=progress.note)
    with psycopg.connect(dsn, autocommit=True) as conn:
        after = table_counts(conn)
    differ = sorted(t for t in set(after) | set(manifest.table_counts)
                    if after.get(t) != manifest.table_counts.get(t))
    steps = [
        {"name": "restore", "ok": result.ok, "summary": f"database {result.database} and {result.files_restored} "
         "files restored" + ("" if result.ok else ": " + "; ".join(result.problems[:5]))},
        {"name": "verify", "ok": not differ, "summary": f"{len(manifest.table_counts)} tables have the row counts of "
         "the backup" if not differ else f"row counts differ in {', '.join(differ[:10])}"},
    ]
    ok = all(s["ok"] for s in steps)
    if (b / "journal.jsonl").exists():
        with RunLock(b):
            # a later `run` on this folder would take the restored state for the upgraded one
            Journal.open(b).write("rollback", ok=ok)
    return {"ok": ok, "command": "rollback", "steps": steps, "backup_dir": str(b),
            "next": [f"Start Harbor {manifest.harbor_version or 'as it was'} again (docker compose up -d in "
                     f"{harbor_dir})."] if ok else ["The restore did not come out identical: see the steps above."]}
