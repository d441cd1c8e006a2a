"""Commands of the safety net: backup, backup verify, restore, pg-upgrade."""
from __future__ import annotations

from pathlib import Path

import click

from .. import backup as backup_api
from ..compose.session import required_database
from ..errors import ExitStatus, InvalidInput, UnsafeState, ValidationFailed
from ..postgres import upgrade as engine
from ..postgres.cluster import find_binaries
from ..postgres.layout import harbor_move_target, read_pg_version
from ..private import check_writable
from ..secrets import mask_text
from . import DSN_PASSWORD_HELP, checked_dsn, cli
from .console import current


def _say(msg: str) -> None:
    click.echo(mask_text(msg), err=True)


manifest_sha256_opt = click.option(
    "--manifest-sha256", help="the manifest's sha256 that backup printed, recorded elsewhere: proves the backup "
                              "unchanged where the signing key is not (another machine)")


@cli.group("backup", invoke_without_command=True)
@click.option("--dsn", callback=checked_dsn, help="the Harbor database, e.g. postgresql://postgres@127.0.0.1:5432/registry"
                           + DSN_PASSWORD_HELP)
@click.option("--harbor-dir", type=click.Path(file_okay=False), help="the folder holding harbor.yml")
@click.option("--data-volume", type=click.Path(file_okay=False), help="Harbor's data_volume (e.g. /data)")
@click.option("--to", "to", type=click.Path(file_okay=False), help="a new, empty folder for the backup")
@click.option("--jobs", "-j", default=2, show_default=True, help="parallel pg_dump jobs")
@click.pass_context
def backup_cmd(ctx: click.Context, dsn, harbor_dir, data_volume, to, jobs) -> int | None:
    """Back up the database, the harbor folder and the data volume's small state.

    Registry blobs are not copied; the summary says how to snapshot them."""
    if ctx.invoked_subcommand is not None:
        return None
    missing = [o for o, v in (("--harbor-dir", harbor_dir), ("--to", to)) if not v]
    if missing:
        raise InvalidInput(f"backup needs {', '.join(missing)}",
                           hint="harbor-upgrade backup [--dsn DSN] --harbor-dir DIR [--data-volume V] --to BACKUP_DIR "
                                "(no --dsn on a Compose installation whose stack is down)")
    check_writable(to, "backup folder --to", is_dir=True)   # before the database is even started
    with required_database(Path(harbor_dir) / "harbor.yml", dsn, "backup", say=_say) as url:
        m = backup_api.create_backup(url, harbor_dir, to, data_volume=data_volume, jobs=jobs, progress=_say)
    files = [f for f in m.files if f.type == "file"]
    click.echo(f"backup {to}: Harbor {m.harbor_version or 'unknown'}, schema {m.schema_version}, "
               f"data {m.data_version}, PostgreSQL {m.pg_version}")
    click.echo(f"  database {m.database}: {len(m.table_counts)} tables, "
               f"{sum(m.table_counts.values())} rows")
    click.echo(f"  files: {len(files)} ({sum(f.size for f in files)} bytes)")
    for s in m.skipped:
        click.echo(f"  not copied: {s['path']} - {s['reason']}")
    click.echo(backup_api.blob_advice(m))
    click.echo(f"  manifest sha256: {backup_api.manifest_sha256(to)} (signed with {backup_api.backup_key_path()}; "
               "record the digest elsewhere too: --manifest-sha256 proves the backup unchanged without the key)")
    click.echo(f"next: harbor-upgrade backup verify {to}")
    return int(ExitStatus.OK)


@backup_cmd.command("verify")
@click.argument("backup_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--no-restore", is_flag=True, help="only check the checksums (skip the scratch restore)")
@manifest_sha256_opt
def backup_verify_cmd(backup_dir, no_restore, manifest_sha256) -> int:
    """Check every path, checksum and the manifest's signature, then restore into a throwaway
    cluster and compare row counts."""
    r = backup_api.verify_backup(backup_dir, restore_check=not no_restore, expect_manifest_sha256=manifest_sha256)
    for p in r.problems:
        click.echo(f"problem: {p}")
    if not r.ok:
        raise ValidationFailed(f"backup {backup_dir} failed verification ({len(r.problems)} problems)",
                               reference="backup-corrupt")
    how = f"checksums, manifest proved by {r.authenticated}" + (
        "" if no_restore else f", scratch restore of {r.restored_tables} tables")
    click.echo(f"backup {backup_dir} is good: {r.checked_files} files ({how})")
    return int(ExitStatus.OK)


@cli.command("restore")
@click.option("--from", "from_", required=True, type=click.Path(file_okay=False, exists=True),
              help="the backup folder")
@click.option("--dsn", callback=checked_dsn,
              help="the database to replace (default on a Compose installation: its harbor-db, started "
                   "alone on 127.0.0.1)" + DSN_PASSWORD_HELP)
@click.option("--harbor-dir", required=True, type=click.Path(file_okay=False))
@click.option("--data-volume", type=click.Path(file_okay=False))
@click.option("--jobs", "-j", default=2, show_default=True, help="parallel pg_restore jobs")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--force-connected", is_flag=True,
              help="end the sessions connected to the database when the restored copy takes its name "
                   "(default: refuse while any client is connected)")
@manifest_sha256_opt
def restore_cmd(from_, dsn, harbor_dir, data_volume, jobs, yes, force_connected, manifest_sha256) -> int:
    """Put a backup back: the database is restored beside the current one and takes its name
    once proved equal to the backup (the current one is kept, renamed); the files are
    rewritten, never through a symlink."""
    m = backup_api.read_manifest(from_)
    if not yes:
        if not current().stdin_tty:
            raise UnsafeState("restore replaces the database and files; no terminal to ask for confirmation",
                              hint="stop Harbor, then run again with --yes", reference="confirmation-needed")
        click.confirm(mask_text(f"Replace database {m.database} and the files under {harbor_dir}"
                                f"{' and ' + data_volume if data_volume else ''} with the backup of "
                                f"{m.created} (Harbor {m.harbor_version})? Harbor must be stopped."),
                      abort=True)
    with required_database(Path(harbor_dir) / "harbor.yml", dsn, "restore", say=_say) as url:
        r = backup_api.restore_backup(from_, url, harbor_dir, data_volume=data_volume, jobs=jobs, progress=_say,
                                      force_connected=force_connected, expect_manifest_sha256=manifest_sha256)
    for extra in r.extra_files:
        click.echo(f"not in the backup, left in place: {extra}")
    for p in r.problems:
        click.echo(f"problem: {p}")
    if not r.ok:
        raise ValidationFailed(f"restore from {from_} finished but the result differs from the backup",
                               reference="restore-mismatch")
    click.echo(f"restored {r.database} ({r.compared} identical to the backup's) and {r.files_restored} "
               f"files with their owners and modes")
    if r.kept_database:
        click.echo(f"the database as it was is kept as {r.kept_database}; once Harbor works, drop it: "
                   f"DROP DATABASE \"{r.kept_database}\"")
    return int(ExitStatus.OK)


@cli.command("pg-upgrade")
@click.option("--old-datadir", required=True, type=click.Path(file_okay=False),
              help="the old cluster, or Harbor's data_volume/database (9.6 at its top, pgNN below)")
@click.option("--new-datadir", required=True, type=click.Path(file_okay=False),
              help="a new folder beside the old one (never inside it)")
@click.option("--old-bindir", type=click.Path(file_okay=False), help="bin folder of the old major (found if omitted)")
@click.option("--new-bindir", type=click.Path(file_okay=False), help="bin folder of the new major")
@click.option("--new-major", type=int, help="find the new bin folder by major instead of --new-bindir")
@click.option("--mode", type=click.Choice(engine.MODES), default="copy", show_default=True,
              help="copy/link/clone: pg_upgrade transfer mode; dump: pg_dump/pg_restore (any versions)")
@click.option("--jobs", "-j", default=1, show_default=True, help="parallel jobs")
@click.option("--cleanup", "do_cleanup", is_flag=True,
              help="remove the old cluster after a verified upgrade into --new-datadir")
@click.option("--move-into", type=click.Path(file_okay=False),
              help="with --cleanup: then move the new cluster here (e.g. data_volume/database/pg13)")
def pg_upgrade_cmd(old_datadir, new_datadir, old_bindir, new_bindir, new_major, mode, jobs, do_cleanup,
                   move_into) -> int:
    """Upgrade the PostgreSQL major version of Harbor's database cluster, keeping the old one.

    Runs pg_upgrade --check first, as the data folder's owner; verifies row counts and
    sequence values in the new cluster; `--cleanup` removes the old cluster afterwards."""
    if do_cleanup:
        removed = engine.cleanup(old_datadir, new_datadir, move_into=move_into)
        click.echo(f"removed the old cluster ({len(removed)} entries) from {old_datadir}; "
                   f"the cluster now lives in {move_into or new_datadir}")
        return int(ExitStatus.OK)
    if move_into:
        raise InvalidInput("--move-into goes with --cleanup", reference="invalid-input")
    old = engine.resolve_old_datadir(old_datadir)
    old_version = read_pg_version(old)
    assert old_version is not None  # resolve_old_datadir only returns a folder with a PG_VERSION
    old_bin = old_bindir or find_binaries(major=int(old_version.split(".")[0])).bindir
    if not new_bindir:
        if not new_major:
            raise InvalidInput("pg-upgrade needs --new-bindir or --new-major", reference="invalid-input")
        new_bindir = find_binaries(major=new_major).bindir
    r = engine.upgrade_cluster(old_bin, old, new_bindir, new_datadir, mode=mode, jobs=jobs, progress=_say)
    rows = sum(sum(t.values()) for t in r.evidence.tables.values())
    click.echo(f"upgraded PostgreSQL {old_version} -> {r.new_major} ({mode}) into {r.new_datadir} "
               f"in {r.seconds['total']:.1f}s")
    click.echo(f"  verified: {len(r.evidence.tables)} databases, {rows} rows, "
               f"{sum(len(s) for s in r.evidence.sequences.values())} sequences equal to the old cluster")
    for note in r.notes:
        click.echo(f"  {note}")
    if mode == "link":
        click.echo(f"  link mode: {old} shares its files with the new cluster and must not be started again")
    click.echo(f"  the old cluster is kept in {old}")
    home = harbor_move_target(old, r.new_major, r.new_datadir)
    move = f" --move-into {home}" if home else ""
    click.echo(f"next: check the new cluster; then harbor-upgrade pg-upgrade --cleanup "
               f"--old-datadir {old} --new-datadir {r.new_datadir}{move}")
    return int(ExitStatus.OK)
