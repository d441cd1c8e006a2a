"""The shape of a release step: everything the tool knows about one Harbor release's
database, declared in the release's own module.

- the upstream schema files it covers, each a list of named SQL statements applied in
  order inside the release's single transaction;
- the lint checks for rows that would make those files fail, and the repair probes
  that recognise the schema each file leaves;
- the harbor-db image of the release (the PostgreSQL major it runs) and the components
  the release removes.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..checks import Check
from ..probes import Probe


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
class HarborDb:
    """harbor-db of the release from patch ``since`` on: the PostgreSQL major it runs
    (9 = 9.6) and the major whose data folder its entrypoint upgrades (None: none)."""
    since: str
    major: int
    upgrades_from: int | None = None


@dataclass(frozen=True)
class Loss:
    """Rows a release drops by design: ``count`` is SQL (on the schema before the step)
    giving how many go; it runs only when ``table`` exists."""
    table: str
    what: str
    count: str


@dataclass(frozen=True)
class ReleaseStep:
    """A Harbor release line: the schema files it brings, in order (applied in one
    transaction), and what else the release declares about its database.

    ``markers[version]`` are the probes that hold once that file ran (data-only files
    have none). ``target``: the schema version ``--to <release>`` stops at when it is not
    the line's last file (2.4.0 ends at 70; 0071 came with 2.4.2 and is applied on the
    way to a later release). ``baseline``: the schema of a line whose files the tool
    never applies (1.10, the oldest start). ``losses``: data the release drops by design,
    counted before its files run. ``at_start``: what harbor-core of the release changes
    in the data at its start besides the SQL files, which the tool leaves to it.
    """
    release: str
    files: tuple[SchemaFile, ...]
    harbor_db: tuple[HarborDb, ...]
    checks: tuple[Check, ...] = ()
    markers: tuple[tuple[int, tuple[Probe, ...]], ...] = ()
    removes: tuple[str, ...] = ()
    losses: tuple[Loss, ...] = ()
    at_start: tuple[str, ...] = ()
    target: int | None = None
    baseline: int | None = None

    def __post_init__(self) -> None:
        known = set(self.schema_versions)
        stray = [v for v, _ in self.markers if v not in known]
        if stray or (self.target is not None and self.target not in known):
            raise ValueError(f"release step {self.release}: versions {stray or [self.target]} are not its files")

    @property
    def schema_versions(self) -> tuple[int, ...]:
        """Every schema version a database of this line may carry (one per patch level)."""
        return tuple(f.version for f in self.files) or ((self.baseline,) if self.baseline else ())

    @property
    def version(self) -> int:
        """The schema version a database has after ``--to <this release>``."""
        return self.target if self.target is not None else self.schema_versions[-1]

    def probes(self, version: int) -> tuple[Probe, ...]:
        return dict(self.markers).get(version, ())

    def files_after(self, schema_version: int, upto: int | None = None) -> tuple[SchemaFile, ...]:
        """The files still to apply to a database at schema_version (a patch level of
        the previous line, or an early patch level of this one), up to ``upto``."""
        return tuple(f for f in self.files
                     if f.version > schema_version and (upto is None or f.version <= upto))


def sql(what: str, text: str) -> Statement:
    return Statement(what, text.strip())
