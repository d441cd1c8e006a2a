"""Harbor 2.9.0 (from 2.8.x).

- Notary (content trust signing) is removed: ``external_database.notary_signer`` and
  ``notary_server`` go (kept in the file, commented out, with a note).
- Internal TLS can be limited to strong ciphers: ``internal_tls.strong_ssl_ciphers``
  (off by default; 2.10 moves the setting to ``https``).
- Job logs go to ``jobservice.job_loggers`` (STD_OUTPUT and FILE by default).
- ``core.quota_update_provider`` (db or redis) may be set; nothing is added.
- Harbor's own steps from 2.9 on drop ``external_redis.sentinel_master_set``, which
  silently turns a Sentinel setup into a plain Redis address; we keep it and say so.
"""
from __future__ import annotations

from ..document import Document
from ..model import Bool, Delta, F, OneOf, Section, SequenceOf
from .common import Default, Keep

VERSION = "2.9.0"
NOTARY = ("Notary was removed in Harbor 2.9: content trust signatures are no longer checked "
          "(sign with cosign or notation instead)")
MODEL = Delta(
    remove=(("external_database", "notary_signer"), ("external_database", "notary_server")),
    add={
        ("internal_tls", "strong_ssl_ciphers"): F(Bool()),
        ("jobservice", "job_loggers"): F(SequenceOf(OneOf("STD_OUTPUT", "FILE", "DB"))),
        ("core",): F(Section({"quota_update_provider": F(OneOf("db", "redis"))})),
    })
DEFAULTS = (
    Default(("jobservice",), "job_loggers", ["STD_OUTPUT", "FILE"], "where job logs go (the defaults)",
            after="max_job_workers"),
)

KEEPS = (
    Keep(("external_redis",), "sentinel_master_set",
         "kept: Harbor's own migrate drops it from 2.9 on, which would stop using Sentinel"),
)


def apply(doc: Document) -> None:
    for key in ("notary_signer", "notary_server"):
        if doc.section("external_database") is not None and doc.has("external_database", key):
            doc.remove(("external_database",), key, NOTARY)
            doc.warn(f"external_database.{key}: {NOTARY}")
    tls = doc.section("internal_tls")
    if tls is not None and "strong_ssl_ciphers" not in tls:
        doc.add(("internal_tls",), "strong_ssl_ciphers", False, "off, the default")
