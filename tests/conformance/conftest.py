"""Fixtures of the conformance tests: Harbor's release dumps restored once per session."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from harbor_upgrade.postgres.cluster import LocalCluster
from tests.support.db_normalize import ClusterPsql, source_ids
from tests.support.pg import Database


class StartDumps:
    """``fixtures/harbor-db/harbor-<release>.sql`` restored once each into a template database of
    the session cluster (on first use), with the ids present before any migration (what
    check_db.py records after its restore). ``copy(release)`` is a new database made from the
    template (CREATE DATABASE ... TEMPLATE, a file copy: seconds less than a restore) that the
    asking test owns."""

    _counter = itertools.count()

    def __init__(self, cluster: LocalCluster, folder: Path):
        self.cluster, self.folder = cluster, folder
        self.templates: dict[str, str] = {}
        self._ids: dict[str, dict] = {}

    def template(self, release: str) -> str:
        if release not in self.templates:
            name = f"start{os.getpid()}_{release.replace('.', '_')}"
            self.cluster.createdb(name)
            self.cluster.psql(dbname=name, file=self.folder / f"harbor-{release}.sql")
            self.templates[release] = name
        return self.templates[release]

    def source_ids(self, release: str) -> dict:
        if release not in self._ids:
            self._ids[release] = source_ids(ClusterPsql(self.cluster), self.template(release))
        return self._ids[release]

    def copy(self, release: str) -> Database:
        name = f"{self.template(release)}_c{next(self._counter)}"
        self.cluster.createdb(name, template=self.template(release))
        return Database(self.cluster, name)

    def drop(self) -> None:
        for name in self.templates.values():
            self.cluster.dropdb(name)


@pytest.fixture(scope="session")
def start_dumps(shared, pg_cluster):
    dumps = StartDumps(pg_cluster, shared / "fixtures" / "harbor-db")
    yield dumps
    dumps.drop()


@pytest.fixture
def start_copy(start_dumps, pg_cluster):
    """``start_copy(release)``: a copy of Harbor's dump of that release, dropped after the test."""
    made: list[Database] = []

    def make(release: str) -> Database:
        made.append(start_dumps.copy(release))
        return made[-1]
    yield make
    for d in made:
        pg_cluster.dropdb(d.name)
