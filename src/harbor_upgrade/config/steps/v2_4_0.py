"""Harbor 2.4.0 (from 2.3.x).

- Trivy scans have a time limit: ``trivy.timeout`` (a Go duration, default ``5m0s``),
  added to an existing ``trivy`` section.
- Distributed tracing (``trace``: jaeger or otel) becomes possible; a section the
  operator already wrote is kept as written, nothing is added.
- As since 2.2, ``clair`` is filtered out of the proxy ``components`` list.
"""
from __future__ import annotations

from ..document import Document
from . import common

VERSION = "2.4.0"


def apply(doc: Document) -> None:
    common.usual_defaults(doc, database=(100, 900))
    common.trivy_flags(doc)
    trivy = doc.section("trivy")
    if trivy is not None and "timeout" not in trivy:
        after = "ignore_unfixed" if "ignore_unfixed" in trivy else None
        doc.add(("trivy",), "timeout", "5m0s", "how long one scan may take, Harbor 2.4's default", after=after)
    common.redis_host_port(doc)
    common.redis_indexes(doc, clair=False)
    common.proxy_without_clair(doc, "Harbor 2.4 has no Clair")
    common.default_proxy(doc, ["core", "jobservice", "trivy"])
