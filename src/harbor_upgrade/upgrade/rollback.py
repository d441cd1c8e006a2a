"""Verify and roll back on their own: the checks of an upgraded installation, and the
restore of the backup a run took."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from .. import versions
from ..backup import read_manifest, restore_backup
from ..compose.session import compose_of, container_journal, database, own_database
from ..db.connection import connect
from ..errors import InvalidInput, UnsafeState
from ..journal import Journal
from ..postgres.tools import table_counts
from ..registry import open_storage as open_spec
from ..report import ProgressReporter
from ..secrets import dsn_without_password
from ..verify import load_known_missing, verify
from .lock import InstallationLock, RunLock
from .options import BACKUP_SUBDIR, KNOWN_MISSING, Options
from .run import confirm_default


def backup_folder(backup_dir: Path) -> Path:
    """The backup inside a run's folder, or the folder itself when it is a plain backup."""
    inner = backup_dir / BACKUP_SUBDIR
    return inner if (inner / "manifest.json").exists() else backup_dir


def verify_report(dsn: str, storage: str | None = None, backup_dir: str | None = None,
                  s3_endpoint: str | None = None, s3_region: str | None = None, to: str | None = None) -> dict:
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
    steps = [{"name": c["name"], "ok": c["ok"], "summary": f"{c['before']} → {c['after']} ({c['rule']})"}
             for c in d["counts"]] + [{"name": c["name"], "ok": c["ok"], "summary": c["detail"]} for c in d["checks"]]
    return {"ok": result.ok, "command": "verify", "target": target, "steps": steps, "verify": d,
            "next": [] if result.ok else ["Run `harbor-upgrade run` again to finish the upgrade, or roll back: "
                                          "harbor-upgrade rollback --backup-dir B"]}


def rollback(backup_dir: str, dsn: str | None = None, harbor_dir: str | None = None,
             data_volume: str | None = None, progress: ProgressReporter | None = None,
             stop_harbor: bool = False, yes: bool = False, confirm: Callable[[str], bool] = confirm_default,
             interactive: bool | None = None, force_connected: bool = False,
             manifest_sha256: str | None = None) -> dict:
    """Restore the backup a run took (asking first, like restore, unless yes), then check the
    database against the backup's manifest. The database as it was is kept under another
    name; files that are not in the backup are left in place and listed.

    Without a DSN, on a Compose installation with Harbor's own database (the harbor folder
    the backup was taken from), the database is restored through the installation's
    harbor-db started alone on 127.0.0.1; Harbor must be down, or is stopped first with
    ``stop_harbor``."""
    b = Path(backup_dir)
    manifest = read_manifest(backup_folder(b))
    harbor_dir = harbor_dir or manifest.roots.get("harbor")
    data_volume = data_volume or manifest.roots.get("data_volume")
    if not yes:
        tty = interactive if interactive is not None else sys.stdin.isatty()
        if not tty:
            raise UnsafeState("rollback replaces the database and files; no terminal to ask for confirmation",
                              reference="confirmation-needed", hint="stop Harbor, then run again with --yes")
        if not confirm(f"Replace the database and the files under {harbor_dir}"
                       f"{' and ' + data_volume if data_volume else ''} with the backup of {manifest.created} "
                       f"(Harbor {manifest.harbor_version}) in {b}? Harbor must be stopped."):
            raise UnsafeState("not confirmed; nothing was changed", reference="not-confirmed")
    harbor_yml = Path(harbor_dir) / "harbor.yml" if harbor_dir else None
    ci = compose_of(harbor_yml) if dsn is None and harbor_yml is not None and harbor_yml.is_file() else None
    how = {"force_connected": force_connected, "manifest_sha256": manifest_sha256}
    if not own_database(ci):
        return rollback_on(b, dsn, harbor_dir, data_volume, progress, **how)
    progress = progress or ProgressReporter(enabled=False)
    with database(harbor_yml, None, stop=stop_harbor, journal=container_journal(b), say=progress.note,
                  ci=ci) as url:
        return rollback_on(b, url, harbor_dir, data_volume, progress, **how)


def rollback_on(b: Path, dsn: str | None, harbor_dir: str | None, data_volume: str | None,
                progress: ProgressReporter | None, force_connected: bool = False,
                manifest_sha256: str | None = None) -> dict:
    folder = backup_folder(b)
    manifest = read_manifest(folder)
    plan_rec = Journal.read(b).last("plan") if (b / "journal.jsonl").exists() else None
    if dsn is None and plan_rec:
        recorded = plan_rec["installation"].get("dsn_masked")
        if recorded:      # the journal keeps no password: libpq takes it from PGPASSWORD, ~/.pgpass or a prompt
            dsn = dsn_without_password(recorded)
    if dsn is None:
        raise InvalidInput(f"rollback needs --dsn: {b} records no database",
                           reference="dsn-missing",
                           hint=f"harbor-upgrade rollback --backup-dir {b} --dsn postgresql://USER@HOST:PORT/registry "
                                "(no password in it: set PGPASSWORD, use ~/.pgpass, or "
                                "harbor-upgrade --password-file FILE rollback ...)")
    progress = progress or ProgressReporter(enabled=False)
    with InstallationLock(dsn, "the rollback"):
        result = restore_backup(folder, dsn, harbor_dir, data_volume=data_volume, progress=progress.note,
                                force_connected=force_connected, expect_manifest_sha256=manifest_sha256)
        with connect(dsn) as conn:
            after = table_counts(conn)
    differ = sorted(t for t in set(after) | set(manifest.table_counts)
                    if after.get(t) != manifest.table_counts.get(t))
    steps = [
        {"name": "restore", "ok": result.ok, "summary": f"database {result.database} ({result.compared} equal to the "
         f"backup's) and {result.files_restored} files restored"
         + ("" if result.ok else ": " + "; ".join(result.problems[:5]))},
        {"name": "verify", "ok": not differ, "summary": f"{len(manifest.table_counts)} tables have the row counts of "
         "the backup" if not differ else f"row counts differ in {', '.join(differ[:10])}"},
    ]
    if result.extra_files:
        steps.append({"name": "left in place", "ok": True,
                      "summary": f"{len(result.extra_files)} files and folders are not in the backup and were left "
                                 "as they are: " + ", ".join(result.extra_files[:20])
                                 + (" ..." if len(result.extra_files) > 20 else "")})
    ok = all(s["ok"] for s in steps)
    if (b / "journal.jsonl").exists():
        with RunLock(b):
            # a later `run` on this folder would take the restored state for the upgraded one
            Journal.open(b).write("rollback", ok=ok, kept_database=result.kept_database)
    nxt = [f"Start Harbor {manifest.harbor_version or 'as it was'} again (docker compose up -d in {harbor_dir})."] \
        if ok else ["The restore did not come out identical: see the steps above."]
    if result.kept_database:
        nxt.append(f"The database as it was before the rollback is kept as {result.kept_database}; once Harbor works, "
                   f"drop it (DROP DATABASE \"{result.kept_database}\").")
    return {"ok": ok, "command": "rollback", "steps": steps, "backup_dir": str(b),
            "left_in_place": result.extra_files, "kept_database": result.kept_database, "next": nxt}
