"""Harbor 2.11.0 (from 2.10.x).

- Harbor's own database connections are recycled: ``database.conn_max_lifetime`` (5m)
  and ``database.conn_max_idle_time`` (0: never closed for idling).
- Trivy may skip its Java database update: ``trivy.skip_java_db_update`` (off).
- IPv4/IPv6 for the proxy in front of Harbor: ``ip_family`` (nothing added to a file
  without it; a section missing one family gets its default: IPv4 on, IPv6 off).
"""
from __future__ import annotations

from ..document import Document
from ..model import DURATION_PATTERN, Bool, Delta, F, Section, Text
from .common import Default

VERSION = "2.11.0"
FAMILY = Section({"enabled": F(Bool(), True)})
ZERO_OR_DURATION = Text(pattern=r"0|" + DURATION_PATTERN, what="0 or a duration like 5m")  # Go's 0: never
MODEL = Delta(add={
    ("database", "conn_max_lifetime"): F(ZERO_OR_DURATION),
    ("database", "conn_max_idle_time"): F(ZERO_OR_DURATION),
    ("trivy", "skip_java_db_update"): F(Bool()),
    ("ip_family",): F(Section({"ipv6": F(FAMILY), "ipv4": F(FAMILY)})),
})
DEFAULTS = (
    Default(("database",), "conn_max_lifetime", "5m", "connections are renewed after 5 minutes (the default)",
            after="max_open_conns"),
    Default(("database",), "conn_max_idle_time", 0, "idle connections are kept (the default)",
            after="conn_max_lifetime"),
    Default(("trivy",), "skip_java_db_update", False, "the default", after="skip_update"),
    Default(("ip_family",), "ipv6", {"enabled": False}, "IPv6 off, the default"),
    Default(("ip_family",), "ipv4", {"enabled": True}, "IPv4 on, the default"),
)


def apply(doc: Document) -> None:
    """Nothing to change: the new settings are DEFAULTS."""
