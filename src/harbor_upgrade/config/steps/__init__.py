"""One module per Harbor release: what that release changed in harbor.yml.

A module ``vX_Y_Z`` in this package is a release. It declares:

- ``VERSION``: the release (the ``_version`` its harbor.yml carries);
- ``MODEL``: its model delta (``model.Delta``: keys it adds or redefines, removes, renames),
  from which ``model.model_of`` builds the validation model of any target; what it removes
  no later step adds back, what it renames every later step renames;
- ``apply(doc)``: the edits that take a file of the previous release to this one;
- optionally ``DEFAULTS``: the keys this release's harbor.yml always has (``common.Default``),
  filled in by its step and by every later step, as Harbor's later templates do;
- optionally ``KEEPS``: settings Harbor's own steps lose from this release on, which we keep
  (``common.Keep``: each gets a note in the file and a warning, in this step and every later one).

The chain is found here by scanning the package, so adding a release is adding a module.
``RELEASES`` is the chain of releases the config migration knows (1.9.0, where the chain
starts, then one entry per module) and ``TARGET`` the newest of them. versions.py derives
the chain of the whole upgrade from these modules and the database's (its TARGET, the
newest release both know, is the default target of ``migrate``).
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from types import ModuleType

from ..document import Document
from . import common

_MODULE_NAME = re.compile(r"v(\d+)_(\d+)_(\d+)")


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _discover() -> tuple[ModuleType, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        m = _MODULE_NAME.fullmatch(info.name)
        if m:
            module = importlib.import_module(f"{__name__}.{info.name}")
            if module.VERSION != ".".join(m.groups()):
                raise ImportError(f"{module.__name__} declares VERSION {module.VERSION}")
            found.append(module)
    return tuple(sorted(found, key=lambda module: _key(module.VERSION)))


CHAIN: tuple[ModuleType, ...] = _discover()
FIRST = "1.9.0"                         # the oldest harbor.yml the chain starts from
RELEASES: tuple[str, ...] = (FIRST, *(module.VERSION for module in CHAIN))
TARGET = RELEASES[-1]


def _step(index: int) -> Callable[[Document], None]:
    module = CHAIN[index]
    defaults = [d for earlier in CHAIN[:index + 1] for d in getattr(earlier, "DEFAULTS", ())]
    keeps = [k for earlier in CHAIN[:index + 1] for k in getattr(earlier, "KEEPS", ())]
    renamed = [(earlier.VERSION, path, new) for earlier in CHAIN[:index + 1]
               for path, new in earlier.MODEL.rename.items()]
    gone = frozenset(path for earlier in CHAIN[:index + 1]
                     for path in (*earlier.MODEL.remove, *earlier.MODEL.rename))

    def step(doc: Document) -> None:
        doc.gone = gone            # what a release removed, no later default brings back
        common.renames(doc, renamed)   # a key a release renamed is renamed by every later step too
        module.apply(doc)
        if hasattr(module, "DEFAULTS"):
            # after this release's own edits: the sections its file always has (so that what
            # every release since 2.4 fills in finds them), then the keys inside sections
            common.fill(doc, [d for d in defaults if not d.path])
            common.since_2_4(doc)
            common.fill(doc, [d for d in defaults if d.path])
        common.keep(doc, keeps)
    return step


CONFIG_STEPS: dict[str, Callable[[Document], None]] = {module.VERSION: _step(i) for i, module in enumerate(CHAIN)}
