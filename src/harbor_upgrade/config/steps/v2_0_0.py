"""Harbor 2.0.0 (from 1.10.x).

- Trivy becomes a scanner of Harbor: a ``trivy`` section appears with
  ``ignore_unfixed``, ``skip_update`` and ``insecure`` all off.
- External Redis is addressed as ``host: <host>:<port>``; the ``port`` key goes, and
  Trivy gets a Redis database (``trivy_db_index: 5``) next to an
  ``idle_timeout_seconds: 30`` setting. Values the operator already set are kept.
- A proxy ``components`` list gains ``trivy``, so Trivy uses the proxy like Clair does.
- Clair's section stays; database defaults stay at 50/100.
"""
from __future__ import annotations

from ..document import Document
from ..model import Bool, Delta, F, Int, Section, Text
from . import common

VERSION = "2.0.0"
MODEL = Delta(add={
    ("trivy",): F(Section({"ignore_unfixed": F(Bool()), "skip_update": F(Bool()), "insecure": F(Bool()),
                           "github_token": F(Text(nullable=True))})),
    ("external_redis", "trivy_db_index"): F(Int(0, None)),
    ("external_redis", "idle_timeout_seconds"): F(Int(0, None)),
})


def apply(doc: Document) -> None:
    common.usual_defaults(doc, database=(50, 100))
    common.clair_section(doc)
    if not doc.has("trivy"):
        doc.add((), "trivy", {"ignore_unfixed": False, "skip_update": False, "insecure": False},
                "Harbor 2.0 scans with Trivy; these are its defaults")
    common.trivy_flags(doc)
    common.redis_host_port(doc)
    common.redis_indexes(doc, clair=True)
    components = common.proxy_components(doc)
    if components is not None and "trivy" not in components:
        doc.append_item(("proxy",), "components", "trivy", "Trivy reaches the outside through the proxy too")
    common.default_proxy(doc, ["core", "jobservice", "clair", "trivy"])
