"""Harbor 2.7.0 (from 2.6.x).

- Trivy says what it checks: ``trivy.security_check`` (``vuln`` by default), added to an
  existing ``trivy`` section.
- The internal Redis's databases may be chosen in a ``redis`` section (registry,
  jobservice, trivy, harbor, cache_layer); external Redis gains ``harbor_db_index`` and
  ``cache_layer_db_index``. Nothing is added: Harbor's defaults apply when they are absent.
- Harbor's own step reads ``external_redis.harbor_db_index``/``cache_layer_db_index`` from
  ``redis`` (crashing when only external_redis has them); we keep the operator's values.
"""
from __future__ import annotations

from ..document import Document
from ..model import Delta, F, Int, Section, Text
from .common import Default

VERSION = "2.7.0"
INDEX = Int(0, None, "a Redis database number")
MODEL = Delta(add={
    ("trivy", "security_check"): F(Text()),
    ("redis",): F(Section({key: F(INDEX) for key in (
        "registry_db_index", "jobservice_db_index", "trivy_db_index", "harbor_db_index", "cache_layer_db_index")})),
    ("external_redis", "harbor_db_index"): F(INDEX),
    ("external_redis", "cache_layer_db_index"): F(INDEX),
})
DEFAULTS = (
    Default(("trivy",), "security_check", "vuln", "Trivy checks for vulnerabilities (the default)",
            after="offline_scan"),
)


def apply(doc: Document) -> None:
    """Nothing to change: the new setting is a DEFAULT."""
