"""Harbor 2.4.0 (from 2.3.x).

- Trivy scans have a time limit: ``trivy.timeout`` (a Go duration, default ``5m0s``),
  added to an existing ``trivy`` section.
- Distributed tracing (``trace``: jaeger or otel) becomes possible; nothing is added
  to a file without it. A ``trace.jaeger`` or ``trace.otel`` the operator already wrote
  names all five of its settings; the ones left out are written empty.
- As since 2.2, ``clair`` is filtered out of the proxy ``components`` list.
"""
from __future__ import annotations

from ..document import Document
from . import common

VERSION = "2.4.0"
JAEGER = ("endpoint", "username", "password", "agent_host", "agent_port")
OTEL = ("endpoint", "url_path", "compression", "insecure", "timeout")


def apply(doc: Document) -> None:
    common.usual_defaults(doc, database=(100, 900))
    common.trivy_flags(doc)
    trivy = doc.section("trivy")
    if trivy is not None and "timeout" not in trivy:
        after = "ignore_unfixed" if "ignore_unfixed" in trivy else None
        doc.add(("trivy",), "timeout", "5m0s", "how long one scan may take, Harbor 2.4's default", after=after)
    for provider, keys in (("jaeger", JAEGER), ("otel", OTEL)):
        common.in_order(doc, ("trace", provider), keys, dict.fromkeys(keys), "not set")
    common.redis_host_port(doc)
    common.redis_indexes(doc, clair=False)
    common.proxy_without_clair(doc, "Harbor 2.4 has no Clair")
    common.default_proxy(doc, ["core", "jobservice", "trivy"])
