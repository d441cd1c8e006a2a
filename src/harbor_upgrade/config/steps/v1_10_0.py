"""Harbor 1.10.0 (from 1.9.0).

- Clair gets its own settings section: ``clair.updaters_interval`` (hours, default 12).
- External Redis gains a database for Clair: ``clair_db_index`` (4).
- The default proxy section lists core, jobservice and clair.
- Harbor's own database: 50 idle / 100 open connections when the file has none.
"""
from __future__ import annotations

from ..document import Document
from . import common

VERSION = "1.10.0"


def apply(doc: Document) -> None:
    common.usual_defaults(doc, database=(50, 100))
    common.clair_section(doc)
    common.redis_indexes(doc, clair=True)
    common.default_proxy(doc, ["core", "jobservice", "clair"])
