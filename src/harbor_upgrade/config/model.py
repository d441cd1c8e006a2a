"""A model of Harbor 2.4.0's harbor.yml, and a validator that reports every problem at once.

The model knows the types, the required keys and the allowed ranges of what Harbor
2.4.0 reads. Keys it does not know are the operator's own and are allowed (they are
kept in the file). Each problem names the key path and the line of the operator's file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ruamel.yaml.comments import CommentedMap

from ..errors import HarborUpgradeError
from ..versions import RELEASES, release_line
from .document import key_line


@dataclass(frozen=True)
class Problem:
    path: tuple
    line: int | None
    message: str

    def render(self) -> str:
        key = ".".join(str(p) for p in self.path) or "(top level)"
        return f"line {self.line}: {key}: {self.message}" if self.line else f"{key}: {self.message}"


# ---------------------------------------------------------------------------
# Value kinds. Each returns an error message, or None when the value fits.

def _kind(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    return f"a {type(value).__name__}"


class Spec:
    nullable = False

    def check(self, value: object) -> str | None:
        raise NotImplementedError


class Text(Spec):
    """Text; numbers are accepted (an unquoted all-digit password is still a password)."""

    def __init__(self, *, nullable: bool = False, pattern: str | None = None, what: str = ""):
        self.nullable, self.pattern, self.what = nullable, pattern and re.compile(pattern), what

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return f"must be text, not {_kind(value)}" + (" (quote it)" if isinstance(value, bool) else "")
        if isinstance(value, str) and not self.nullable and not value.strip():
            return "must not be empty"
        if self.pattern and not self.pattern.fullmatch(str(value)):
            return f"must be {self.what}, not {value!r}"
        return None


class Int(Spec):
    def __init__(self, low: int | None = None, high: int | None = None, what: str = "a whole number",
                 *, nullable: bool = False):
        self.low, self.high, self.what, self.nullable = low, high, what, nullable

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be {self.what}, not {_kind(value)}" + (f" ({value!r})" if isinstance(value, str) else "")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            rng = f"from {self.low} to {self.high}" if self.high is not None else f"at least {self.low}"
            return f"must be {rng}, not {value}"
        return None


class Number(Int):
    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, not {_kind(value)}"
        if not (self.low <= value <= self.high):
            return f"must be from {self.low} to {self.high}, not {value}"
        return None


# Harbor reads harbor.yml as YAML 1.1, where these words are booleans too.
YAML11_BOOLS = {w for word in ("yes", "no", "on", "off", "y", "n") for w in (word, word.capitalize(), word.upper())}


class Bool(Spec):
    def __init__(self, *, nullable: bool = False):
        self.nullable = nullable

    def check(self, value):
        if isinstance(value, bool) or (isinstance(value, str) and value in YAML11_BOOLS):
            return None
        return f"must be true or false, not {_kind(value)}"


class OneOf(Spec):
    def __init__(self, *choices: str, nullable: bool = False):
        self.choices, self.nullable = choices, nullable

    def check(self, value):
        if value not in self.choices or isinstance(value, bool):
            return f"must be one of {', '.join(self.choices)}, not {value!r}"
        return None


class ListOf(Spec):
    def __init__(self, item: Spec, *, nullable: bool = False):
        self.item, self.nullable = item, nullable

    def check(self, value):
        return None if isinstance(value, list) else f"must be a list, not {_kind(value)}"


class ScalarMap(Spec):
    def check(self, value):
        if not isinstance(value, dict):
            return f"must be a mapping, not {_kind(value)}"
        bad = [k for k, v in value.items() if isinstance(v, (dict, list))]
        return f"values must be plain, not nested (see {bad[0]})" if bad else None


class Section(Spec):
    """A mapping with known keys: {key: (spec, required)}. Unknown keys are allowed."""

    def __init__(self, fields: dict[str, tuple[Spec, bool]], *, nullable: bool = False, rule=None):
        self.fields, self.nullable, self.rule = fields, nullable, rule

    def check(self, value):
        return None if isinstance(value, dict) else f"must be a mapping of settings, not {_kind(value)}"


def F(spec: Spec, required: bool = False) -> tuple[Spec, bool]:
    return spec, required


PORT = Int(1, 65535, "a port number")
POOL = Int(0, None, "a connection count")
PATH = Text(pattern=r"/.*", what="an absolute path")
DURATION = Text(pattern=r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", what="a duration like 5m0s")
SIZE = Text(pattern=r"\d+[kKmMgG]?", what="a size like 200M")
STORAGE_DRIVERS = ("filesystem", "s3", "azure", "gcs", "swift", "oss")
PROXY_COMPONENTS = ("core", "jobservice", "trivy")
DB_TARGET = {
    "host": F(Text(), True), "port": F(PORT, True), "db_name": F(Text(), True),
    "username": F(Text(), True), "password": F(Text(nullable=True)),
    "ssl_mode": F(OneOf("disable", "require", "verify-ca", "verify-full"), True),
}


def _storage_rule(value: dict) -> list[tuple[tuple, str]]:
    drivers = [k for k in value if k not in ("ca_bundle", "redirect")]
    unknown = [k for k in drivers if k not in STORAGE_DRIVERS]
    problems = [((k,), f"unknown storage driver (Harbor knows {', '.join(STORAGE_DRIVERS)})") for k in unknown]
    known = [k for k in drivers if k in STORAGE_DRIVERS]
    if len(known) > 1:
        problems.append(((), f"names {len(known)} storage drivers ({', '.join(known)}); the registry uses exactly one"))
    for k in known:
        if value[k] is not None and not isinstance(value[k], dict):
            problems.append(((k,), f"must be a mapping of driver options, not {_kind(value[k])}"))
    return problems


def _trace_rule(value: dict) -> list[tuple[tuple, str]]:
    if value.get("enabled") is True and isinstance(value.get("jaeger"), dict) and isinstance(value.get("otel"), dict):
        return [((), "enables both jaeger and otel; Harbor can use only one trace provider")]
    return []


MODEL_2_4 = Section({
    "hostname": F(Text(), True),
    "http": F(Section({"port": F(PORT, True)})),
    "https": F(Section({"port": F(PORT, True), "certificate": F(Text(), True), "private_key": F(Text(), True)})),
    "internal_tls": F(Section({"enabled": F(Bool(), True), "dir": F(Text())})),
    "external_url": F(Text(nullable=True, pattern=r"https?://\S+", what="a URL like https://reg.example.com")),
    "harbor_admin_password": F(Text(), True),
    "database": F(Section({"password": F(Text(), True), "max_idle_conns": F(POOL), "max_open_conns": F(POOL)}), True),
    "data_volume": F(PATH, True),
    "storage_service": F(Section({
        "ca_bundle": F(Text(nullable=True)),
        "redirect": F(Section({"disabled": F(Bool(), True)})),
    }, rule=_storage_rule)),
    "trivy": F(Section({
        "ignore_unfixed": F(Bool()), "skip_update": F(Bool()), "insecure": F(Bool()),
        "github_token": F(Text(nullable=True)), "timeout": F(DURATION),
    })),
    "jobservice": F(Section({"max_job_workers": F(Int(1, 10000), True)}), True),
    "notification": F(Section({"webhook_job_max_retry": F(Int(0, None), True)}), True),
    "chart": F(Section({"absolute_url": F(OneOf("enabled", "disabled"), True)}), True),
    "log": F(Section({
        "level": F(OneOf("debug", "info", "warning", "error", "fatal"), True),
        "local": F(Section({"rotate_count": F(Int(0, None), True), "rotate_size": F(SIZE, True),
                            "location": F(PATH, True)}), True),
        "external_endpoint": F(Section({"protocol": F(OneOf("tcp", "udp"), True), "host": F(Text(), True),
                                        "port": F(PORT, True)})),
    }), True),
    "_version": F(Text(), True),
    "external_database": F(Section({
        "harbor": F(Section({**DB_TARGET, "max_idle_conns": F(POOL), "max_open_conns": F(POOL)}), True),
        "notary_signer": F(Section(DB_TARGET)),
        "notary_server": F(Section(DB_TARGET)),
    })),
    "external_redis": F(Section({
        "host": F(Text(pattern=r"[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*", what="host:port (Sentinel: h1:p1,h2:p2)"), True),
        "password": F(Text(nullable=True)),
        "sentinel_master_set": F(Text(nullable=True)),
        "registry_db_index": F(Int(0, None), True), "jobservice_db_index": F(Int(0, None), True),
        "chartmuseum_db_index": F(Int(0, None), True), "trivy_db_index": F(Int(0, None)),
        "idle_timeout_seconds": F(Int(0, None)),
    })),
    "uaa": F(Section({"ca_file": F(Text(), True)})),
    "proxy": F(Section({
        "http_proxy": F(Text(nullable=True)), "https_proxy": F(Text(nullable=True)),
        "no_proxy": F(Text(nullable=True)),
        "components": F(ListOf(OneOf(*PROXY_COMPONENTS), nullable=True)),
    })),
    "metric": F(Section({"enabled": F(Bool(), True), "port": F(PORT, True), "path": F(PATH, True)})),
    "trace": F(Section({
        "enabled": F(Bool(), True), "sample_rate": F(Number(0, 1), True), "namespace": F(Text(nullable=True)),
        "attributes": F(ScalarMap()),
        "jaeger": F(Section({"endpoint": F(Text(nullable=True)), "username": F(Text(nullable=True)),
                             "password": F(Text(nullable=True)), "agent_host": F(Text(nullable=True)),
                             "agent_port": F(Int(1, 65535, "a port number", nullable=True))}, nullable=True)),
        "otel": F(Section({"endpoint": F(Text(nullable=True)), "url_path": F(Text(nullable=True)),
                           "compression": F(Bool(nullable=True)), "insecure": F(Bool(nullable=True)),
                           "timeout": F(Text(nullable=True, pattern=DURATION.pattern.pattern, what=DURATION.what))},
                          nullable=True)),
    }, rule=_trace_rule)),
})


def _walk(spec: Spec, value: object, path: tuple, line: int | None, out: list[Problem]) -> None:
    if value is None:
        if not spec.nullable:
            out.append(Problem(path, line, "is empty; give it a value or remove the key"))
        return
    message = spec.check(value)
    if message:
        out.append(Problem(path, line, message))
        return
    if isinstance(spec, ListOf):
        for i, item in enumerate(value):
            _walk(spec.item, item, path + (i,), key_line(value, i) or line, out)
    elif isinstance(spec, Section):
        for key, (sub, required) in spec.fields.items():
            if key in value:
                _walk(sub, value[key], path + (key,), key_line(value, key) or line, out)
            elif required:
                out.append(Problem(path + (key,), line, "is required but missing"))
        if spec.rule:
            for sub_path, message in spec.rule(value):
                sub_line = key_line(value, sub_path[0]) if sub_path else None
                out.append(Problem(path + sub_path, sub_line or line, message))


def validate(data: CommentedMap, target: str = "2.4.0") -> list[Problem]:
    """Every problem of a harbor.yml for Harbor 2.4.0 (for earlier targets: the same checks,
    with Clair still allowed in the proxy components)."""
    out: list[Problem] = []
    spec = MODEL_2_4 if target == "2.4.0" else _relaxed(target)
    _walk(spec, data, (), None, out)
    if isinstance(data, dict) and data.get("_version") is not None and _line_of(data["_version"]) != target:
        out.append(Problem(("_version",), key_line(data, "_version"), f"must be {target}, not {data['_version']!r}"))
    return out


def _line_of(version: object) -> str | None:
    try:
        return release_line(version)
    except HarborUpgradeError:
        return None


def _relaxed(target: str) -> Section:
    """The same model for an earlier target, with what that release still had: Clair as a
    proxy component (before 2.2), external Redis as separate host and port (before 2.1)."""
    top = dict(MODEL_2_4.fields)
    if RELEASES.index(target) < RELEASES.index("2.2.0"):
        proxy = MODEL_2_4.fields["proxy"][0]
        top["proxy"] = F(Section({**proxy.fields,
                                  "components": F(ListOf(OneOf(*PROXY_COMPONENTS, "clair"), nullable=True))}))
    if RELEASES.index(target) < RELEASES.index("2.1.0"):
        redis = MODEL_2_4.fields["external_redis"][0]
        top["external_redis"] = F(Section({**redis.fields, "host": F(Text(), True), "port": F(PORT)}))
    return Section(top)
