"""Harbor 2.6.0 (from 2.5.x).

- A new ``cache`` section: Harbor can cache artifact metadata in Redis (off, entries
  kept 24 hours, by default).
- ``upload_purging`` is read from its own keys again (2.5.0's step read them from ``trace``).
"""
from __future__ import annotations

from ..document import Document
from ..model import Bool, Delta, F, Int, Section
from .common import Default

VERSION = "2.6.0"
CACHE = {"enabled": False, "expire_hours": 24}
MODEL = Delta(add={
    ("cache",): F(Section({"enabled": F(Bool()), "expire_hours": F(Int(1, None, "a number of hours"))})),
})
DEFAULTS = (
    Default((), "cache", CACHE, "Harbor 2.6 can cache in Redis; off by default"),
    *(Default(("cache",), key, value, "the default") for key, value in CACHE.items()),
)


def apply(doc: Document) -> None:
    """Nothing to change: the new settings are DEFAULTS."""
