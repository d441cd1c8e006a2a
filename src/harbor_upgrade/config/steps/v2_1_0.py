"""Harbor 2.1.0 (from 2.0.x; real 2.1.x files still say ``_version: 2.0.0``).

- Harbor's own database may open up to 1000 connections: a ``max_open_conns`` from
  100 to 999 is raised to 1000. ``external_database`` is not touched.
- ``internal_tls`` (``enabled``, ``dir``) is a new, optional section; nothing is added.
- A ``trivy`` section, when present, has its three switches (off unless set).
- External Redis: ``host: <host>:<port>`` (Sentinel: a comma-separated list) with an
  optional ``sentinel_master_set``; a leftover ``port`` key is folded into the host.
"""
from __future__ import annotations

from ..document import Document
from ..model import Bool, Delta, F, Section, Text
from . import common

VERSION = "2.1.0"
MODEL = Delta(remove=(("external_redis", "port"),), add={
    ("internal_tls",): F(Section({"enabled": F(Bool(), True), "dir": F(Text())})),
    ("external_redis", "host"): F(Text(pattern=r"[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*",
                                       what="host:port (Sentinel: h1:p1,h2:p2)"), True),
    ("external_redis", "sentinel_master_set"): F(Text(nullable=True)),
})


def apply(doc: Document) -> None:
    database = doc.section("database")
    if database is not None:
        open_conns = common.pool_size(database, "max_open_conns")
        if open_conns is not None and 100 <= open_conns < 1000:
            doc.change(("database",), "max_open_conns", 1000, "raised to 1000, as Harbor 2.1 does")
    common.usual_defaults(doc, database=(50, 100))
    common.clair_section(doc)
    common.trivy_flags(doc)
    common.redis_host_port(doc)
    common.redis_indexes(doc, clair=True)
    common.default_proxy(doc, ["core", "jobservice", "clair", "trivy"])
