"""The shape of a release step: the upstream schema files it covers, each a list of
named SQL statements applied in order inside the release's single transaction."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    """One SQL statement; ``what`` is the operator's description shown by --dry-run."""
    what: str
    sql: str


@dataclass(frozen=True)
class SchemaFile:
    """What one upstream migration file (golang-migrate version) changes."""
    version: int
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class ReleaseStep:
    """A Harbor release: the schema files it brings, in order. Applied in one transaction."""
    release: str
    files: tuple[SchemaFile, ...]

    @property
    def version(self) -> int:
        """The schema version a database has after this release step."""
        return self.files[-1].version

    def files_after(self, schema_version: int) -> tuple[SchemaFile, ...]:
        """The files still to apply to a database at schema_version (a patch level of
        the previous line, or an early patch level of this one)."""
        return tuple(f for f in self.files if f.version > schema_version)


def sql(what: str, text: str) -> Statement:
    return Statement(what, text.strip())
