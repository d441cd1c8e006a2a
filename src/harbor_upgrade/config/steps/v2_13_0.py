"""Harbor 2.13.0 (from 2.12.x).

- A job may run at most ``jobservice.max_job_duration_hours`` (24).
- External Redis over TLS: ``external_redis.tlsOptions`` (``enable``, ``rootCA``);
  nothing is added.
"""
from __future__ import annotations

from ..document import Document
from ..model import Bool, Delta, F, Int, Section, Text
from .common import Default

VERSION = "2.13.0"
MODEL = Delta(add={
    ("jobservice", "max_job_duration_hours"): F(Int(1, None, "a number of hours")),
    ("external_redis", "tlsOptions"): F(Section({"enable": F(Bool(), True), "rootCA": F(Text())})),
})
DEFAULTS = (
    Default(("jobservice",), "max_job_duration_hours", 24, "a job may run a day (the default)",
            after="max_job_workers"),
)


def apply(doc: Document) -> None:
    """Nothing to change: the new setting is a DEFAULT."""
