"""The process's terminal as the commands see it: streams, whether each is a terminal, and
colour. Built once in ``main`` and handed to every command (``click``'s context object),
so that nothing below the CLI reads ``isatty`` and a test can give its own."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import click

from ..secrets import mask_text


def _isatty(stream: TextIO) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


@dataclass
class Console:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_tty: bool | None = None
    stderr_tty: bool | None = None
    colour: bool | None = None

    def __post_init__(self) -> None:
        if self.stdin_tty is None:
            self.stdin_tty = _isatty(self.stdin)
        if self.stderr_tty is None:
            self.stderr_tty = _isatty(self.stderr)
        if self.colour is None:
            self.colour = bool(self.stderr_tty) and "NO_COLOR" not in os.environ

    def confirm(self, question: str) -> bool:
        return click.confirm(mask_text(question), default=False, err=True)

    def ask_password(self, who: str) -> str | None:
        """The database password from the operator at a terminal; None without one."""
        if not self.stdin_tty:
            return None
        return click.prompt(f"Password for {who}", hide_input=True, default="", show_default=False,
                            err=True) or None

    @property
    def confirmer(self) -> Callable[[str], bool] | None:
        """Who answers a confirmation: the operator at a terminal, else nobody (the core then
        asks for --yes)."""
        return self.confirm if self.stdin_tty else None


def current() -> Console:
    """The console of the running command (a fresh one outside ``main``)."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    if root is not None and isinstance(root.obj, Console):
        return root.obj
    console = Console()
    if root is not None:
        root.obj = console
    return console
