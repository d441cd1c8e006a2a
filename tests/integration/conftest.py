"""Fixtures shared by the integration tests (the session-wide ones are in tests/conftest.py)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harbor_upgrade import db
from harbor_upgrade.postgres.server import server_user
from tests.support.artifacts import fresh_schema
from tests.support.hostile_trees import run_clean


def _empty_harbor24(database) -> None:
    database.load(fresh_schema())
    db.migrate(database.dsn)


@pytest.fixture
def harbor24_copy(database_from):
    """``harbor24_copy()``: another copy of harbor24's template, for a test that needs two."""
    return lambda: database_from("harbor-2.4.0-empty", _empty_harbor24)


@pytest.fixture
def harbor24(harbor24_copy):
    """An empty Harbor database migrated to the 2.4.0 schema (a copy of one made once per session)."""
    return harbor24_copy()


@pytest.fixture
def twin(harbor24, pg_cluster):
    """A second database made from harbor24 as it is when asked for."""
    made = []

    def make() -> str:
        name = f"{harbor24.name}_twin"
        pg_cluster.psql(f"CREATE DATABASE {name} TEMPLATE {harbor24.name}")
        made.append(name)
        return pg_cluster.dsn(name)
    yield make
    for name in made:
        pg_cluster.dropdb(name)


@pytest.fixture(scope="module")
def clean_rows(pg_cluster, tmp_path_factory):
    """The good repository's rows from a tree with nothing hostile in it."""
    name = f"clean{os.getpid()}"
    pg_cluster.createdb(name)
    try:
        dsn = pg_cluster.dsn(name)
        pg_cluster.psql(dbname=name, file=fresh_schema())
        db.migrate(dsn)
        result, rows = run_clean(dsn, tmp_path_factory.mktemp("clean"))
        assert result["code"] == 0, result["out"] + result["err"]
        yield rows, result["peak_rss"]
    finally:
        pg_cluster.dropdb(name)


@pytest.fixture
def base():
    """A folder the server user can use (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="hu-pgup-test-"))
    pw = server_user()
    if pw is not None:
        os.chown(d, pw.pw_uid, pw.pw_gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)
