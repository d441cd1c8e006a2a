"""Harbor 2.12.0 (from 2.11.x): no change to harbor.yml but its ``_version``."""
from __future__ import annotations

from ..document import Document
from ..model import Delta

VERSION = "2.12.0"
MODEL = Delta()
DEFAULTS = ()


def apply(doc: Document) -> None:
    """Nothing to change."""
