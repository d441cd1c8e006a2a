"""Keep secrets out of every output, log, report and journal.

Two tools: ``mask_dsn`` hides the password of a connection string, and ``mask_text``
hides every value registered with ``register`` (passwords read from harbor.yml, DSNs,
S3 keys) wherever it appears in a text about to be shown or written.
"""
from __future__ import annotations

import re
import threading

MASK = "********"

# Keys whose values are credentials, in harbor.yml and anywhere else we print a mapping:
# any key named like *password*, *secret*, *key*, *token* or *credential* (Azure's
# accountkey, S3's secretkey, OSS's accesskeysecret, Swift's password, GCS's keyfile ...).
SECRET_KEY_RE = re.compile(r"(password|passwd|passphrase|secret|token|key|credential)", re.IGNORECASE)

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


# ---------------------------------------------------------------------------
# Connection strings, in every shape libpq reads.

_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# key=value: a value is quoted ('...' with \' and \\ escapes) or runs to the next blank (with \ escapes)
_KV = re.compile(r"\s*(?P<key>[^=\s]+)\s*=\s*(?P<val>'(?:\\.|[^'\\])*'?|(?:\\.|[^\s\\])*\\?)", re.DOTALL)
_QUERY_PASSWORD = re.compile(r"(?:(?<=[?&])|^)password=([^&#]*)")


def _url_userinfo(dsn: str) -> tuple[int, int] | None:
    """Span of a URL DSN's userinfo (between :// and the LAST @ of the authority), or None.

    The last @: a password with an unencoded @ must be masked whole, although libpq itself
    stops at the first one (see dsn_shape_problem)."""
    m = _URL_START.match(dsn.lstrip())
    if not m:
        return None
    begin = len(dsn) - len(dsn.lstrip()) + m.end()
    stop = len(dsn)
    for ch in "?#":
        i = dsn.find(ch, begin)
        if i >= 0:
            stop = min(stop, i)
    at = dsn.rfind("@", begin, stop)
    return (begin, at) if at >= 0 else None


def _password_spans(dsn: str) -> list[tuple[int, int]]:
    """Where the password text sits in a DSN (raw, as written)."""
    spans = []
    if _URL_START.match(dsn.lstrip()):
        info = _url_userinfo(dsn)
        if info:
            colon = dsn.find(":", info[0], info[1])
            if colon >= 0:
                spans.append((colon + 1, info[1]))
        query = dsn.find("?")
        if query >= 0:
            for q in _QUERY_PASSWORD.finditer(dsn, query + 1):
                spans.append(q.span(1))
        return spans
    pos = 0
    while pos < len(dsn):
        m = _KV.match(dsn, pos)
        if not m or m.end() == pos:
            break
        if m["key"] == "password":
            spans.append(m.span("val"))
        pos = m.end()
    return spans


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for begin, end in sorted(spans, reverse=True):
        text = text[:begin] + MASK + text[end:]
    return text


def mask_dsn(dsn: str) -> str:
    """postgresql://user:pw@host/db -> postgresql://user:********@host/db; ?password=, key=value
    DSNs (quoted, with escapes) too. The whole password goes, whatever it holds."""
    return _replace_spans(dsn, _password_spans(dsn))


def dsn_without_password(dsn: str) -> str:
    """The DSN with its password taken out (libpq then reads PGPASSWORD, ~/.pgpass or asks)."""
    cut = []
    for begin, end in _password_spans(dsn):
        if dsn[begin - 1:begin] == ":" and dsn[end:end + 1] == "@":
            cut.append((begin - 1, end))                          # user:pw@ -> user@
        elif dsn[begin - len("password="):begin] == "password=" and "://" in dsn[:begin]:
            amp = dsn[begin - len("password=") - 1]
            cut.append((begin - len("password=") - (amp == "&"), end))   # ?password=x / &password=x
        else:
            start = dsn.rfind("password", 0, begin)
            cut.append((start, end))                              # password=x (key=value)
    for begin, end in sorted(cut, reverse=True):
        dsn = dsn[:begin] + dsn[end:]
    return re.sub(r"\?(&|$)", lambda m: "?" if m[1] else "", dsn) if "://" in dsn else " ".join(dsn.split())


def _kv_unescape(raw: str) -> str:
    if raw.startswith("'"):
        raw = raw[1:-1] if raw.endswith("'") and len(raw) > 1 else raw[1:]
    return re.sub(r"\\(.)", r"\1", raw, flags=re.DOTALL)


def register_dsn(dsn: str) -> None:
    """Register the password inside a DSN as a secret: as written, decoded, and as libpq reads it."""
    from urllib.parse import unquote
    for begin, end in _password_spans(dsn):
        raw = dsn[begin:end]
        register(raw)
        register(unquote(raw))
        register(_kv_unescape(raw))
    try:
        from psycopg.conninfo import conninfo_to_dict
        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # noqa: BLE001 - an unparsable DSN is refused where it is used
        password = None
    if password:
        register(password)


def dsn_shape_problem(dsn: str) -> str | None:
    """Why a DSN cannot be used as the operator meant it, or None.

    libpq ends a URL's user:password at the FIRST @ (or /), so an unencoded @ or / in the
    password sends the rest of it to the server as a host name, in clear, in every error."""
    info = _url_userinfo(dsn)
    if info is None:
        return None
    userinfo = dsn[info[0]:info[1]]
    for ch, code in (("@", "%40"), ("/", "%2F")):
        if ch in userinfo:
            return (f"the user or password part of the URL holds an unencoded '{ch}': percent-encode it "
                    f"as {code}, or leave the password out of the DSN (PGPASSWORD, PGPASSFILE or "
                    f"--password-file)")
    return None


# Free text that may quote a DSN or a URL: userinfo and password=... are masked wherever they appear.
_TEXT_URL_USERINFO = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)[^\s'\"]*@")
_TEXT_PASSWORD_KV = re.compile(r"(?P<pre>\bpassword\s*=\s*)(?:'(?:\\.|[^'\\])*'?|(?:\\.|[^\s\\&])+)")


def mask_urls(text: str) -> str:
    """Hide the password of every user:password@ URL and every password=... in a text."""
    text = _TEXT_URL_USERINFO.sub(lambda m: f"{m['pre']}{MASK}@", text)
    return _TEXT_PASSWORD_KV.sub(lambda m: f"{m['pre']}{MASK}", text)


def mask_all(text: str) -> str:
    """Every registered secret, then every credential a DSN or URL in the text carries."""
    return mask_urls(mask_text(text))


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
