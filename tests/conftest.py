"""Shared test fixtures: the ../shared material, real PostgreSQL clusters, the CLI in-process.

Tests that read ../shared use the ``shared`` fixture: it skips with a reason when the
folder is absent, and fails instead when HARBOR_UPGRADE_REQUIRE_SHARED=1 (as .ci/run sets),
so a CI run can never pass by skipping the conformance tests.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from harbor_upgrade.cli import main as cli_main
from harbor_upgrade.postgres.cluster import LocalCluster

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    cand = Path(os.environ.get("HARBOR_SHARED", REPO.parent / "shared"))
    return cand if (cand / "specs").is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_dir()
    if d is None:
        if os.environ.get("HARBOR_UPGRADE_REQUIRE_SHARED") == "1":
            pytest.fail("../shared is required here (HARBOR_UPGRADE_REQUIRE_SHARED=1) but absent")
        pytest.skip("../shared (Harbor fixtures and oracle) is absent")
    return d


@pytest.fixture(scope="session")
def pg_cluster():
    """One real PostgreSQL cluster for the whole session (fsync off, for speed)."""
    c = LocalCluster.create(fast=True)
    c.start()
    yield c
    c.stop()


class Database:
    """A fresh database in the session cluster."""

    def __init__(self, cluster: LocalCluster, name: str):
        self.cluster, self.name = cluster, name
        self.dsn = cluster.dsn(name)

    def psql(self, sql: str) -> str:
        return self.cluster.psql(sql, dbname=self.name)

    def load(self, sql_file: str | os.PathLike) -> None:
        self.cluster.psql(dbname=self.name, file=sql_file)

    def scalar(self, sql: str) -> str:
        return self.psql(sql).strip()


_db_counter = itertools.count()


@pytest.fixture
def database(pg_cluster):
    name = f"t{os.getpid()}_{next(_db_counter)}"
    pg_cluster.createdb(name)
    yield Database(pg_cluster, name)
    pg_cluster.dropdb(name)


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (exit_code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli_main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run
