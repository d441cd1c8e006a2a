"""Harbor 2.15.0 (from 2.14.x).

- Trivy's vulnerability databases may come from a mirror: ``trivy.db_repository`` and
  ``trivy.java_db_repository`` (GitHub's container registry by default), added to an
  existing ``trivy`` section.
"""
from __future__ import annotations

from ..document import Document
from ..model import Delta, F, Text
from .common import Default

VERSION = "2.15.0"
MODEL = Delta(add={("trivy", "db_repository"): F(Text()), ("trivy", "java_db_repository"): F(Text())})
DEFAULTS = (
    Default(("trivy",), "db_repository", "ghcr.io/aquasecurity/trivy-db", "the default",
            after="skip_java_db_update"),
    Default(("trivy",), "java_db_repository", "ghcr.io/aquasecurity/trivy-java-db", "the default",
            after="db_repository"),
)


def apply(doc: Document) -> None:
    """Nothing to change: the new settings are DEFAULTS."""
