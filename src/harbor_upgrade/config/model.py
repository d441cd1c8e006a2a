"""A model of each Harbor release's harbor.yml, and a validator that reports every problem at once.

The model knows the types, the required keys and the allowed ranges of what Harbor
reads. Keys it does not know are the operator's own and are allowed (they are kept in
the file). Each problem names the key path and the line of the operator's file.

The model is not written here release by release: each config step module declares
what its release adds, removes and renames (``MODEL = Delta(...)``), and ``model_of``
folds those deltas up to the target. This module holds the vocabulary (value kinds,
shared specs) and the walk.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from ruamel.yaml.comments import CommentedMap

from ..errors import HarborUpgradeError
from ..versions import release_line
from .document import key_line


@dataclass(frozen=True)
class ConfigProblem:
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
        self.nullable, self.what = nullable, what
        self.pattern = re.compile(pattern) if pattern else None

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


class Number(Spec):
    """A whole or decimal number from ``low`` to ``high`` (both bounds given: Number(0, 1))."""

    def __init__(self, low: float, high: float, *, nullable: bool = False):
        self.low, self.high, self.nullable = low, high, nullable

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


class SequenceOf(Spec):
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


class Field(NamedTuple):
    spec: Spec
    required: bool = False
    assumed: object = None      # what Harbor's prepare takes when the key is left out (said as a warning)


class Section(Spec):
    """A mapping with known keys: {key: Field}. Unknown keys are allowed.

    ``empty``: what Harbor makes of the section left empty (``key:`` with every setting
    commented out, or ``{}``); such a section is then accepted, with that as a warning."""

    def __init__(self, fields: dict[str, Field], *, nullable: bool = False, rule=None, empty: str | None = None):
        self.fields, self.nullable, self.rule, self.empty = fields, nullable, rule, empty

    def check(self, value):
        return None if isinstance(value, dict) else f"must be a mapping of settings, not {_kind(value)}"


def F(spec: Spec, required: bool = False, *, assumed: object = None) -> Field:
    return Field(spec, required, assumed)


PORT = Int(1, 65535, "a port number")
POOL = Int(0, None, "a connection count")
PATH = Text(pattern=r"/.*", what="an absolute path")
DURATION_PATTERN = r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+"
DURATION = Text(pattern=DURATION_PATTERN, what="a duration like 5m0s")
SIZE = Text(pattern=r"\d+[kKmMgG]?", what="a size like 200M")
STORAGE_DRIVERS = ("filesystem", "s3", "azure", "gcs", "swift", "oss")
PROXY_COMPONENTS = ("core", "jobservice", "trivy")
DB_TARGET = {
    "host": F(Text(), True), "port": F(PORT, True), "db_name": F(Text(), True),
    "username": F(Text(), True), "password": F(Text(nullable=True)),
    "ssl_mode": F(OneOf("disable", "require", "verify-ca", "verify-full"), True),
}


def storage_rule(value: dict) -> list[tuple[tuple, str]]:
    drivers = [k for k in value if k not in ("ca_bundle", "redirect")]
    unknown = [k for k in drivers if k not in STORAGE_DRIVERS]
    problems: list[tuple[tuple, str]] = [
        ((k,), f"unknown storage driver (Harbor knows {', '.join(STORAGE_DRIVERS)})") for k in unknown]
    known = [k for k in drivers if k in STORAGE_DRIVERS]
    if len(known) > 1:
        problems.append(((), f"names {len(known)} storage drivers ({', '.join(known)}); the registry uses exactly one"))
    for k in known:
        if value[k] is not None and not isinstance(value[k], dict):
            problems.append(((k,), f"must be a mapping of driver options, not {_kind(value[k])}"))
    return problems


def trace_rule(value: dict) -> list[tuple[tuple, str]]:
    if value.get("enabled") is True and isinstance(value.get("jaeger"), dict) and isinstance(value.get("otel"), dict):
        return [((), "enables both jaeger and otel; Harbor can use only one trace provider")]
    return []


# ---------------------------------------------------------------------------
# What each release changes in the model. A release's config step module declares its
# ``MODEL``: a Delta of key paths it adds (or redefines), removes and renames. The model
# of a target is every delta up to it, applied in order to an empty model.

Path = tuple[str, ...]


@dataclass(frozen=True)
class Delta:
    add: dict[Path, Field] = field(default_factory=dict)
    remove: tuple[Path, ...] = ()
    rename: dict[Path, str] = field(default_factory=dict)


def _edit(section: Section, path: Path, change) -> Section:
    """A copy of ``section`` with ``change(fields, key)`` applied at ``path``."""
    fields = dict(section.fields)
    key = path[0]
    if len(path) == 1:
        change(fields, key)
    else:
        sub = fields[key].spec
        if not isinstance(sub, Section):  # was an AttributeError on .fields: a delta path through a non-section
            raise TypeError(f"model path {'.'.join(path)}: {key} is not a section")
        fields[key] = fields[key]._replace(spec=_edit(sub, path[1:], change))
    return Section(fields, nullable=section.nullable, rule=section.rule, empty=section.empty)


def apply_delta(model: Section, delta: Delta) -> Section:
    for path in delta.remove:
        model = _edit(model, path, lambda fields, key: fields.pop(key))
    for path, new in delta.rename.items():
        def rename(fields, key, new=new):
            fields[new] = fields.pop(key)
        model = _edit(model, path, rename)
    for path, spec in delta.add.items():
        def put(fields, key, spec=spec):
            fields[key] = spec
        model = _edit(model, path, put)
    return model


@functools.cache
def model_of(target: str) -> Section:
    """The model of Harbor ``target``'s harbor.yml, built from the release modules."""
    from .steps import CHAIN  # the step modules declare the deltas
    model = Section({})
    for module in CHAIN:
        model = apply_delta(model, module.MODEL)
        if module.VERSION == target:
            return model
    raise ValueError(f"no config release {target}")


def _walk(spec: Spec, value: object, path: tuple, line: int | None, out: list[ConfigProblem],
          notes: list[str]) -> None:
    if isinstance(spec, Section) and spec.empty and (value is None or value == {}):
        notes.append(f"{'.'.join(map(str, path))}: {spec.empty}")
        return
    if value is None:
        if not spec.nullable:
            out.append(ConfigProblem(path, line, "is empty; give it a value or remove the key"))
        return
    message = spec.check(value)
    if message:
        out.append(ConfigProblem(path, line, message))
        return
    # spec.check passed: a SequenceOf's value is a list, a Section's a dict (the isinstance tells mypy)
    if isinstance(spec, SequenceOf) and isinstance(value, list):
        for i, item in enumerate(value):
            _walk(spec.item, item, path + (i,), key_line(value, i) or line, out, notes)
    elif isinstance(spec, Section) and isinstance(value, dict):
        for key, (sub, required, assumed) in spec.fields.items():
            if key in value:
                _walk(sub, value[key], path + (key,), key_line(value, key) or line, out, notes)
            elif required:
                out.append(ConfigProblem(path + (key,), line, "is required but missing"))
            elif assumed is not None:
                notes.append(f"{'.'.join(map(str, path + (key,)))}: not set; Harbor takes {assumed}")
        if spec.rule:
            for sub_path, message in spec.rule(value):
                sub_line = key_line(value, sub_path[0]) if sub_path else None
                out.append(ConfigProblem(path + sub_path, sub_line or line, message))


def check(data: CommentedMap, target: str) -> tuple[list[ConfigProblem], list[str]]:
    """(every problem, every assumption) of a harbor.yml for Harbor ``target``."""
    out: list[ConfigProblem] = []
    notes: list[str] = []
    _walk(model_of(target), data, (), None, out, notes)
    if isinstance(data, dict) and data.get("_version") is not None and _line_of(data["_version"]) != target:
        out.append(ConfigProblem(("_version",), key_line(data, "_version"),
                                 f"must be {target}, not {data['_version']!r}"))
    return out, notes


def validate(data: CommentedMap, target: str) -> list[ConfigProblem]:
    """Every problem of a harbor.yml for Harbor ``target``."""
    return check(data, target)[0]


def _line_of(version: object) -> str | None:
    from .steps import RELEASES
    try:
        return release_line(version, releases=RELEASES)
    except HarborUpgradeError:
        return None


def assumptions(data: CommentedMap, target: str) -> list[str]:
    """What Harbor's own prepare assumes for settings this file leaves out (said as warnings)."""
    return check(data, target)[1]
