"""The one progress protocol every long step reports through.

A runner counts its work with ``start(total, done)`` (``done`` > 0 when it resumes),
``advance(count)`` and ``finish()``, and says what it is doing with ``note(text)``;
``task(label)`` gives the progress of one part counted on its own (the artifacts of a run). The
CLI draws it (``report.ProgressReporter``: bars on a terminal, periodic lines otherwise);
``Silent`` is for callers that want none. Runners that only tell take a ``Note``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Note = Callable[[str], None]


class Progress(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def finish(self) -> None: ...
    def note(self, text: str) -> None: ...
    def task(self, label: str) -> Progress: ...


class Silent:
    """Progress that tells nobody."""

    def start(self, total: int, done: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def task(self, label: str) -> Silent:
        return self
