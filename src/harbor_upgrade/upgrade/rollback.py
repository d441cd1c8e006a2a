"""Verify and roll back on their own: the checks of an upgraded installation, and the
restore of the backup a run took."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import versions
from ..backup import BackupManifest, read_manifest, restore_backup
from ..backup.datadir import binaries_for, stoppable_server
from ..compose.detect import ComposeInstallation
from ..compose.session import compose_of, container_journal, database, own_database
from ..compose.stack import refuse_running
from ..compose.stack import stop_harbor as stop_compose
from ..db.connection import connect
from ..db.identity import answers
from ..errors import InvalidInput, UnsafeState
from ..journal import Journal
from ..postgres.server import Server
from ..postgres.tools import table_counts
from ..progress import Progress, Silent
from ..registry import open_storage as open_spec
from ..results import Advice, RunReport, StepResult
from ..secrets import dsn_without_password
from ..verify import load_known_missing, verify
from .lock import InstallationLock, RunLock
from .options import BACKUP_SUBDIR, KNOWN_MISSING, Options


def backup_folder(backup_dir: Path) -> Path:
    """The backup inside a run's folder, or the folder itself when it is a plain backup."""
    inner = backup_dir / BACKUP_SUBDIR
    return inner if (inner / "manifest.json").exists() else backup_dir


def verify_report(dsn: str, storage: str | None = None, backup_dir: str | None = None,
                  s3_endpoint: str | None = None, s3_region: str | None = None, to: str | None = None) -> RunReport:
    """Verify against ``to`` (default: the target of the run in backup_dir, else the newest release)."""
    counts = None
    known: set = set()
    recorded = None
    if backup_dir:
        b = Path(backup_dir)
        counts = read_manifest(backup_folder(b)).table_counts
        known = load_known_missing(b / KNOWN_MISSING)
        if (b / "journal.jsonl").exists():
            recorded = (Journal.read(b).last("plan") or {}).get("target")
    target = Options("", to=to).target if to else recorded or versions.TARGET
    st = None
    if storage:
        st = open_spec(storage, s3_endpoint=s3_endpoint, s3_region=s3_region)
    try:
        result = verify(dsn, st, counts, known, target=target)
    finally:
        if st is not None:
            st.close()
    d = result.to_dict()
    steps = [StepResult(c["name"], c["ok"], f"{c['before']} → {c['after']} ({c['rule']})") for c in d["counts"]] \
        + [StepResult(c["name"], c["ok"], c["detail"]) for c in d["checks"]]
    advice = Advice(Advice.CONTINUE, "Run `harbor-upgrade run` again to finish the upgrade, or roll back: "
                                     "harbor-upgrade rollback --backup-dir B")
    return RunReport("verify", result.ok, steps, target=target, verify=d, next=[] if result.ok else [advice])


def rollback(backup_dir: str, dsn: str | None = None, harbor_dir: str | None = None,
             data_volume: str | None = None, progress: Progress | None = None,
             stop_harbor: bool = False, yes: bool = False, confirm: Callable[[str], bool] | None = None,
             force_connected: bool = False, manifest_sha256: str | None = None) -> RunReport:
    """Restore the backup a run took (asking ``confirm`` first, like restore, unless yes; ``confirm``
    is None when nobody can be asked), then check the database against the backup's manifest. The
    database as it was is kept under another name; files that are not in the backup are left in
    place and listed.

    Without a DSN, on a Compose installation with Harbor's own database (the harbor folder
    the backup was taken from), the database is restored through the installation's
    harbor-db started alone on 127.0.0.1; Harbor must be down, or is stopped first with
    ``stop_harbor``."""
    b = Path(backup_dir)
    manifest = read_manifest(backup_folder(b))
    harbor_dir = harbor_dir or manifest.roots.get("harbor")
    data_volume = data_volume or manifest.roots.get("data_volume")
    if not harbor_dir:   # a manifest need not record it (entry_problems checks only the roots it lists)
        raise InvalidInput(f"rollback needs --harbor-dir: the backup in {b} records no harbor folder",
                           reference="invalid-input", hint="pass --harbor-dir, the folder holding harbor.yml")
    if not yes:
        if confirm is None:
            raise UnsafeState("rollback replaces the database and files; no terminal to ask for confirmation",
                              reference="confirmation-needed", hint="stop Harbor, then run again with --yes")
        if not confirm(f"Replace the database and the files under {harbor_dir}"
                       f"{' and ' + data_volume if data_volume else ''} with the backup of {manifest.created} "
                       f"(Harbor {manifest.harbor_version}) in {b}? Harbor must be stopped."):
            raise UnsafeState("not confirmed; nothing was changed", reference="not-confirmed")
    harbor_yml = Path(harbor_dir) / "harbor.yml"
    ci = compose_of(harbor_yml) if dsn is None and harbor_yml.is_file() else None
    if manifest.kind == "datadir":
        return rollback_datadir(b, manifest, dsn, harbor_dir, data_volume, progress or Silent(), ci,
                                stop_harbor=stop_harbor, manifest_sha256=manifest_sha256)
    if not own_database(ci):
        return rollback_on(b, dsn, harbor_dir, data_volume, progress, force_connected=force_connected,
                           manifest_sha256=manifest_sha256)
    progress = progress or Silent()
    with database(harbor_yml, None, stop=stop_harbor, journal=container_journal(b), say=progress.note,
                  ci=ci) as url:
        return rollback_on(b, url, harbor_dir, data_volume, progress, force_connected=force_connected,
                           manifest_sha256=manifest_sha256)


def _recorded_dsn(b: Path, dsn: str | None) -> str | None:
    """The DSN given, else the one the run's journal recorded (without its password)."""
    plan_rec = Journal.read(b).last("plan") if (b / "journal.jsonl").exists() else None
    if dsn is None and plan_rec:
        recorded = plan_rec["installation"].get("dsn_masked")
        if recorded:      # the journal keeps no password: libpq takes it from PGPASSWORD, ~/.pgpass or a prompt
            dsn = dsn_without_password(recorded)
    return dsn


def rollback_datadir(b: Path, manifest: BackupManifest, dsn: str | None, harbor_dir: str, data_volume: str | None,
                     progress: Progress, ci: ComposeInstallation | None, stop_harbor: bool = False,
                     manifest_sha256: str | None = None) -> RunReport:
    """Put a data folder copy back: no server may run on the folder. A server of this machine
    the DSN reaches (the run stopped and started it for the copy; after an engine step it runs
    from the new cluster) is stopped first and started again on the restored folder with the
    same port and socket; a server in a container is refused (on a Compose installation,
    Harbor is stopped first with ``stop_harbor``)."""
    folder = backup_folder(b)
    target = Path(manifest.roots["datadir"])
    if own_database(ci):
        assert ci is not None
        if ci.running:
            if not stop_harbor:
                refuse_running(ci)
            progress.note(f"stopping Harbor ({len(ci.running)} containers of project {ci.project})")
            stop_compose(ci, container_journal(b))
        dsn = None
    else:
        dsn = _recorded_dsn(b, dsn)
    listen = None
    if dsn is not None and answers(dsn):
        found = stoppable_server(dsn)
        if isinstance(found, str):
            raise UnsafeState(f"the database's server still runs: {found}; nothing was restored",
                              reference="postgres-running", hint="stop it, then run again")
        server, listen = found
        progress.note(f"stopping the PostgreSQL server of {server.datadir} (it is started again on the restored "
                      "data folder)")
        _record(b, "rollback-stopped", datadir=str(server.datadir), listen=listen)
        server.stop()
    elif dsn is not None:
        listen = _left_stopped(b)
        if listen is not None:
            progress.note("an interrupted rollback stopped the database's server: it is started on the restored "
                          "data folder as the DSN expects")
    result = restore_backup(folder, None, harbor_dir, data_volume=data_volume, progress=progress.note,
                            expect_manifest_sha256=manifest_sha256, datadir=target)
    steps = [StepResult("restore", result.ok, f"data folder {target} (every file's sha256 equal to the backup's, "
                        f"the one that was there kept as {result.kept_database}) and {result.files_restored} files "
                        "restored" + ("" if result.ok else ": " + "; ".join(result.problems[:5])))]
    if listen is not None:
        how = Server(binaries_for(target).bindir, target).ensure_serving(listen)
        _record(b, "rollback-served", datadir=str(target), how=how)
        progress.note(f"the PostgreSQL server of {target}: {how}")
        assert dsn is not None
        with connect(dsn) as conn:
            after = table_counts(conn)
        differ = sorted(t for t in set(after) | set(manifest.table_counts)
                        if after.get(t) != manifest.table_counts.get(t))
        steps.append(StepResult("verify", not differ, f"{len(manifest.table_counts)} tables have the row counts of "
                                "the backup" if not differ else f"row counts differ in {', '.join(differ[:10])}"))
    else:
        steps.append(StepResult("verify", True, "every file of the data folder was compared with its sha256 as it was "
                                "put back (no server started)"))
    kept = (f"The data folder as it was before the rollback is kept as {result.kept_database}; once Harbor "
            "works, remove it.")
    return _rollback_report(b, manifest, harbor_dir, steps, result.extra_files, "kept_datadir",
                            result.kept_database, kept)


def _record(b: Path, event: str, **data) -> None:
    """A journal record of a run's rollback (a plain backup folder has no journal)."""
    if (b / "journal.jsonl").exists():
        with RunLock(b):
            Journal.open(b).write(event, **data)


def _left_stopped(b: Path) -> dict[str, str] | None:
    """The listen settings of the server a rollback of b stopped and, interrupted, did not start again."""
    if not (b / "journal.jsonl").exists():
        return None
    journal = Journal.read(b)
    stopped = journal.last("rollback-stopped")
    if stopped is None or any(r["seq"] > stopped["seq"] and r["event"] in ("rollback-served", "rollback")
                              for r in journal.records):
        return None
    return stopped["listen"]


def rollback_on(b: Path, dsn: str | None, harbor_dir: str, data_volume: str | None,
                progress: Progress | None, force_connected: bool = False,
                manifest_sha256: str | None = None) -> RunReport:
    folder = backup_folder(b)
    manifest = read_manifest(folder)
    dsn = _recorded_dsn(b, dsn)
    if dsn is None:
        raise InvalidInput(f"rollback needs --dsn: {b} records no database",
                           reference="dsn-missing",
                           hint=f"harbor-upgrade rollback --backup-dir {b} --dsn postgresql://USER@HOST:PORT/registry "
                                "(no password in it: set PGPASSWORD, use ~/.pgpass, or "
                                "harbor-upgrade --password-file FILE rollback ...)")
    progress = progress or Silent()
    with InstallationLock(dsn, "the rollback"):
        result = restore_backup(folder, dsn, harbor_dir, data_volume=data_volume, progress=progress.note,
                                force_connected=force_connected, expect_manifest_sha256=manifest_sha256)
        with connect(dsn) as conn:
            after = table_counts(conn)
    differ = sorted(t for t in set(after) | set(manifest.table_counts)
                    if after.get(t) != manifest.table_counts.get(t))
    steps = [
        StepResult("restore", result.ok, f"database {result.database} ({result.compared} equal to the backup's) "
                   f"and {result.files_restored} files restored"
                   + ("" if result.ok else ": " + "; ".join(result.problems[:5]))),
        StepResult("verify", not differ, f"{len(manifest.table_counts)} tables have the row counts of the backup"
                   if not differ else f"row counts differ in {', '.join(differ[:10])}"),
    ]
    kept = (f"The database as it was before the rollback is kept as {result.kept_database}; once Harbor works, "
            f"drop it (DROP DATABASE \"{result.kept_database}\").")
    return _rollback_report(b, manifest, harbor_dir, steps, result.extra_files, "kept_database",
                            result.kept_database, kept)


def _rollback_report(b: Path, manifest: BackupManifest, harbor_dir: str, steps: list[StepResult],
                     extra_files: list[str], kept_key: str, kept: str | None, kept_advice: str) -> RunReport:
    """The end both rollbacks share: what was left in place, the journal's record (a later `run`
    on this folder would otherwise take the restored state for the upgraded one), the advice."""
    if extra_files:
        steps.append(StepResult("left in place", True,
                                f"{len(extra_files)} files and folders are not in the backup and were left "
                                "as they are: " + ", ".join(extra_files[:20])
                                + (" ..." if len(extra_files) > 20 else "")))
    ok = all(s.ok for s in steps)
    if (b / "journal.jsonl").exists():
        with RunLock(b):
            Journal.open(b).write("rollback", ok=ok, **{kept_key: kept})
    advice = [Advice(Advice.START_HARBOR, f"Start Harbor {manifest.harbor_version or 'as it was'} again "
                                          f"(docker compose up -d in {harbor_dir}).") if ok
              else Advice(Advice.CONTINUE, "The restore did not come out identical: see the steps above.")]
    if kept:
        advice.append(Advice(Advice.KEEP_BACKUP, kept_advice))
    return RunReport("rollback", ok, steps, backup_dir=str(b), next=advice,
                     extra={"left_in_place": extra_files, kept_key: kept})
