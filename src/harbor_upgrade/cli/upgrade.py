"""Commands of the whole upgrade: plan, run, verify, rollback, demo."""
from __future__ import annotations

import os

import click

from .. import upgrade as up
from ..compose.session import required_database
from ..report import ProgressReporter, render_text, to_json
from ..results import Advice, RunCommand, RunReport
from ..secrets import mask_text
from . import DSN_PASSWORD_HELP, checked_dsn, cli
from .console import current

harbor_yml_opt = click.option("--harbor-yml", "harbor_yml", required=True, type=click.Path(dir_okay=False),
                              help="the installation's harbor.yml")
dsn_opt = click.option("--dsn", callback=checked_dsn,
                       help="the registry database, postgresql://USER@HOST:PORT/registry "
                            "(default: harbor.yml's external_database)" + DSN_PASSWORD_HELP)
storage_opt = click.option("--storage", help="registry storage: a folder holding docker/registry/v2, or "
                                             "s3://BUCKET[/ROOT] (default: from harbor.yml)")
json_opt = click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
to_opt = click.option("--to", "to", metavar="RELEASE",
                      help="the release to upgrade to, e.g. 2.10 or 2.10.0 [default: the newest this tool knows]")
stop_harbor_opt = click.option("--stop-harbor", is_flag=True,
                               help="on a Compose installation whose containers run: stop the stack first (clean "
                                    "database shutdown, then docker compose down); without it the command refuses")


def say(msg: str) -> None:
    click.echo(mask_text(msg), err=True)


def s3_opts(f):
    f = click.option("--s3-region", help="region of an s3:// --storage")(f)
    return click.option("--s3-endpoint", help="endpoint of an S3-compatible service for an s3:// --storage "
                                              "(credentials: the AWS_* environment)")(f)


def engine_opts(f):
    f = click.option("--engine-old-bindir", type=click.Path(file_okay=False),
                     help="with --engine-bindir: the cluster's current PostgreSQL bin folder (found by its major "
                          "if omitted)")(f)
    f = click.option("--engine-mode", type=click.Choice(up.ENGINE_MODES), default="copy", show_default=True,
                     help="with --engine-bindir: pg_upgrade copy or link, or dump and restore")(f)
    return click.option("--engine-bindir", type=click.Path(file_okay=False),
                        help="also upgrade the PostgreSQL cluster in data_volume/database to the major of this bin "
                             "folder (the engine step, after config; the old cluster is kept)")(f)


def run_line(cmd: RunCommand) -> str:
    """The command line of the run a plan advises (the core gives the values)."""
    return (f"harbor-upgrade run --harbor-yml {cmd.harbor_yml} --backup-dir {cmd.backup_dir or 'BACKUP_DIR'}"
            + (f" --dsn '{cmd.dsn}'" if cmd.dsn is not None else "")
            + (f" --to {cmd.to}" if cmd.to else "")
            + engine_args(cmd) + (" --stop-harbor" if cmd.stop_harbor else "")
            + (" --drop-chartmuseum" if cmd.drop_chartmuseum else ""))


def engine_args(cmd: RunCommand) -> str:
    if not cmd.engine_bindir:
        return ""
    return (f" --engine-bindir {cmd.engine_bindir} --engine-mode {cmd.engine_mode}"
            + (f" --engine-old-bindir {cmd.engine_old_bindir}" if cmd.engine_old_bindir else ""))


def emit(report: RunReport, as_json: bool) -> int:
    if report.run_command is not None:      # plan and run --dry-run: the run to type comes first
        report.next = [Advice(Advice.RUN, run_line(report.run_command)), *report.next]
    click.echo(to_json(report) if as_json else render_text(report), nl=as_json)
    return int(report.exit_code)


def progress_reporter() -> ProgressReporter:
    console = current()
    return ProgressReporter(stream=console.stderr, tty=bool(console.stderr_tty))


@cli.command("plan")
@harbor_yml_opt
@dsn_opt
@storage_opt
@s3_opts
@click.option("--backup-dir", type=click.Path(file_okay=False), help="where run will back up (checks free space)")
@to_opt
@engine_opts
@json_opt
def plan_cmd(harbor_yml, dsn, storage, s3_endpoint, s3_region, backup_dir, to, engine_bindir, engine_mode,
             engine_old_bindir, as_json):
    """Show the installed state, the path to the target release beside the installs Harbor's own
    installers would need, what is removed on the way, every step and the preflight checks.
    Writes nothing."""
    return emit(up.plan(up.Options(harbor_yml=harbor_yml, backup_dir=backup_dir, dsn=dsn, storage=storage,
                                   s3_endpoint=s3_endpoint, s3_region=s3_region, engine_bindir=engine_bindir,
                                   engine_mode=engine_mode, engine_old_bindir=engine_old_bindir, to=to)), as_json)


@cli.command("run")
@harbor_yml_opt
@click.option("--backup-dir", required=True, type=click.Path(file_okay=False),
              help="the backup and the run journal go here; run again with the same folder to continue")
@dsn_opt
@storage_opt
@s3_opts
@click.option("--config-out", type=click.Path(dir_okay=False),
              help="where the migrated harbor.yml goes (default: harbor-<target>.yml next to the original)")
@click.option("--jobs", default=4, show_default=True, help="parallel storage readers / dump jobs")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--dry-run", is_flag=True, help="print the plan and change nothing")
@click.option("--prepare", is_flag=True,
              help="before the stop window, while Harbor still serves: check the config and the storage and read "
                   "every repository's artifact metadata into the backup folder; the run without it then reads "
                   "again only the repositories changed since (never writes the database)")
@stop_harbor_opt
@to_opt
@click.option("--drop-chartmuseum", is_flag=True,
              help="cross 2.8 although ChartMuseum's storage holds charts (they are no longer served; the files "
                   "stay); without it run refuses")
@engine_opts
@json_opt
def run_cmd(harbor_yml, backup_dir, dsn, storage, s3_endpoint, s3_region, config_out, jobs, yes, dry_run, prepare,
            stop_harbor, to, drop_chartmuseum, engine_bindir, engine_mode, engine_old_bindir, as_json):
    """Back up, then upgrade config, engine (with --engine-bindir), database, artifacts and
    scanner, and verify; journaled.

    The engine step upgrades the PostgreSQL cluster in data_volume/database (this machine's
    only): it stops its server with pg_ctl as the folder's owner, runs pg-upgrade into a
    folder beside it and starts the new cluster on the same port and socket. The old
    cluster is kept until `harbor-upgrade pg-upgrade --cleanup`.

    With --prepare, only what needs no stop runs (while Harbor serves); the report of the run
    itself shows the stop window (Harbor stopped → verified) beside the total."""
    opts = up.Options(harbor_yml=harbor_yml, backup_dir=backup_dir, dsn=dsn, storage=storage, config_out=config_out,
                      s3_endpoint=s3_endpoint, s3_region=s3_region, jobs=jobs, yes=yes, dry_run=dry_run,
                      engine_bindir=engine_bindir, engine_mode=engine_mode, engine_old_bindir=engine_old_bindir,
                      stop_harbor=stop_harbor, to=to, drop_chartmuseum=drop_chartmuseum, prepare=prepare)
    with progress_reporter() as progress:
        report = up.run(opts, progress, confirm=current().confirmer)
    return emit(report, as_json)


@cli.command("verify")
@click.option("--dsn", callback=checked_dsn,
              help="the upgraded registry database (or --harbor-yml)" + DSN_PASSWORD_HELP)
@click.option("--harbor-yml", type=click.Path(dir_okay=False),
              help="instead of --dsn: the harbor.yml of a Compose installation (Harbor stopped); its harbor-db is "
                   "started alone on 127.0.0.1 for the command")
@storage_opt
@s3_opts
@click.option("--backup-dir", type=click.Path(file_okay=False, exists=True),
              help="the run's backup folder: its manifest gives the counts before")
@click.option("--to", "to", metavar="RELEASE",
              help="the release the database was upgraded to [default: the run's in --backup-dir, else the newest "
                   "this tool knows]")
@json_opt
def verify_cmd(dsn, harbor_yml, storage, s3_endpoint, s3_region, backup_dir, to, as_json):
    """Counts before and after, and the invariants of the target release; non-zero exit on a failure.
    With --harbor-yml and no --storage, the registry storage harbor.yml names is checked too."""
    if harbor_yml and not storage:
        from ..config import read_harbor_yml
        storage, _kind, endpoint, region = read_harbor_yml(harbor_yml, require_release=False).storage_spec
        s3_endpoint, s3_region = s3_endpoint or endpoint, s3_region or region
    with required_database(harbor_yml, dsn, "verify", say=say) as url:
        report = up.verify_report(url, storage, backup_dir, s3_endpoint, s3_region, to=to)
    return emit(report, as_json)


@cli.command("rollback")
@click.option("--backup-dir", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--dsn", callback=checked_dsn,
              help="the registry database to restore into (default: the run's, without its password)"
                   + DSN_PASSWORD_HELP)
@click.option("--harbor-dir", type=click.Path(file_okay=False), help="default: where the backup was taken")
@click.option("--data-volume", type=click.Path(file_okay=False), help="default: where the backup was taken")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--force-connected", is_flag=True,
              help="end the sessions connected to the database when the restored copy takes its name "
                   "(default: refuse while any client is connected)")
@click.option("--manifest-sha256", help="the backup manifest's sha256 recorded elsewhere (where the signing key "
                                        "is not)")
@stop_harbor_opt
@json_opt
def rollback_cmd(backup_dir, dsn, harbor_dir, data_volume, yes, force_connected, manifest_sha256, stop_harbor,
                 as_json):
    """Restore the backup taken by run (asks first, or --yes) and check the result against the
    backup's manifest. The database as it was is kept under another name; files not in the
    backup are left in place and listed.

    On a Compose installation no --dsn is needed: the database is restored through the
    installation's harbor-db, started alone on 127.0.0.1 (Harbor stopped, or --stop-harbor)."""
    with progress_reporter() as progress:
        report = up.rollback(backup_dir, dsn, harbor_dir, data_volume, progress, stop_harbor=stop_harbor, yes=yes,
                             confirm=current().confirmer, force_connected=force_connected,
                             manifest_sha256=manifest_sha256)
    return emit(report, as_json)


@cli.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="a new folder for the sample installation [default: a new folder in the system's "
                   "temporary directory, which the unprivileged PostgreSQL user can always reach]")
@click.option("--keep-running", is_flag=True, help="leave the sample's PostgreSQL running afterwards")
@click.option("--engine", is_flag=True, help="also upgrade the sample's PostgreSQL to a newer major installed here "
                                             "(the engine step)")
@json_opt
def demo_cmd(directory, keep_running, engine, as_json):
    """Build a sample Harbor 1.10 installation (real PostgreSQL, real registry storage) and upgrade it."""
    import tempfile

    from ..demo import run_demo
    if directory is None:
        directory = tempfile.mkdtemp(prefix="harbor-upgrade-demo-")
        os.chmod(directory, 0o755)  # mkdtemp makes it 0700: PostgreSQL's own user must pass through
    with progress_reporter() as progress:
        report = run_demo(directory, progress, keep_running=keep_running, engine=engine)
    return emit(report, as_json)
