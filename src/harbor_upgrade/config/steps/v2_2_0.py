"""Harbor 2.2.0 (from 2.1.x).

- Clair is gone: its ``clair`` section, ``external_database.clair`` and
  ``external_redis.clair_db_index`` are retired (kept in the file, commented out),
  and ``clair`` leaves the proxy ``components`` list.
- The default proxy section lists core, jobservice and trivy.
- ``metric`` (Prometheus endpoint) becomes possible; nothing is added.
"""
from __future__ import annotations

from ..document import Document
from ..model import PATH, PORT, PROXY_COMPONENTS, Bool, Delta, F, OneOf, Section, SequenceOf
from . import common

VERSION = "2.2.0"
MODEL = Delta(remove=(("clair",), ("external_database", "clair"), ("external_redis", "clair_db_index")), add={
    ("proxy", "components"): F(SequenceOf(OneOf(*PROXY_COMPONENTS), nullable=True)),
    ("metric",): F(Section({"enabled": F(Bool(), True), "port": F(PORT, True), "path": F(PATH, True)})),
})
WHY = "Harbor 2.2 has no Clair"


def apply(doc: Document) -> None:
    if doc.has("clair"):
        doc.remove((), "clair", WHY)
    if doc.section("external_database") is not None and doc.has("external_database", "clair"):
        doc.remove(("external_database",), "clair", WHY)
    if doc.section("external_redis") is not None and doc.has("external_redis", "clair_db_index"):
        doc.remove(("external_redis",), "clair_db_index", WHY)
    common.proxy_without_clair(doc, WHY)
    common.usual_defaults(doc, database=(50, 100))
    common.trivy_flags(doc)
    common.redis_host_port(doc)
    common.redis_indexes(doc, clair=False)
    common.default_proxy(doc, ["core", "jobservice", "trivy"])
