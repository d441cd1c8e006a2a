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
from ..model import DURATION, DURATION_PATTERN, Bool, Delta, F, Int, Number, ScalarMap, Section, Text, trace_rule
from . import common

VERSION = "2.4.0"
JAEGER = ("endpoint", "username", "password", "agent_host", "agent_port")
OTEL = ("endpoint", "url_path", "compression", "insecure", "timeout")
MODEL = Delta(add={
    ("trivy", "timeout"): F(DURATION),
    ("trace",): F(Section({
        "enabled": F(Bool(), True), "sample_rate": F(Number(0, 1), True), "namespace": F(Text(nullable=True)),
        "attributes": F(ScalarMap()),
        "jaeger": F(Section({"endpoint": F(Text(nullable=True)), "username": F(Text(nullable=True)),
                             "password": F(Text(nullable=True)), "agent_host": F(Text(nullable=True)),
                             "agent_port": F(Int(1, 65535, "a port number", nullable=True))}, nullable=True)),
        "otel": F(Section({"endpoint": F(Text(nullable=True)), "url_path": F(Text(nullable=True)),
                           "compression": F(Bool(nullable=True)), "insecure": F(Bool(nullable=True)),
                           "timeout": F(Text(nullable=True, pattern=r"\d+|" + DURATION_PATTERN,
                                             what="seconds or a duration like 10s"))},
                          nullable=True)),
    }, rule=trace_rule)),
})


def apply(doc: Document) -> None:
    # every later release keeps this in place too, so it is shared with them
    common.since_2_4(doc)
    # (Harbor's later steps leave the settings an operator left out out: absent or empty
    # mean the same to its prepare)
    for provider, keys in (("jaeger", JAEGER), ("otel", OTEL)):
        common.in_order(doc, ("trace", provider), keys, dict.fromkeys(keys), "not set")
