"""The release steps of the database, oldest first: every ``vX_Y_Z`` module of this
package that exports ``STEP`` (adding a release is adding its module)."""
from __future__ import annotations

import importlib
import pkgutil

from .base import HarborDb, Loss, ReleaseStep, SchemaFile, Statement


def _discover() -> tuple[ReleaseStep, ...]:
    steps = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("v"):
            step = importlib.import_module(f"{__name__}.{info.name}").STEP
            if info.name != "v" + step.release.replace(".", "_"):
                raise ImportError(f"db step module {info.name} declares release {step.release}")
            steps.append(step)
    steps.sort(key=lambda s: tuple(int(p) for p in s.release.split(".")))
    return tuple(steps)


STEPS: tuple[ReleaseStep, ...] = _discover()
# The steps that apply schema files (1.10 only declares the oldest schema).
APPLIED: tuple[ReleaseStep, ...] = tuple(s for s in STEPS if s.files)


def step_of(release: str) -> ReleaseStep:
    return next(s for s in STEPS if s.release == release)


__all__ = ["APPLIED", "STEPS", "HarborDb", "Loss", "ReleaseStep", "SchemaFile", "Statement", "step_of"]
