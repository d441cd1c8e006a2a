"""Harbor releases, their order, and the database schema version each one ends at.

Nothing here is maintained by hand: a release is one config step module
(``config/steps/vX_Y_Z.py``, exporting ``VERSION``) and one database step module
(``db/steps/vX_Y_Z.py``, exporting ``STEP``), and the tables below are derived from
them the first time they are read. Patch releases (1.10.3, 2.1.1 ...) belong to the
line of their minor release, named by its ``.0`` version.

- ``TARGET``: the newest release both chains know (the default of every command);
- ``RELEASES``: the chain of the whole upgrade, oldest first, up to TARGET (1.9.0 is where
  the config chain starts: the oldest ``_version`` it reads). A config step may exist
  beyond it while its database step is being written; a database step never lacks a
  config step (tests/unit/test_versions.py);
- ``SCHEMA_VERSION[line]``: the schema version ``--to <line>`` reaches;
- ``SCHEMA_VERSIONS_OF_LINE[line]``: every version a real database of that line may carry;
- ``HARBOR_DB_MAJOR[line]``: the PostgreSQL major of the line's newest harbor-db image (9 = 9.6);
- ``REMOVED_COMPONENTS[line]``: the components the line no longer has.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from .errors import UnsupportedVersion

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_DERIVED = ("RELEASES", "TARGET", "SCHEMA_VERSION", "SCHEMA_VERSIONS_OF_LINE", "HARBOR_DB_MAJOR",
            "REMOVED_COMPONENTS", "CONFIG_RELEASES", "DB_RELEASES")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: object, *, where: str = "") -> Version:
        """Parse 'X.Y.Z'; anything else (floats, 'v2.3.0', '2.3') is refused with a clear error."""
        if not isinstance(text, str):
            raise UnsupportedVersion(
                f"{where}version {text!r} is not a string like '2.3.0'"
                + (" (quote it: YAML read it as a number)" if isinstance(text, (int, float)) else ""),
            )
        m = _VERSION_RE.match(text.strip())
        if not m:
            hint = " (drop the leading 'v')" if text.strip().lower().startswith("v") else ""
            raise UnsupportedVersion(f"{where}version {text!r} is not of the form X.Y.Z{hint}")
        return cls(*(int(g) for g in m.groups()))

    @property
    def line(self) -> str:
        """The release line this version belongs to, as a RELEASES entry ('2.1.1' -> '2.1.0')."""
        return f"{self.major}.{self.minor}.0"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@cache
def _derived() -> dict[str, Any]:
    # Imported here: the step packages' own modules import this one.
    from .config.steps import RELEASES as CONFIG_RELEASES
    from .db.steps import STEPS as DB_STEPS

    config = tuple(CONFIG_RELEASES)
    db = tuple(s.release for s in DB_STEPS)
    target = max((r for r in db if r in config), key=Version.parse)
    return {
        "RELEASES": tuple(r for r in config if Version.parse(r) <= Version.parse(target)),
        "TARGET": target,
        "SCHEMA_VERSION": {s.release: s.version for s in DB_STEPS},
        "SCHEMA_VERSIONS_OF_LINE": {s.release: s.schema_versions for s in DB_STEPS},
        "HARBOR_DB_MAJOR": {s.release: s.harbor_db[-1].major for s in DB_STEPS},
        "REMOVED_COMPONENTS": {s.release: s.removes for s in DB_STEPS if s.removes},
        "CONFIG_RELEASES": config,
        "DB_RELEASES": db,
    }


def __getattr__(name: str) -> Any:
    """The derived tables (PEP 562), computed from the step modules on first use."""
    if name in _DERIVED:
        return _derived()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def release_line(text: object, *, where: str = "", releases: tuple[str, ...] | None = None) -> str:
    """The known release line of a version string, or an UnsupportedVersion error.
    ``releases``: the chain to look in (default RELEASES; the config migration knows its own)."""
    v = Version.parse(text, where=where)
    releases = releases or _derived()["RELEASES"]
    if v.line not in releases:
        if v < Version.parse(releases[0]):
            raise UnsupportedVersion(
                f"{where}version {v} is older than {releases[0]}",
                hint="upgrade Harbor to 1.10 first with Harbor's own tools, then run harbor-upgrade",
            )
        if v < Version.parse(releases[-1]):
            raise UnsupportedVersion(f"{where}version {v} is not a Harbor release (known lines: "
                                     + ", ".join(r[:-2] + ".x" for r in releases) + ")")
        raise UnsupportedVersion(f"{where}version {v} is newer than {releases[-1]}, the newest this tool knows")
    return v.line


def path_between(start: str, target: str, releases: tuple[str, ...] | None = None) -> list[str]:
    """The release steps from start (exclusive) to target (inclusive), both ``releases`` entries."""
    releases = releases or _derived()["RELEASES"]
    i, j = releases.index(start), releases.index(target)
    if j < i:
        raise UnsupportedVersion(f"cannot go down from {start} to {target}: harbor-upgrade only upgrades",
                                 hint="to go back, restore the backup taken before the upgrade "
                                      "(harbor-upgrade rollback)")
    return list(releases[i + 1:j + 1])


def release_of_schema(schema_version: int) -> str | None:
    """The release line whose database ends at (or passes through) this schema version."""
    for release, versions in _derived()["SCHEMA_VERSIONS_OF_LINE"].items():
        if schema_version in versions:
            return release
    return None
