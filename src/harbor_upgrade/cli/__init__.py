"""The command layer: parse, call, render. No logic lives here.

Each area adds its commands from its own module (cli/migrate.py, cli/db.py, ...);
``main`` maps every HarborUpgradeError to its message, hint and exit code, without
a traceback, and masks secrets in what it prints. Anything else that escapes is a bug:
it is reported as ``error [internal-error]`` (masked, exit 70) unless ``--traceback``
asks for the raw exception.
"""
from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import ExitStatus, HarborUpgradeError, InternalError
from ..secrets import mask_all

# Set by the global --traceback flag: unexpected exceptions are re-raised as they are.
_show_traceback = False


def _set_traceback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    global _show_traceback
    _show_traceback = bool(value)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="harbor-upgrade")
@click.option("--traceback", is_flag=True, expose_value=False, is_eager=True, callback=_set_traceback,
              help="on an internal error (exit 70) show the raw Python traceback instead of the short "
                   "masked message (the traceback is not masked: it may show secrets)")
def cli() -> None:
    """Upgrade a Harbor installation (v1.10.x - v2.3.x) to v2.4.0: config, database,
    artifact metadata, PostgreSQL engine, backup and rollback."""


def print_error(err: HarborUpgradeError) -> None:
    click.echo(mask_all(f"error [{err.reference}]: {err.message}"), err=True)
    if err.hint:
        click.echo(mask_all(f"hint: {err.hint}"), err=True)


def print_internal_error(exc: BaseException) -> None:
    """The last resort: one masked line naming the exception, and how to see more."""
    kind = type(exc).__qualname__ if type(exc).__module__ == "builtins" else \
        f"{type(exc).__module__}.{type(exc).__qualname__}"
    text = " ".join(str(exc).split()) or "(no message)"
    click.echo(mask_all(f"error [internal-error]: {kind}: {text}"), err=True)
    click.echo("hint: this is a bug in harbor-upgrade; rerun the same command with --traceback "
               "(harbor-upgrade --traceback COMMAND ...) to see where it happened, and report it", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit status."""
    global _show_traceback
    _show_traceback = False
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
    except Exception as exc:  # noqa: BLE001 - the last resort: every bug ends as one masked line
        if _show_traceback:
            raise
        print_internal_error(exc)
        code = int(InternalError.exit_code)
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
