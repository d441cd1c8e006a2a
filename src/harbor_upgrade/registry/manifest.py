"""Manifests and configs as Harbor 2.4 (Go) reads and writes them.

Harbor stores ``extra_attrs``, ``platform`` and ``urls`` as text written by Go's
``encoding/json``, and it accepts or rejects a manifest or config the way Go's decoder
does. To produce byte-identical rows this module reproduces both sides:

* decoding: JSON parsed into typed structures (case-insensitive member names, ``null``
  as absent, a wrong type anywhere fails the whole value), RFC 3339 times;
* encoding: ``go_json`` (sorted map keys, struct members in their fixed order, Go's
  string escaping and float64 formatting);
* what the registry serves for stored bytes: the content type (``classify``) and, for
  schema1, the length of the re-signed document (``schema1_served_length``).
"""
from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from functools import lru_cache
from math import copysign, isinf
from typing import Any

from ..errors import HarborUpgradeError

SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

IMAGE_MANIFESTS = frozenset({DOCKER_V2, OCI_MANIFEST})
INDEXES = frozenset({DOCKER_LIST, OCI_INDEX})


class Invalid(HarborUpgradeError):
    """Bytes that Go's decoder (or the registry) would refuse; ``reason`` is the report code."""

    def __init__(self, message: str, reason: str = "manifest-invalid"):
        super().__init__(message, reference=reason)
        self.reason = reason


# --------------------------------------------------------------------------------------
# Parsing JSON the way Go accepts it

class _DupDict(dict):
    """An object that had a member name twice; ``pairs`` keeps the document order,
    which typed decoding needs (Go assigns every occurrence, the last one wins)."""
    pairs: list


def _pairs_hook(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        d = _DupDict(d)
        d.pairs = pairs
    return d


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs_hook, parse_constant=_no_constant)
_GO_SPACE = " \t\r\n"

#: The deepest nesting of arrays and objects read. Go's decoder accepts 10,000 levels, but
#: decoding, checking and writing a value here recurse once or more per level; a deeper
#: document is reported (``…-too-deep``) instead of exhausting the interpreter's stack.
#: Real manifests and configs nest fewer than 10 levels.
MAX_DEPTH = 200
# a string (complete or cut short) or one bracket: what a nesting check has to look at
_NESTING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)


def nesting_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON text opens more than limit arrays/objects inside each other (strings
    skipped), without parsing it: iterative, so any depth is safe to check."""
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot nest deeper than it has openings (the common case, checked cheaply)
    return _nesting_end(text, limit, first_value=False) is None


def _nesting_end(text: str, limit: int, first_value: bool) -> int | None:
    """None when text opens more than limit arrays/objects inside each other (strings skipped),
    else where the scan ended: the end of text or, with first_value, where the bracket that
    brings the nesting back to zero closes."""
    depth = 0
    for token in _NESTING_TOKEN.finditer(text):
        c = token.group()[0]
        if c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return None
        elif c == "]" or c == "}":
            depth -= 1
            if first_value and depth == 0:
                return token.end()
    return len(text)


def _too_deep(reason: str) -> Invalid:
    return Invalid(f"nests arrays/objects more than {MAX_DEPTH} levels deep (Go reads up to 10,000; "
                   "this tool does not): not read", reason.replace("-invalid", "-too-deep"))


def _text(data: bytes) -> str:
    # Go's decoder keeps invalid UTF-8 as U+FFFD instead of failing.
    return data.decode("utf-8", errors="replace")


def parse_document(data: bytes, reason: str = "manifest-invalid") -> object:
    """Exactly one JSON value (a manifest, as the registry and Harbor unmarshal it)."""
    text = _text(data)
    if nesting_exceeds(text):
        raise _too_deep(reason)
    try:
        return _DECODER.decode(text)
    except ValueError as e:
        raise Invalid(f"not JSON: {e}", reason) from None
    except RecursionError:
        raise _too_deep(reason) from None


def parse_first_value(data: bytes, reason: str = "config-invalid") -> object:
    """The first JSON value of a stream; what follows it is ignored (a config blob,
    read by Go's json.Decoder)."""
    text = _text(data).lstrip(_GO_SPACE)
    if nesting_exceeds(text):
        # the nesting of what follows the first value is never read by Go: check the first value only
        try:
            end = _first_value_end(text)
        except ValueError as e:
            raise Invalid(f"not JSON: {e}", reason) from None
        if end is None:
            raise _too_deep(reason)
        text = text[:end]
    try:
        return _DECODER.raw_decode(text)[0]
    except ValueError as e:
        raise Invalid(f"not JSON: {e}", reason) from None
    except RecursionError:
        raise _too_deep(reason) from None


def _first_value_end(text: str) -> int | None:
    """Where the first JSON value of text ends if it nests at most MAX_DEPTH levels, else None
    (text starts with a value; an unbalanced one reads as ending at the end of text)."""
    if not text or text[0] not in "[{":
        return len(text)  # a scalar first: nothing nests in it
    return _nesting_end(text, MAX_DEPTH, first_value=True)


# --------------------------------------------------------------------------------------
# Typed decoding (Go structs)

STR, INT, BOOL, TIME, ANY, EMPTY = "str", "int", "bool", "time", "any", "empty"
_INT64 = (-(1 << 63), (1 << 63) - 1)


class Struct:
    """A Go struct: JSON member name -> type; decodes to a dict holding only the members
    that were present (and not null)."""

    def __init__(self, **fields):
        self.fields = {k.replace("__", "."): v for k, v in fields.items()}
        self.folded = {_fold(k): k for k in self.fields}


class ListOf:
    def __init__(self, item):
        self.item = item


class MapOf:
    def __init__(self, value):
        self.value = value


def _fold(name: str) -> str:
    # Go matches member names case-insensitively, folding the Kelvin sign and long s too.
    return name.lower().replace("\u017f", "s")


def _zero(t):
    if t is STR:
        return ""
    if t is INT:
        return 0
    if t is BOOL:
        return False
    return None


def decode(value: Any, t, reason: str):
    """Check value against Go type t and return the decoded value (the zero value for null)."""
    if value is None:
        return _zero(t)
    kind = type(value)
    if t is STR:
        if kind is str:
            return value
    elif t is INT:
        if kind is int and _INT64[0] <= value <= _INT64[1]:
            return value
    elif t is BOOL:
        if kind is bool:
            return value
    elif t is TIME:
        if kind is str:
            return GoTime.parse(value, reason)
    elif t is ANY:
        return _check_any(value, reason)
    elif t is EMPTY:
        if isinstance(value, dict):
            return {}
    elif isinstance(t, ListOf):
        if kind is list:
            item = t.item
            if item is STR and all(type(v) is str for v in value):
                return value
            return [decode(v, item, reason) for v in value]
    elif isinstance(t, MapOf):
        if isinstance(value, dict):
            if t.value is STR and kind is dict and all(type(v) is str for v in value.values()):
                return value
            items = value.pairs if isinstance(value, _DupDict) else value.items()
            out = {}
            for k, v in items:
                try:
                    out[k] = decode(v, t.value, reason)
                except Invalid as e:
                    raise Invalid(f"{k}: {e.message}", reason) from None
            return out
    elif isinstance(t, Struct):
        if isinstance(value, dict):
            return _decode_struct(value, t, reason)
    raise Invalid(f"{_json_kind(value)} where Go expects {_type_name(t)}", reason)


def _decode_struct(obj: dict, t: Struct, reason: str) -> dict:
    out: dict = {}
    items = obj.pairs if type(obj) is _DupDict else obj.items()
    fields = t.fields
    for key, v in items:
        ft = fields.get(key)
        if ft is None:
            name = t.folded.get(_fold(key))
            if name is None:
                continue
            ft = fields[name]
        else:
            name = key
        if v is None and ft is not STR and ft is not INT and ft is not BOOL:
            # Go sets a pointer/slice/map member to nil for null: absent
            out.pop(name, None)
            continue
        try:
            out[name] = decode(v, ft, reason)
        except Invalid as e:
            raise Invalid(f"{name}: {e.message}", reason) from None
    return out


def _check_any(value: Any, reason: str) -> object:
    """Generic JSON (Go interface{}): every number must fit a float64."""
    kind = type(value)
    if kind is float:
        if isinf(value):
            raise Invalid("number out of float64 range", reason)
    elif kind is int:
        try:
            if isinf(float(value)):
                raise OverflowError
        except OverflowError:
            raise Invalid("number out of float64 range", reason) from None
    elif kind is list:
        for v in value:
            _check_any(v, reason)
    elif isinstance(value, dict):
        for v in value.values():
            _check_any(v, reason)
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _type_name(t) -> str:
    if isinstance(t, Struct):
        return "an object"
    if isinstance(t, ListOf):
        return "an array"
    if isinstance(t, MapOf):
        return "an object"
    return {STR: "a string", INT: "an integer", BOOL: "a boolean", TIME: "an RFC 3339 time",
            EMPTY: "an object", ANY: "JSON"}[t]


# --------------------------------------------------------------------------------------
# RFC 3339 times as Go's time.Time reads and writes them

_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})\Z")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class GoTime(str):
    """A time as Go's MarshalJSON writes it back (the str value, without quotes)."""

    @classmethod
    def parse(cls, text: str, reason: str) -> GoTime:
        return _parse_time(text, reason)


@lru_cache(maxsize=4096)
def _parse_time(text: str, reason: str) -> GoTime:
    # image histories repeat the same times in every image built on one base: cached
    m = _TIME_RE.match(text)
    if not m:
        raise Invalid(f"{text!r} is not an RFC 3339 time", reason)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (1 <= month <= 12 and 1 <= day <= _DAYS[month - 1] + (month == 2 and leap)
            and hour < 24 and minute < 60 and second < 60):
        raise Invalid(f"{text!r} is not a valid date and time", reason)
    fraction = (m.group(7) or "")[:9].rstrip("0")
    zone = m.group(8)
    if zone[1:] == "00:00":
        zone = "Z"
    return GoTime(f"{text[:19]}{'.' + fraction if fraction else ''}{zone}")


# --------------------------------------------------------------------------------------
# Encoding: Go's encoding/json

class GoStruct(tuple):
    """Members of a Go struct, written in this order (not sorted): pairs (name, value)."""


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
            "\u2028": "\\u2028", "\u2029": "\\u2029"}
for _c in range(0x20):
    _ESCAPES.setdefault(chr(_c), f"\\u{_c:04x}")
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _escape(m: re.Match) -> str:
    # a lone surrogate (from a \ud800 escape) is not valid UTF-8: Go writes U+FFFD
    return _ESCAPES.get(m.group(), "\ufffd")


def go_string(s: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape, s) + '"'


def go_float(x: float) -> str:
    """A float64 as Go's encoding/json writes it."""
    if x == 0:
        return "-0" if copysign(1.0, x) < 0 else "0"
    r = repr(x)
    if 1e-6 <= abs(x) < 1e21:
        return format(Decimal(r).normalize(), "f")
    return re.sub(r"e-0(\d)$", r"e-\1", r)


_ORDERED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_SURROGATE = re.compile("[\ud800-\udfff]")


def go_json_ordered(value: object) -> str:
    """Go JSON of strings, lists, null and dicts written in their own order (the caller
    sorts Go maps and orders structs): no numbers. Python's C encoder does the work; the
    few characters Go escapes differently are fixed after, and the rare strings where
    that is ambiguous (backspace, form feed, a backslash before b/f) take the exact path."""
    out = _ORDERED.encode(value)
    if "\\b" in out or "\\f" in out or (not out.isascii() and _SURROGATE.search(out)):
        return go_json(value, ordered=True)
    if "<" in out or ">" in out or "&" in out:
        out = out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if not out.isascii():
        out = out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return out


def go_json(value: object, ordered: bool = False) -> str:
    """Compact Go JSON of a decoded value: dicts are Go maps (sorted keys) unless ordered,
    GoStruct keeps its member order, numbers are float64."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return go_string(value)
    if isinstance(value, (int, float)):
        return go_float(float(value))
    if isinstance(value, GoStruct):
        return "{" + ",".join(f"{go_string(k)}:{go_json(v, ordered)}" for k, v in value) + "}"
    if isinstance(value, dict):
        keys = value if ordered else sorted(value)
        return "{" + ",".join(f"{go_string(k)}:{go_json(value[k], ordered)}" for k in keys) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v, ordered) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


# --------------------------------------------------------------------------------------
# Manifest structures (distribution's, which decide what the registry serves, and the
# OCI image-spec ones Harbor unmarshals into)

_ANNOTATIONS = MapOf(STR)
OCI_PLATFORM = Struct(architecture=STR, os=STR, os__version=STR, os__features=ListOf(STR),
                      variant=STR)
DOCKER_PLATFORM = Struct(architecture=STR, os=STR, os__version=STR, os__features=ListOf(STR),
                         variant=STR, features=ListOf(STR))
DESCRIPTOR = Struct(mediaType=STR, digest=STR, size=INT, urls=ListOf(STR),
                    annotations=_ANNOTATIONS, platform=OCI_PLATFORM)
LIST_ENTRY = Struct(mediaType=STR, digest=STR, size=INT, urls=ListOf(STR),
                    annotations=_ANNOTATIONS, platform=DOCKER_PLATFORM)

VERSIONED = Struct(schemaVersion=INT, mediaType=STR)
# What the registry unmarshals before serving (distribution's types)
REGISTRY_INDEX = Struct(schemaVersion=INT, mediaType=STR, manifests=ListOf(LIST_ENTRY),
                        annotations=_ANNOTATIONS)
SCHEMA1_MANIFEST = Struct(schemaVersion=INT, mediaType=STR, name=STR, tag=STR, architecture=STR,
                          fsLayers=ListOf(Struct(blobSum=STR)),
                          history=ListOf(Struct(v1Compatibility=STR)))
# What Harbor unmarshals (image-spec v1.Manifest / v1.Index)
OCI_IMAGE_MANIFEST = Struct(schemaVersion=INT, config=DESCRIPTOR, layers=ListOf(DESCRIPTOR),
                            annotations=_ANNOTATIONS)
OCI_IMAGE_INDEX = Struct(schemaVersion=INT, manifests=ListOf(DESCRIPTOR), annotations=_ANNOTATIONS)

_HISTORY = Struct(created=TIME, created_by=STR, author=STR, comment=STR, empty_layer=BOOL)
IMAGE_CONFIG = Struct(User=STR, ExposedPorts=MapOf(EMPTY), Env=ListOf(STR), Entrypoint=ListOf(STR),
                      Cmd=ListOf(STR), Volumes=MapOf(EMPTY), WorkingDir=STR, Labels=MapOf(STR),
                      StopSignal=STR)
IMAGE = Struct(created=TIME, author=STR, architecture=STR, os=STR, config=IMAGE_CONFIG,
               rootfs=Struct(type=STR, diff_ids=ListOf(STR)), history=ListOf(_HISTORY))

# The order of ImageConfig's members in Go (omitempty: empty ones are left out)
IMAGE_CONFIG_ORDER = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
                      "Labels", "StopSignal")


def classify(doc: object) -> str:
    """The content type the registry serves for this stored manifest (§3); Invalid when it
    cannot serve it. Schema1 and indexes are checked against the registry's own types here;
    an image manifest's registry type has the members of OCI_IMAGE_MANIFEST (plus the
    mediaType checked here), so decoding it as OCI_IMAGE_MANIFEST is the same check."""
    if not isinstance(doc, dict):
        raise Invalid("a manifest must be a JSON object")
    head = decode(doc, VERSIONED, "manifest-invalid")
    version, media_type = head.get("schemaVersion", 0), head.get("mediaType", "")
    if version == 1:
        decode(doc, SCHEMA1_MANIFEST, "manifest-invalid")
        return SCHEMA1
    if version != 2:
        raise Invalid(f"schemaVersion {version} is not 1 or 2")
    if not media_type:
        media_type = OCI_INDEX if doc.get("manifests") is not None else OCI_MANIFEST
    if media_type in INDEXES:
        decode(doc, REGISTRY_INDEX, "manifest-invalid")
    elif media_type not in IMAGE_MANIFESTS:
        raise Invalid(f"mediaType {media_type!r} is not a manifest type the registry serves")
    return media_type


def platform_text(platform: dict | None) -> str:
    """artifact_reference.platform: Go JSON of image-spec's Platform, or '' without one."""
    if platform is None:
        return ""
    members = [("architecture", platform.get("architecture", "")), ("os", platform.get("os", ""))]
    for key in ("os.version", "os.features", "variant"):
        if platform.get(key):
            members.append((key, platform[key]))
    return go_json(GoStruct(members))


# --------------------------------------------------------------------------------------
# Schema1: the registry serves a re-signed "pretty JWS"

_JWS_WS = b" \t\r\n"
# Lengths of libtrust's ECDSA P-256 signature parts (the values are random; only lengths matter)
_SIGNATURE_TEMPLATE = {
    "header": {"jwk": {"crv": "P-256", "kid": "K" * 59, "kty": "EC", "x": "X" * 43, "y": "Y" * 43},
               "alg": "ES256"},
    "signature": "S" * 86,
}
_SIGNING_TIME = "2006-01-02T15:04:05Z"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def schema1_served_length(stored: bytes) -> int:
    """Length of what the registry serves for a stored (unsigned) schema1 manifest: the
    payload re-signed with its start-up ECDSA key, formatted by libtrust."""
    body = stored.rstrip(_JWS_WS)
    close = len(body) - 1
    if close < 0 or body[close:] != b"}":
        raise Invalid("schema1 payload does not end with '}'")
    format_length = len(body[:close].rstrip(_JWS_WS))
    tail = stored[format_length:]
    indent = ""
    if len(stored) > 2 and stored[:2] == b"{\n":
        quote = stored.find(b'"', 1)
        if quote > 1:
            indent = stored[2:quote].decode("utf-8", errors="replace")
    protected = _b64(json.dumps({"formatLength": format_length, "formatTail": _b64(tail),
                                 "time": _SIGNING_TIME}, separators=(",", ":")).encode())
    signatures = [dict(_SIGNATURE_TEMPLATE, protected=protected)]
    if indent:
        pretty = json.dumps(signatures, indent=indent).replace("\n", "\n" + indent)
        suffix = f",\n{indent}\"signatures\": {pretty}\n}}"
    else:
        suffix = ',"signatures":' + json.dumps(signatures, separators=(",", ":")) + "}"
    return format_length + len(suffix.encode())
