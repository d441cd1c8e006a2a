"""`harbor-upgrade db status|lint|migrate|repair`: the Harbor database upgrade."""
from __future__ import annotations

import json

import click

from .. import db as harbor_db
from ..compose.session import required_database
from ..db.steps import APPLIED, STEPS
from ..errors import ExitStatus
from ..secrets import dsn_without_password, mask_dsn, mask_text
from ..versions import TARGET
from . import DSN_PASSWORD_HELP, checked_dsn, cli

dsn_option = click.option("--dsn", callback=checked_dsn, envvar="HARBOR_UPGRADE_DSN",
                          help="PostgreSQL DSN of Harbor's `registry` database (or --harbor-yml, or "
                               "HARBOR_UPGRADE_DSN)" + DSN_PASSWORD_HELP)
harbor_yml_option = click.option("--harbor-yml", type=click.Path(dir_okay=False),
                                 help="instead of --dsn: the harbor.yml of a Compose installation (Harbor stopped); "
                                      "its harbor-db is started alone on 127.0.0.1 for the command")
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")
to_option = click.option("--to", default=TARGET, show_default=True,
                         help="target release (" + ", ".join(s.release for s in APPLIED) + "; patch versions "
                              "name their line)")


def _say(msg: str) -> None:
    click.echo(mask_text(msg), err=True)


def _target(dsn: str | None, harbor_yml: str | None) -> str:
    """How the next command names the database: as this one was given it."""
    if dsn:
        return f"--dsn '{dsn_without_password(dsn)}'"
    return f"--harbor-yml {harbor_yml}" if harbor_yml else "--dsn DSN"


@cli.group("db", help=f"The Harbor database: schema {STEPS[0].version} ({STEPS[0].release}) ... "
                      f"{STEPS[-1].schema_versions[-1]} ({STEPS[-1].release}).")
def db_group() -> None:
    pass


@db_group.command("status")
@dsn_option
@harbor_yml_option
@json_option
def status_cmd(dsn: str | None, harbor_yml: str | None, as_json: bool) -> None:
    """Schema version, dirty flag, data version, release and pending steps."""
    target = _target(dsn, harbor_yml)
    with required_database(harbor_yml, dsn, "db status", say=_say) as url:
        st = harbor_db.status(url)
    if as_json:
        click.echo(json.dumps(st.to_dict(), indent=2))
        return
    click.echo(f"database:       {mask_dsn(url) if dsn else 'from ' + str(harbor_yml)}")
    click.echo(f"schema version: {st.schema_version}{' (DIRTY)' if st.dirty else ''}")
    click.echo(f"release:        {st.release or 'unknown'}")
    click.echo(f"data version:   {st.data_version if st.data_version is not None else '-'}"
               + ("  (artifact abstraction pending)" if st.data_version == 0 else ""))
    if st.dirty:
        click.echo(f"next:           harbor-upgrade db repair {target}")
    click.echo("pending:        " + (", ".join(st.pending) if st.pending else "none"))


def _print_findings(findings: list) -> None:
    for f in findings:
        click.echo(f"[{f.step}] {f.table}: {f.problem} — {f.count} row(s)")
        for row in f.rows[:20]:
            click.echo(f"    {json.dumps(row, default=str)}")
        if f.count > 20:
            click.echo(f"    ... {f.count - 20} more (--json lists up to {len(f.rows)})")
        click.echo(f"  fix: {f.fix}")


@db_group.command("lint")
@dsn_option
@harbor_yml_option
@to_option
@json_option
def lint_cmd(dsn: str | None, harbor_yml: str | None, to: str, as_json: bool) -> int:
    """List rows that would make a pending release step fail, with the fix (read-only)."""
    with required_database(harbor_yml, dsn, "db lint", say=_say) as url:
        findings = harbor_db.lint(url, to=to)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], indent=2, default=str))
    elif findings:
        _print_findings(findings)
    else:
        click.echo("no problems found")
    return int(ExitStatus.CHANGES_NEEDED) if findings else 0


@db_group.command("migrate")
@dsn_option
@harbor_yml_option
@to_option
@click.option("--dry-run", is_flag=True, help="show each step and the rows it touches; write nothing")
@click.option("--force-connected", is_flag=True, help="run although other clients are connected")
@json_option
def db_migrate_cmd(dsn: str | None, harbor_yml: str | None, to: str, dry_run: bool, force_connected: bool,
                as_json: bool) -> None:
    """Upgrade the schema and data to --to (default: the newest release), one transaction per release."""

    def progress(step: str, message: str) -> None:
        if not as_json:
            click.echo(f"  {step}: {message}", err=True)

    with required_database(harbor_yml, dsn, "db migrate", say=_say) as url:
        rep = harbor_db.migrate(url, to=to, dry_run=dry_run, force_connected=force_connected,
                                progress=progress)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
        return
    if not rep.steps:
        click.echo(f"schema version {rep.from_version}: nothing to do")
        return
    for step in rep.steps:
        click.echo(f"{step.name}: {'would apply' if dry_run else 'applied'} in {step.seconds:.1f}s, "
                   f"{step.rows} row(s)")
        if dry_run:
            for st in step.statements:
                click.echo(f"    {st.what}" + (f": {st.rows} row(s)" if st.rows is not None else ""))
        for loss in step.lost:
            click.echo(f"    {'would drop' if dry_run else 'dropped'} by design: {loss.rows} row(s) of {loss.what}")
        for note in step.left_to_core:
            click.echo(f"    left to Harbor: {note}")
    click.echo(("dry run: nothing written; would go " if dry_run else "schema version ")
               + f"{rep.from_version} -> {rep.to_version}")


@db_group.command("repair")
@dsn_option
@harbor_yml_option
@json_option
def repair_cmd(dsn: str | None, harbor_yml: str | None, as_json: bool) -> None:
    """Clear a dirty schema version after checking which version the schema really has."""
    target = _target(dsn, harbor_yml)
    with required_database(harbor_yml, dsn, "db repair", say=_say) as url:
        res = harbor_db.repair(url)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
    elif res.changed:
        click.echo(f"schema matches version {res.version}; schema_migrations was "
                   f"({res.recorded_version}, dirty={res.recorded_dirty}), now ({res.version}, false). "
                   f"Next: harbor-upgrade db migrate {target}")
    else:
        click.echo(f"schema version {res.version} is clean and matches the schema: nothing to repair")
