"""Harbor's own way from one release to another: the installs its installers need, the
PostgreSQL majors the harbor-db image moves the data folder through, and the releases a
run of Harbor's installers cannot skip. harbor-upgrade does the same in one run; ``plan``
shows both side by side.

The window of each installer is Harbor's upgrade guide ("Upgrade Harbor and Migrate
Data"): up to 2.4 a release covers every start from 1.10 on; from 2.5 on a release covers
the two minor releases before it (2.6 covers 2.4 and 2.5, 2.8 covers 2.6 and 2.7 ...).
The releases and their harbor-db images come from the release modules (versions and
db/steps): adding a release adds its install here too. Everything here is pure.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .db.steps import step_of
from .versions import Version, path_between, release_line

#: up to this release Harbor's installers take every start the tool knows (1.10 on)
WIDE_WINDOW_UNTIL = "2.4.0"
#: from then on, an installer takes the releases this many minors back
WINDOW = 2


@dataclass(frozen=True)
class EngineMove:
    """The harbor-db image of ``release`` moves a PostgreSQL ``old`` data folder to ``new``
    (``refused``: it cannot: it starts an empty cluster instead, the old folder unused)."""
    release: str
    old: int
    new: int
    refused: bool = False

    def __str__(self) -> str:
        text = f"PostgreSQL {major_text(self.old)} → {major_text(self.new)} at {line_text(self.release)}"
        return text + (" (refused: harbor-db would start an empty cluster)" if self.refused else "")


@dataclass(frozen=True)
class Install:
    """One run of Harbor's installer (prepare, then harbor-core migrating at its start)."""
    release: str          # the release line ('2.6.0'): its newest patch is what one installs
    covers_from: str      # the oldest release line its upgrade guide covers
    engine: EngineMove | None = None


@dataclass(frozen=True)
class HarborPath:
    start: str
    target: str
    start_major: int | None
    installs: tuple[Install, ...] = ()
    #: releases a run of Harbor's installers must stop at: the next install covers nothing older
    stops: tuple[str, ...] = field(default=())

    @property
    def engine_moves(self) -> tuple[EngineMove, ...]:
        return tuple(i.engine for i in self.installs if i.engine)

    @property
    def releases(self) -> list[str]:
        return [self.start] + [i.release for i in self.installs]

    def to_dict(self) -> dict:
        return {"start": self.start, "target": self.target,
                "installs": [{"release": i.release, "covers_from": i.covers_from,
                              "engine": ({"old": i.engine.old, "new": i.engine.new, "refused": i.engine.refused}
                                         if i.engine else None)} for i in self.installs],
                "stops": list(self.stops), "path": " → ".join(line_text(r) for r in self.releases),
                "engine_moves": [str(m) for m in self.engine_moves]}


def major_text(major: int) -> str:
    return "9.6" if major == 9 else str(major)


def line_text(release: str) -> str:
    """'2.6.0' -> '2.6' (a line: one installs its newest patch)."""
    return release.rsplit(".", 1)[0]


def covers_from(release: str, releases: tuple[str, ...]) -> str:
    """The oldest release line the upgrade guide of ``release`` covers."""
    oldest_start = releases[1]    # releases[0] is 1.9.0, where the config chain starts
    if Version.parse(release) <= Version.parse(WIDE_WINDOW_UNTIL):
        return oldest_start
    i = releases.index(release)
    return releases[max(1, i - WINDOW)]


def harbor_db_major(release: str) -> int:
    """The PostgreSQL major of the newest harbor-db image of a release line."""
    return step_of(release).harbor_db[-1].major


def harbor_path(start: str, target: str, start_major: int | None = None,
                releases: tuple[str, ...] | None = None) -> HarborPath:
    """The installs Harbor's installers need from ``start`` (a version or line) to ``target``:
    each install goes to the newest release whose guide covers the current one. The engine
    moves follow the harbor-db image of each install (``start_major``: the data folder's
    major, default the start line's harbor-db)."""
    from . import versions
    releases = releases or versions.RELEASES
    current = release_line(start, releases=releases)
    goal = release_line(target, releases=releases)
    ahead = path_between(current, goal, releases)
    major = start_major if start_major is not None else harbor_db_major(current)
    installs: list[Install] = []
    while ahead:
        reachable = [r for r in ahead if Version.parse(covers_from(r, releases)) <= Version.parse(current)]
        if not reachable:   # cannot happen with a window of one release or more
            raise ValueError(f"no Harbor release after {current} covers it")
        nxt = reachable[-1]
        db = step_of(nxt).harbor_db[-1]
        move = None
        if db.major != major:
            move = EngineMove(nxt, major, db.major, refused=db.upgrades_from != major)
            major = db.major
        installs.append(Install(nxt, covers_from(nxt, releases), move))
        ahead = ahead[ahead.index(nxt) + 1:]
        current = nxt
    return HarborPath(release_line(start, releases=releases), goal, start_major, tuple(installs),
                      tuple(i.release for i in installs[:-1]))
