"""Harbor releases, their order, and the database schema version each one ends at.

The chain an upgrade walks is 1.9.0 -> 1.10.0 -> 2.0.0 -> 2.1.0 -> 2.2.0 -> 2.3.0 -> 2.4.0.
Patch releases (1.10.3, 2.1.1 ...) belong to the line of their minor release.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import UnsupportedVersion

RELEASES: tuple[str, ...] = ("1.9.0", "1.10.0", "2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0")
TARGET = "2.4.0"

# Schema version (golang-migrate file number) at the last patch of each release line,
# and every version a real database of that line may carry (early patches are lower).
SCHEMA_VERSION: dict[str, int] = {
    "1.10.0": 15, "2.0.0": 31, "2.1.0": 41, "2.2.0": 53, "2.3.0": 61, "2.4.0": 70,
}
SCHEMA_VERSIONS_OF_LINE: dict[str, tuple[int, ...]] = {
    "1.10.0": (15,), "2.0.0": (30, 31), "2.1.0": (40, 41), "2.2.0": (50, 51, 52, 53),
    "2.3.0": (60, 61), "2.4.0": (70,),
}

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: object, *, where: str = "") -> "Version":
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


def release_line(text: object, *, where: str = "", releases: tuple[str, ...] = RELEASES) -> str:
    """The known release line of a version string, or an UnsupportedVersion error.
    ``releases``: the chain to look in (the config migration knows its own)."""
    v = Version.parse(text, where=where)
    target = releases[-1]
    if v.line not in releases:
        if v < Version(1, 9, 0):
            raise UnsupportedVersion(
                f"{where}version {v} is older than 1.9.0",
                hint="upgrade Harbor to 1.10 first with Harbor's own tools, then run harbor-upgrade",
            )
        if v < Version.parse(target):
            raise UnsupportedVersion(f"{where}version {v} is not a Harbor release (known lines: "
                                     + ", ".join(r[:-2] + ".x" for r in releases) + ")")
        raise UnsupportedVersion(f"{where}version {v} is newer than {target}, the newest this tool knows")
    return v.line


def path_between(start: str, target: str, releases: tuple[str, ...] = RELEASES) -> list[str]:
    """The release steps from start (exclusive) to target (inclusive), both ``releases`` entries."""
    i, j = releases.index(start), releases.index(target)
    if j < i:
        raise UnsupportedVersion(f"cannot go down from {start} to {target}: harbor-upgrade only upgrades",
                                 hint="to go back, restore the backup taken before the upgrade (harbor-upgrade rollback)")
    return list(releases[i + 1:j + 1])


def release_of_schema(schema_version: int) -> str | None:
    """The release line whose database ends at (or passes through) this schema version."""
    for release, versions in SCHEMA_VERSIONS_OF_LINE.items():
        if schema_version in versions:
            return release
    return None
