"""Commands of this area (filled in by its issue)."""
from __future__ import annotations

from . import cli  # noqa: F401
