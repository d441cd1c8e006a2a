"""Harbor 2.3.0 (from 2.2.x).

- New connection defaults for Harbor's own database: 100 idle / 900 open. A file
  still at the old shipped pair (50 / 1000) moves to the new pair; tuned values stay.
- ``metric`` (``enabled``, ``port``, ``path``) is carried as written.
- As since 2.2, ``clair`` is filtered out of the proxy ``components`` list.
"""
from __future__ import annotations

from ..document import Document
from ..model import Delta
from . import common

VERSION = "2.3.0"
MODEL = Delta()     # new defaults only; no key comes or goes


def apply(doc: Document) -> None:
    database = doc.section("database")
    if database:
        if common.pool_size(database, "max_idle_conns") == 50 and common.pool_size(database, "max_open_conns") == 1000:
            doc.change(("database",), "max_idle_conns", 100, "Harbor 2.3's new default")
            doc.change(("database",), "max_open_conns", 900, "Harbor 2.3's new default")
    common.usual_defaults(doc, database=(100, 900))
    common.trivy_flags(doc)
    common.redis_host_port(doc)
    common.redis_indexes(doc, clair=False)
    common.proxy_without_clair(doc, "Harbor 2.3 has no Clair")
    common.default_proxy(doc, ["core", "jobservice", "trivy"])
