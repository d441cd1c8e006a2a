"""Harbor 2.10.0 (from 2.9.x).

- ``strong_ssl_ciphers`` moves to the ``https`` section (it governs the external TLS
  too); the value set under ``internal_tls`` moves with it. Without an ``https`` section
  an operator's own value stays under ``internal_tls``, where Harbor's prepare still reads it.
- Harbor's own step writes ``strong_ssl_ciphers: none`` into every https section whose
  file does not set it, and its prepare reads ``none`` as on; we write ``false`` (off,
  the documented default) and say so in the file.
- ``internal_tls.dir`` is optional.
"""
from __future__ import annotations

from ..document import Document
from ..model import Bool, Delta, F
from .common import Default

VERSION = "2.10.0"
MODEL = Delta(remove=(("internal_tls", "strong_ssl_ciphers"),), add={("https", "strong_ssl_ciphers"): F(Bool())})
DEFAULTS = (
    Default(("https",), "strong_ssl_ciphers", False,
            "off, the default (Harbor's own migrate writes 'none' here, which its prepare reads as on)"),
)


def apply(doc: Document) -> None:
    tls = doc.section("internal_tls")
    if tls is None or "strong_ssl_ciphers" not in tls:
        return
    ours = doc.added(("internal_tls", "strong_ssl_ciphers"))      # the 2.9 step's default, this run
    https = doc.section("https")
    if https is not None:
        if "strong_ssl_ciphers" not in https and not ours:
            doc.add(("https",), "strong_ssl_ciphers", tls["strong_ssl_ciphers"], "moved here from internal_tls")
        doc.remove(("internal_tls",), "strong_ssl_ciphers", "Harbor 2.10 reads it from https")
    elif ours or tls["strong_ssl_ciphers"] is False:
        doc.remove(("internal_tls",), "strong_ssl_ciphers", "off is the default; Harbor 2.10 reads it from https")
    else:
        doc.keep(("internal_tls",), "strong_ssl_ciphers",
                 "kept: no https section to move it to; Harbor's prepare still reads it here")
