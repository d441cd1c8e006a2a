"""Keep secrets out of every output, log, report and journal.

Two tools: ``mask_dsn`` hides the password of a connection string, and ``mask_text``
hides every value registered with ``register`` (passwords read from harbor.yml, DSNs,
S3 keys) wherever it appears in a text about to be shown or written.
"""
from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "********"

# Keys whose values are secrets, in harbor.yml and anywhere else we print a mapping.
SECRET_KEY_RE = re.compile(
    r"(password|passwd|secret|token|accesskey|secretkey|access_key|secret_key|private_key|"
    r"privatekey|credential|client_secret|keyfile|sentinel_password)$",
    re.IGNORECASE,
)

_lock = threading.Lock()
_known: set[str] = set()


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY_RE.search(key.replace("-", "_")))


def register(value: object) -> None:
    """Remember a secret value so that mask_text hides it from now on."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 3:
            with _lock:
                _known.add(text)


def forget_all() -> None:
    """Forget every registered secret (a new session: the tests start each case clean)."""
    with _lock:
        _known.clear()


def mask_dsn(dsn: str) -> str:
    """postgresql://user:pw@host/db -> postgresql://user:********@host/db; key=value DSNs too."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is not None:
            netloc = parts.netloc.rsplit("@", 1)
            user = parts.username or ""
            netloc = f"{user}:{MASK}@{netloc[1]}"
            dsn = urlunsplit(parts._replace(netloc=netloc))
        return re.sub(r"(password=)[^&\s]*", r"\1" + MASK, dsn)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1" + MASK, dsn)


def register_dsn(dsn: str) -> None:
    """Register the password inside a DSN as a secret."""
    if "://" in dsn:
        pw = urlsplit(dsn).password
        if pw:
            register(pw)
            from urllib.parse import unquote
            register(unquote(pw))
    else:
        m = re.search(r"password\s*=\s*('([^']*)'|\S+)", dsn)
        if m:
            register(m.group(2) if m.group(2) is not None else m.group(1))


def mask_text(text: str) -> str:
    """Hide every registered secret in text (longest first, so prefixes do not leak)."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_data(value: object) -> object:
    """A copy of a JSON-shaped value with secrets hidden in its strings and under secret keys.

    Masking the rendered JSON text instead would also hit its syntax: a registered secret
    such as 'false' or '2.0.0' would turn `"ok": false` into invalid JSON.
    """
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: MASK if is_secret_key(k) and v not in (None, "") else mask_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(v) for v in value]
    return value
