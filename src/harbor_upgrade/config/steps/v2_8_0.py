"""Harbor 2.8.0 (from 2.7.x).

- ChartMuseum is removed: the ``chart`` section and ``external_redis.chartmuseum_db_index``
  go (kept in the file, commented out, with a note). Helm charts in ChartMuseum's storage
  are no longer served; charts pushed as OCI artifacts are not affected.
- ``storage_service.redirect.disabled`` is spelled ``disable`` (Harbor 2.8 reads either; its
  steps write ``disable``, and so do ours, in this step and every later one).
- New settings: ``jobservice.logger_sweeper_duration`` (days, 1) and
  ``notification.webhook_job_http_client_timeout`` (seconds, 3); a file without a
  ``notification`` section now gets 3 retries (10 before).
- External Redis may name a user: ``external_redis.username`` (nothing added).
"""
from __future__ import annotations

from ..document import Document
from ..model import Bool, Delta, F, Int, Section, Text
from .common import Default

VERSION = "2.8.0"
CHARTMUSEUM = ("ChartMuseum was removed in Harbor 2.8: push Helm charts as OCI artifacts "
               "(helm push ... oci://<registry>/<project>) before upgrading")
MODEL = Delta(
    remove=(("chart",), ("external_redis", "chartmuseum_db_index")),
    rename={("storage_service", "redirect", "disabled"): "disable"},
    add={
        ("jobservice", "logger_sweeper_duration"): F(Int(1, None, "a number of days")),
        ("notification", "webhook_job_http_client_timeout"): F(Int(1, None, "a number of seconds")),
        ("external_redis", "username"): F(Text(nullable=True)),
        # either spelling is read; a file at 2.8 or later may still have the old one
        ("storage_service", "redirect"): F(Section({"disable": F(Bool()), "disabled": F(Bool())})),
    })
DEFAULTS = (
    Default(("jobservice",), "logger_sweeper_duration", 1, "job logs are swept after 1 day (the default)",
            after="max_job_workers"),
    Default((), "notification", {"webhook_job_max_retry": 3, "webhook_job_http_client_timeout": 3},
            "webhook retries and timeout, Harbor 2.8's defaults"),
    Default(("notification",), "webhook_job_http_client_timeout", 3, "seconds, the default",
            after="webhook_job_max_retry"),
)


def apply(doc: Document) -> None:
    if doc.has("chart"):
        doc.remove((), "chart", CHARTMUSEUM)
        doc.warn(CHARTMUSEUM)
    if doc.section("external_redis") is not None and doc.has("external_redis", "chartmuseum_db_index"):
        doc.remove(("external_redis",), "chartmuseum_db_index", "ChartMuseum was removed in Harbor 2.8")
