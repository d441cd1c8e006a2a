"""Check an upgraded database against its target release: counts before and after, and the
invariants that broke real upgrades.

Counts: projects, repositories, artifacts, tags, labels, members, robots, policies and
schedules, after the upgrade, next to the same counts from the backup's manifest (taken
before), each with the relation the upgrade must keep. Invariants: every tag points to an
artifact; no artifact with a negative or dangling repository id (issue 12827) or an
UNKNOWN media type; every artifact's manifest is in registry storage. Of the target release
(from its database step module): the schema version, and the schema objects its files leave
(the markers ``db repair`` recognises a version by); from 2.9 on, whose harbor-core no longer
fills artifact metadata at its start, the 2.0 artifact data version. An artifact whose
manifest was already missing before the upgrade (the run records them) is reported as a
warning, not charged to the upgrade.
"""
from __future__ import annotations

import json
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .db.connection import one
from .results import FAIL, PASS, WARN, CheckResult
from .versions import SCHEMA_VERSION, TARGET, Version

#: the last release whose harbor-core fills the artifact metadata of a pre-2.0 database at its
#: start (2.9 removed that legacy migration): past it, the data version must be 30 after the run
CORE_FILLS_ARTIFACTS_UNTIL = "2.8.0"

# what -> (SQL on every 2.x schema, tables of the old schema whose row counts sum to "before", rule)
# Rules: equal | not-fewer | not-more | shown (the upgrade legitimately reshapes these rows).
COUNTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "projects": ("SELECT count(*) FROM project", ("project",), "equal"),
    # 0031 adds the repositories of orphan artifacts; nothing removes any
    "repositories": ("SELECT count(*) FROM repository", ("repository",), "not-fewer"),
    # 1.10 kept one row per tag; 2.x one per (repository, digest), and storage adds untagged ones
    "artifacts": ("SELECT count(*) FROM artifact", ("artifact",), "shown"),
    "tags": ("SELECT count(*) FROM tag", ("tag",), "not-fewer"),
    "labels": ("SELECT count(*) FROM harbor_label", ("harbor_label",), "equal"),
    # 0070 drops memberships of deleted users
    "members": ("SELECT count(*) FROM project_member", ("project_member",), "not-more"),
    "robots": ("SELECT count(*) FROM robot", ("robot",), "equal"),
    "policies": ("SELECT (SELECT count(*) FROM replication_policy) + (SELECT count(*) FROM retention_policy)"
                 " + (SELECT count(*) FROM notification_policy) + (SELECT count(*) FROM immutable_tag_rule)",
                 ("replication_policy", "retention_policy", "notification_policy", "immutable_tag_rule"), "equal"),
    # 1.10 kept schedules in admin_job / replication_schedule_job; 2.2 moved them to schedule
    "schedules": ("SELECT count(*) FROM schedule", ("schedule",), "shown"),
}

INVARIANTS: dict[str, tuple[str, str]] = {
    "tags point to artifacts": (
        "SELECT t.repository_id || ':' || t.name FROM tag t LEFT JOIN artifact a ON a.id = t.artifact_id "
        "WHERE a.id IS NULL ORDER BY t.id",
        "tags whose artifact row is gone (pulls by tag would fail)"),
    "artifact repository ids": (
        "SELECT a.repository_name || '@' || a.digest || ' (repository_id ' || a.repository_id || ')' "
        "FROM artifact a LEFT JOIN repository r ON r.repository_id = a.repository_id "
        "WHERE a.repository_id <= 0 OR r.repository_id IS NULL ORDER BY a.id",
        "artifacts with a negative or dangling repository id (issue 12827: 404 on pull)"),
}

UNKNOWN_SQL = ("SELECT a.repository_name, a.digest FROM artifact a "
               "WHERE a.media_type = 'UNKNOWN' OR a.manifest_media_type = 'UNKNOWN' ORDER BY a.id")
ARTIFACTS_SQL = "SELECT repository_name, digest FROM artifact ORDER BY repository_name, digest"


@dataclass
class CountRow:
    name: str
    before: int | None
    after: int
    rule: str
    ok: bool

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class VerifyResult:
    counts: list[CountRow] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.counts) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return ([f"{c.name}: {c.before} before, {c.after} after ({c.rule})" for c in self.counts if not c.ok]
                + [f"{c.name}: {c.detail}" for c in self.checks if not c.ok])

    def to_dict(self) -> dict:
        return {"ok": self.ok, "counts": [c.to_dict() for c in self.counts],
                "checks": [c.to_dict() for c in self.checks]}


def rule_holds(rule: str, before: int | None, after: int) -> bool:
    if before is None or rule == "shown":
        return True
    return {"equal": after == before, "not-fewer": after >= before, "not-more": after <= before}[rule]


def before_counts(table_counts: dict[str, int]) -> dict[str, int | None]:
    """The 'before' side of each count from a backup manifest's per-table row counts.
    A 1.10 database has no tag table: each of its artifact rows is one tag."""
    out: dict[str, int | None] = {}
    for name, (_sql, tables, _rule) in COUNTS.items():
        present = [t for t in tables if t in table_counts]
        out[name] = sum(int(table_counts[t]) for t in present) if present else None
    if "tag" not in table_counts and "artifact" in table_counts:
        out["tags"] = int(table_counts["artifact"])  # 1.10 kept one artifact row per tag
    return out


def rule_of(name: str, table_counts: dict[str, int]) -> str:
    """The rule of a count; from 1.10 the tags are only shown (2.0.3 drops duplicate tag names)."""
    if name == "tags" and "tag" not in table_counts:
        return "shown"
    return COUNTS[name][2]


def manifest_paths(repository: str, digest: str) -> tuple[str, str]:
    """The revision link and the blob data a manifest needs to be served (distribution layout)."""
    algo, _, hexd = digest.partition(":")
    return (f"repositories/{repository}/_manifests/revisions/{algo}/{hexd}/link",
            f"blobs/{algo}/{hexd[:2]}/{hexd}/data")


def manifest_missing(storage, repository: str, digest: str) -> bool:
    link, data = manifest_paths(repository, digest)
    return not (storage.exists(link) and storage.exists(data))


def missing_manifests(storage, pairs: Iterable[tuple[str, str]], threads: int = 4) -> list[tuple[str, str]]:
    """The (repository, digest) pairs whose manifest is not served (``manifest_missing`` of each,
    through the storage's ``exists_many``), in their order. On a filesystem, many pairs are cut into
    runs of neighbours (a repository's pairs together) checked on threads: the time goes to system
    calls, which run beside each other."""
    pairs = list(pairs)
    if storage.batch_listing or threads <= 1 or len(pairs) < CHECK_RUN * 2:
        return _missing_in(storage, pairs)
    runs = [pairs[i:i + CHECK_RUN] for i in range(0, len(pairs), CHECK_RUN)]
    with ThreadPoolExecutor(threads, thread_name_prefix="verify-storage") as pool:
        return [p for missing in pool.map(lambda run: _missing_in(storage, run), runs) for p in missing]


CHECK_RUN = 8192   # pairs a thread of missing_manifests checks at a time


def _missing_in(storage, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    linked = [p for p, ok in zip(pairs, storage.exists_many(manifest_paths(*p)[0] for p in pairs), strict=True)
              if ok]
    served = {p for p, ok in zip(linked, storage.exists_many(manifest_paths(*p)[1] for p in linked), strict=True)
              if ok}
    return [p for p in pairs if p not in served]


class ServedPairs:
    """The (repository, digest) pairs a storage check found served, as sorted 64-bit keys (2.3 MB
    for 288,000 pairs, where the tuples would take about 70 MB): membership by bisection. A key is
    Python's hash of the pair, fixed within one process only, so a ``ServedPairs`` means something
    in the process that made it and is never written down (a resumed run checks every pair). Two
    pairs share a key with odds of about one in 10^9 for hundreds of thousands of pairs."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._keys = array("q", sorted({hash(p) for p in pairs}))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, pair: tuple[str, str]) -> bool:
        key = hash(pair)
        i = bisect_left(self._keys, key)
        return i < len(self._keys) and self._keys[i] == key


def load_known_missing(path: Path) -> set[tuple[str, str]]:
    if not path.exists():
        return set()
    return {tuple(p) for p in json.loads(path.read_text())}


def _samples(rows: list[tuple[str, str]]) -> list[str]:
    return [f"{r}@{d[:19]}" for r, d in rows[:5]]


def verify(dsn: str, storage=None, table_counts: dict[str, int] | None = None,
           known_missing: set[tuple[str, str]] | None = None, target: str = TARGET,
           served_at_start: ServedPairs | None = None) -> VerifyResult:
    """Verify the database at dsn against the release ``target`` (and its artifacts against
    storage when given). ``served_at_start``: the pairs the run's census found served in this
    same stop window (Harbor stopped since, and the upgrade writes nothing to storage); only
    the other pairs, those the upgrade's rows name anew, are looked up in storage again."""
    from .db import ledger
    from .db.connection import connect
    from .db.repair import matching_versions
    known_missing = known_missing or set()
    result = VerifyResult()
    conn = connect(dsn)
    with conn:
        cur = conn.cursor()
        state = ledger.read_state(conn)
        want = SCHEMA_VERSION[target]
        schema_ok = state.version == want and not state.dirty
        result.checks.append(CheckResult(
            "schema version", PASS if schema_ok else FAIL,
            f"schema_migrations is {state.version if state.version is not None else 'empty'}"
            f"{' (dirty)' if state.dirty else ''}; {target} needs {want}",
            hint=None if schema_ok else "run `harbor-upgrade run` again to continue the upgrade (or verify --to "
                                        "the release the run went to)"))
        if not schema_ok:
            return result  # the queries below assume the target's schema
        shapes = matching_versions(conn)
        result.checks.append(CheckResult(
            "schema objects", PASS if want in shapes else FAIL,
            f"the tables, columns and indexes of schema {want} ({target}) are there" if want in shapes else
            f"schema_migrations says {want} but the schema looks like "
            + (", ".join(map(str, shapes)) if shapes else "no known version"),
            hint=None if want in shapes else "harbor-upgrade db repair --dsn DSN tells which schema it holds"))

        before = before_counts(table_counts) if table_counts is not None else {}
        for name, (sql, _tables, _rule) in COUNTS.items():
            after = int(one(cur.execute(sql))[0])
            b = before.get(name)
            rule = rule_of(name, table_counts or {})
            result.counts.append(CountRow(name, b, after, rule if b is not None else "shown",
                                          rule_holds(rule, b, after)))

        for name, (sql, what) in INVARIANTS.items():
            bad = [r[0] for r in cur.execute(sql)]
            result.checks.append(CheckResult(name, FAIL if bad else PASS,
                                             f"{len(bad)} {what}" if bad else "none found", samples=bad[:5]))

        unknown = [(r[0], r[1]) for r in cur.execute(UNKNOWN_SQL)]
        new_unknown = [p for p in unknown if p not in known_missing]
        if new_unknown:
            status, detail = FAIL, f"{len(new_unknown)} artifacts with media type UNKNOWN"
        elif unknown:
            status, detail = WARN, (f"{len(unknown)} artifacts with media type UNKNOWN, all of them without a "
                                    "manifest in storage already before the upgrade")
        else:
            status, detail = PASS, "none found"
        result.checks.append(CheckResult("artifact media types", status, detail,
                                         samples=_samples(new_unknown or unknown),
                                         hint="run `harbor-upgrade artifacts` again to read their manifests"
                                         if new_unknown else None))

        if storage is None:
            result.checks.append(CheckResult("manifests in storage", WARN, "not checked: no --storage given"))
        else:
            pairs = [(r[0], r[1]) for r in cur.execute(ARTIFACTS_SQL)]
            unproven = pairs if served_at_start is None else [p for p in pairs if p not in served_at_start]
            missing = missing_manifests(storage, unproven)
            new_missing = [p for p in missing if p not in known_missing]
            if new_missing:
                status, detail = FAIL, f"{len(new_missing)} artifacts whose manifest is not in {storage.description}"
            elif missing:
                status, detail = WARN, (f"{len(missing)} artifacts (database-only rows) had no manifest in storage "
                                        "before the upgrade either; pulls of them fail as they did before")
            else:
                status, detail = PASS, "every artifact's manifest is in storage"
            if served_at_start is not None:
                detail += (f" ({len(pairs) - len(unproven):,} of {len(pairs):,} found there by this run's census "
                           f"when the window began, {len(unproven):,} looked up now)")
            result.checks.append(CheckResult("manifests in storage", status, detail,
                                             samples=_samples(new_missing or missing)))

        core_fills = Version.parse(target) <= Version.parse(CORE_FILLS_ARTIFACTS_UNTIL)
        result.checks.append(CheckResult(
            "artifact data version", PASS if state.abstracted else WARN if core_fills else FAIL,
            f"data_migrations.version = {state.data_version}"
            + ("" if state.abstracted else
               f"; Harbor {target} will re-read every manifest when it starts" if core_fills else
               f"; Harbor {target} never fills the artifact metadata (2.9 removed that migration)"),
            hint=None if state.abstracted or core_fills else "run `harbor-upgrade artifacts` (or `run` again)"))

        default = [r[0] for r in cur.execute(
            "SELECT name FROM scanner_registration WHERE is_default AND NOT disabled ORDER BY id")]
        clair = one(cur.execute("SELECT count(*) FROM scanner_registration WHERE immutable AND name = 'Clair'"
                            ))[0]
        result.checks.append(CheckResult(
            "default scanner", PASS if default and not clair else WARN,
            (f"default scanner: {', '.join(default)}" if default else "no default scanner: scans will not run")
            + ("; the removed Clair is still registered" if clair else ""),
            hint=None if default and not clair else "run the scanner step: `harbor-upgrade run` again"))
    return result
