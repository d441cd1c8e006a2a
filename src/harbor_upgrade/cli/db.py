"""`harbor-upgrade db status|lint|migrate|repair`: the Harbor database upgrade."""
from __future__ import annotations

import json

import click

from .. import db as harbor_db
from ..db.steps import APPLIED, STEPS
from ..errors import ExitStatus
from ..versions import TARGET
from ..secrets import mask_dsn, register_dsn
from . import cli

dsn_option = click.option("--dsn", required=True, envvar="HARBOR_UPGRADE_DSN",
                          help="PostgreSQL DSN of Harbor's `registry` database")
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")
to_option = click.option("--to", default=TARGET, show_default=True,
                         help="target release (" + ", ".join(s.release for s in APPLIED) + "; patch versions "
                              "name their line)")


@cli.group("db", help=f"The Harbor database: schema {STEPS[0].version} ({STEPS[0].release}) ... "
                      f"{STEPS[-1].schema_versions[-1]} ({STEPS[-1].release}).")
def db_group() -> None:
    pass


@db_group.command("status")
@dsn_option
@json_option
def status_cmd(dsn: str, as_json: bool) -> None:
    """Schema version, dirty flag, data version, release and pending steps."""
    register_dsn(dsn)
    st = harbor_db.status(dsn)
    if as_json:
        click.echo(json.dumps(st.to_dict(), indent=2))
        return
    click.echo(f"database:       {mask_dsn(dsn)}")
    click.echo(f"schema version: {st.schema_version}{' (DIRTY)' if st.dirty else ''}")
    click.echo(f"release:        {st.release or 'unknown'}")
    click.echo(f"data version:   {st.data_version if st.data_version is not None else '-'}"
               + ("  (artifact abstraction pending)" if st.data_version == 0 else ""))
    if st.dirty:
        click.echo(f"next:           harbor-upgrade db repair --dsn '{mask_dsn(dsn)}'")
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
@to_option
@json_option
def lint_cmd(dsn: str, to: str, as_json: bool) -> int:
    """List rows that would make a pending release step fail, with the fix (read-only)."""
    register_dsn(dsn)
    findings = harbor_db.lint(dsn, to=to)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], indent=2, default=str))
    elif findings:
        _print_findings(findings)
    else:
        click.echo("no problems found")
    return int(ExitStatus.CHANGES_NEEDED) if findings else 0


@db_group.command("migrate")
@dsn_option
@to_option
@click.option("--dry-run", is_flag=True, help="show each step and the rows it touches; write nothing")
@click.option("--force-connected", is_flag=True, help="run although other clients are connected")
@json_option
def migrate_cmd(dsn: str, to: str, dry_run: bool, force_connected: bool, as_json: bool) -> None:
    """Upgrade the schema and data to --to (default: the newest release), one transaction per release."""
    register_dsn(dsn)

    def progress(step: str, message: str) -> None:
        if not as_json:
            click.echo(f"  {step}: {message}", err=True)

    rep = harbor_db.migrate(dsn, to=to, dry_run=dry_run, force_connected=force_connected,
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
    click.echo(("dry run: nothing written; would go " if dry_run else "schema version ")
               + f"{rep.from_version} -> {rep.to_version}")


@db_group.command("repair")
@dsn_option
@json_option
def repair_cmd(dsn: str, as_json: bool) -> None:
    """Clear a dirty schema version after checking which version the schema really has."""
    register_dsn(dsn)
    res = harbor_db.repair(dsn)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
    elif res.changed:
        click.echo(f"schema matches version {res.version}; schema_migrations was "
                   f"({res.recorded_version}, dirty={res.recorded_dirty}), now ({res.version}, false). "
                   f"Next: harbor-upgrade db migrate --dsn '{mask_dsn(dsn)}'")
    else:
        click.echo(f"schema version {res.version} is clean and matches the schema: nothing to repair")
