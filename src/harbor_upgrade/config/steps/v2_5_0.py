"""Harbor 2.5.0 (from 2.4.x).

- Trivy can scan without reaching the internet for dependencies: ``trivy.offline_scan``
  (off unless set), added to an existing ``trivy`` section.
- A new ``upload_purging`` section: the registry deletes unfinished uploads older than
  ``age`` every ``interval`` (on, 168h, 24h, no dry run by default).
- Harbor's own 2.5.0 step reads an existing ``upload_purging`` from ``trace`` instead of
  its own keys (crashing or copying the trace values); we keep the operator's values.
- From here on Harbor's own steps (of v2.15) also drop ``external_redis.chartmuseum_db_index``,
  although ChartMuseum still runs until 2.8 and reads it; we keep it until 2.8.
"""
from __future__ import annotations

from ..document import Document
from ..model import DURATION, Bool, Delta, F, Int, Section
from .common import Default

VERSION = "2.5.0"
PURGING = {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False}
MODEL = Delta(add={
    ("trivy", "offline_scan"): F(Bool()),
    # its prepare takes 3 when it is left out (the 2.5 file ships it commented out)
    ("external_redis", "chartmuseum_db_index"): F(Int(0, None), assumed=3),
    ("upload_purging",): F(Section({"enabled": F(Bool()), "age": F(DURATION), "interval": F(DURATION),
                                    "dryrun": F(Bool())})),
})
DEFAULTS = (
    Default(("trivy",), "offline_scan", False, "off: Trivy may look dependencies up online (the default)",
            after="skip_update"),
    Default((), "upload_purging", PURGING,
            "Harbor 2.5 purges unfinished uploads: older than a week, once a day (the defaults)"),
    *(Default(("upload_purging",), key, value, "the default") for key, value in PURGING.items()),
)


def apply(doc: Document) -> None:
    """Nothing to change: the new settings are DEFAULTS."""
