"""../shared (Harbor's fixtures, oracle and tools) beside the checkout, and its tools loaded as
modules without putting that folder on sys.path."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """../shared, or $HARBOR_SHARED, when it holds specs/; None when absent."""
    cand = Path(os.environ.get("HARBOR_SHARED", REPO.parent / "shared"))
    return cand if (cand / "specs").is_dir() else None


def shared_tool(shared: Path, name: str) -> ModuleType:
    """``../shared/tools/<name>.py`` as a module named ``shared_<name>`` (never shadowing ours)."""
    path = shared / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"shared_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
