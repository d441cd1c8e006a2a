"""`harbor-upgrade migrate`: migrate harbor.yml to a newer Harbor release.

    harbor-upgrade migrate -i IN [-o OUT] [-t TARGET] [--diff] [--check]

Harbor's own flags: ``-i`` the harbor.yml to read, ``-o`` where to write (default: the
input, replaced atomically, the original kept as ``IN.<old-version>.bak``), ``-t`` the
target release (1.10.0 ... the newest config release, the default). ``--diff`` prints the unified diff and
writes nothing; ``--check`` writes nothing and exits 1 when a migration is needed.
Secrets are masked in everything printed.

Exit codes:

    0  migrated, or nothing to do (the file is already at the target)
    1  --check: a migration is needed (nothing written)
    2  bad input (empty, not a mapping, invalid YAML, binary, not UTF-8, no _version,
       too large, unwritable output) or a result that fails validation; nothing written
    3  unsupported version: _version or target unknown, newer than the newest, older than
       1.9.0, not X.Y.Z (a float, a 'v' prefix), or a downgrade; nothing written
"""
from __future__ import annotations

import click

from .. import versions
from ..config import migrate_file, plan_migration
from ..config.steps import RELEASES
from ..errors import ExitStatus
from ..secrets import mask_text
from . import cli


@cli.command("migrate")
@click.option("-i", "--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="the harbor.yml to migrate")
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False),
              help="write here instead of replacing the input (the input is then left untouched)")
@click.option("-t", "--target", default=lambda: versions.TARGET, show_default="the newest release",
              help=f"target release: {', '.join(RELEASES[1:-1])} or {RELEASES[-1]}")
@click.option("--diff", "show_diff", is_flag=True, help="print the unified diff; write nothing")
@click.option("--check", is_flag=True, help="write nothing; exit 1 if a migration is needed")
def migrate_cmd(input_path: str, output_path: str | None, target: str, show_diff: bool, check: bool) -> int:
    """Migrate harbor.yml to TARGET, keeping comments, order, quoting and unknown keys.

    Without -o the input is replaced atomically and the original kept as
    IN.<old-version>.bak. Secrets are masked in everything printed.

    \b
    Exit codes: 0 done or nothing to do; 1 --check: a migration is needed;
    2 bad input or a result that fails validation; 3 unsupported version or
    downgrade. Nothing is written on any non-zero exit.
    """
    if show_diff or check:
        result = plan_migration(input_path, target=target, output_path=output_path)
        _warn(result.warnings)
        if show_diff and result.diff_text:
            click.echo(result.diff_text, nl=False)
        if not result.steps:
            click.echo(f"{input_path}: already at {result.to_version} ({result.from_version}); nothing to migrate",
                       err=show_diff)
            return int(ExitStatus.OK)
        summary = (f"{input_path}: needs migration {result.from_version} -> {result.to_version} "
                   f"(steps {', '.join(result.steps)}); nothing written")
        click.echo(summary, err=show_diff)
        return int(ExitStatus.CHANGES_NEEDED) if check else int(ExitStatus.OK)
    result = migrate_file(input_path, output_path, target=target)
    _warn(result.warnings)
    if not result.steps:
        where = f"; copied unchanged to {result.output_path}" if result.written else ""
        click.echo(f"{input_path}: already at {result.to_version} ({result.from_version}), no need to migrate{where}")
        return int(ExitStatus.OK)
    for step in result.steps:
        click.echo(f"migrating to version {step}")
    for line in result.changes:
        click.echo(mask_text(f"  {line}"))
    click.echo(f"written to {result.output_path}")
    if result.backup_path:
        click.echo(f"the original is kept as {result.backup_path}")
    return int(ExitStatus.OK)


def _warn(warnings: list[str]) -> None:
    for line in warnings:
        click.echo(mask_text(f"warning: {line}"), err=True)
