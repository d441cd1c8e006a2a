"""The command layer: parse, call, render. No logic lives here.

Each area adds its commands from its own module (cli/migrate.py, cli/db.py, ...);
``main`` maps every HarborUpgradeError to its message, hint and exit code, without
a traceback, and masks secrets in what it prints.
"""
from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import ExitStatus, HarborUpgradeError
from ..secrets import mask_text


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="harbor-upgrade")
def cli() -> None:
    """Upgrade a Harbor installation (v1.10.x - v2.3.x) to v2.4.0: config, database,
    artifact metadata, PostgreSQL engine, backup and rollback."""


def print_error(err: HarborUpgradeError) -> None:
    click.echo(mask_text(f"error [{err.reference}]: {err.message}"), err=True)
    if err.hint:
        click.echo(mask_text(f"hint: {err.hint}"), err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit status."""
    try:
        rv = cli.main(args=argv, prog_name="harbor-upgrade", standalone_mode=False)
    except HarborUpgradeError as err:
        print_error(err)
        code = int(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = int(ExitStatus.INTERRUPTED)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        e.show()
        code = int(ExitStatus.INVALID)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        code = int(ExitStatus.INTERRUPTED)
    else:
        code = int(rv or 0)
    if argv is None:
        sys.exit(code)
    return code


def _register() -> None:
    """Import each area's command module; each adds its commands to ``cli``."""
    import importlib
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}")


# One module per area; each owns its commands.
COMMAND_MODULES: list[str] = ["migrate", "db", "artifacts", "backup", "upgrade"]

_register()
