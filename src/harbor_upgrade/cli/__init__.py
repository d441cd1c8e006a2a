"""The command layer: parse, call, render. No logic lives here.

Each area adds its commands from its own module (cli/migrate.py, cli/db.py, ...), imported
only when one of its commands is asked for (``COMMANDS``): ``--version`` or ``db --help`` do not
pay for every area's imports, top-level ``--help`` loads them all to list each short help;
``main`` maps every HarborUpgradeError to its message, hint and exit code, without
a traceback, and masks secrets in what it prints. Anything else that escapes is a bug:
it is reported as ``error [internal-error]`` (masked, exit 70) unless ``--traceback``
asks for the raw exception.
"""
from __future__ import annotations

import os
import stat
import sys

import click

from .. import __version__
from ..errors import ExitStatus, HarborUpgradeError, InternalError, InvalidInput
from ..secrets import mask_all, register
from .console import Console

# Every --dsn help ends with this: a password never has to be on a command line (`ps` shows it).
DSN_PASSWORD_HELP = ("; leave the password out: it is taken from PGPASSWORD, ~/.pgpass (PGPASSFILE), "
                     "harbor-upgrade --password-file FILE, or asked for on a terminal")
PASSWORD_FILE_MAX = 4096

# Set by the global --traceback flag: unexpected exceptions are re-raised as they are.
_show_traceback = False


def _set_traceback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    global _show_traceback
    _show_traceback = bool(value)
    return value


def checked_dsn(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The callback of every --dsn: a DSN that cannot be used is bad input (exit 2) before any work."""
    if value:
        from ..db import connection
        connection.check_dsn(value)
    return value


def read_password_file(path: str) -> str:
    """The first line of a regular file only its owner can read (like libpq's ~/.pgpass)."""
    def refuse(why: str, hint: str | None = None) -> InvalidInput:
        return InvalidInput(f"--password-file {path}: {why}", reference="password-file-invalid", hint=hint)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as err:
        raise refuse(f"cannot open: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse("is not a regular file")
        if st.st_mode & 0o077:
            raise refuse(f"can be read or written by other users (mode {stat.S_IMODE(st.st_mode):04o})",
                         hint=f"chmod 600 {path}")
        raw = os.read(fd, PASSWORD_FILE_MAX + 1)
    finally:
        os.close(fd)
    if len(raw) > PASSWORD_FILE_MAX:
        raise refuse(f"more than {PASSWORD_FILE_MAX} bytes: not a password file")
    try:
        password = raw.decode("utf-8").splitlines()[0] if raw.strip() else ""
    except UnicodeDecodeError:
        raise refuse("not UTF-8 text") from None
    if not password:
        raise refuse("its first line is empty")
    return password


def _use_password_file(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        password = read_password_file(value)
        register(password)
        os.environ["PGPASSWORD"] = password      # libpq, and the pg_dump/psql children, read it there


# The module of each command name (cli/<module>.py adds it to ``cli`` when imported).
COMMANDS: dict[str, str] = {
    "migrate": "migrate", "db": "db", "artifacts": "artifacts",
    "backup": "backup", "restore": "backup", "pg-upgrade": "backup",
    "plan": "upgrade", "run": "upgrade", "verify": "upgrade", "rollback": "upgrade", "demo": "upgrade",
}


class LazyGroup(click.Group):
    """A group whose commands are added by their module on first use (click's lazy-group pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib
            importlib.import_module(f"{__name__}.{COMMANDS[cmd_name]}")
            if cmd_name not in self.commands:
                raise InternalError(f"cli.{COMMANDS[cmd_name]} does not define the command {cmd_name!r}")
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="harbor-upgrade")
@click.option("--password-file", type=click.Path(dir_okay=False), expose_value=False, callback=_use_password_file,
              help="read the database password from the first line of FILE (mode 0600), for every DSN without "
                   "one; PGPASSWORD and ~/.pgpass (PGPASSFILE) work too. Never put a password on the command "
                   "line: every local user sees it in `ps`")
@click.option("--traceback", is_flag=True, expose_value=False, is_eager=True, callback=_set_traceback,
              help="on an internal error (exit 70) show the raw Python traceback instead of the short "
                   "masked message (the traceback is not masked: it may show secrets)")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Upgrade a Harbor installation (v1.10.x - v2.3.x) to v2.4.0: config, database,
    artifact metadata, PostgreSQL engine, backup and rollback."""
    # Runs only when a command runs (not for --help/--version): the database layer is imported
    # here, not at start, and asks the operator for a password through this process's console.
    from ..db import connection
    console = ctx.find_object(Console)
    connection.password_prompt = console.ask_password if console is not None else None


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
    environ_password = os.environ.get("PGPASSWORD")
    console = Console()
    try:
        rv = cli.main(args=argv, prog_name="harbor-upgrade", standalone_mode=False, obj=console)
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
    finally:
        # --password-file or a prompt set it for this command (matters only to in-process callers)
        if environ_password is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = environ_password
    if argv is None:
        sys.exit(code)
    return code

