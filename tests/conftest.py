"""Shared test fixtures: the ../shared material, real PostgreSQL clusters, the CLI in-process,
SeaweedFS as the S3 server (moto only where a test injects a fault).

Tests that read ../shared use the ``shared`` fixture: it skips with a reason when the
folder is absent, and fails instead when HARBOR_UPGRADE_REQUIRE_SHARED=1 (as .ci/run sets),
so a CI run can never pass by skipping the conformance tests.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from harbor_upgrade import secrets
from harbor_upgrade.cli import main as cli_main
from harbor_upgrade.postgres.cluster import LocalCluster
from tests.support.pg import Database
from tests.support.s3 import upload_tree
from tests.support.seaweed import WeedServer
from tests.support.shared_tools import shared_dir

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_secrets():
    """Secrets registered by one test (hypothesis registers random ones) must not mask
    another test's output."""
    yield
    secrets.forget_all()


@pytest.fixture(autouse=True, scope="session")
def _backup_key(tmp_path_factory):
    """Backups made by the tests are signed with a key of their own, never the machine's."""
    from harbor_upgrade.backup.manifest import KEY_ENV
    path = tmp_path_factory.mktemp("backup-key") / "backup.key"
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = str(path)  # subprocesses (the CLI, killed runs) inherit it
    yield path
    if old is None:
        os.environ.pop(KEY_ENV, None)
    else:
        os.environ[KEY_ENV] = old


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


_db_counter = itertools.count()


@pytest.fixture
def database(pg_cluster):
    name = f"t{os.getpid()}_{next(_db_counter)}"
    pg_cluster.createdb(name)
    yield Database(pg_cluster, name)
    pg_cluster.dropdb(name)


@pytest.fixture(scope="session")
def db_templates(pg_cluster):
    """Databases built once per session for many tests to copy: ``db_templates(key, build)`` is
    the name of the database ``build(Database)`` filled the first time ``key`` was asked for."""
    made: dict[str, str] = {}

    def template(key: str, build) -> str:
        if key not in made:
            name = f"tpl{os.getpid()}_{len(made)}"
            pg_cluster.createdb(name)
            build(Database(pg_cluster, name))
            made[key] = name
        return made[key]
    yield template
    for name in made.values():
        pg_cluster.dropdb(name)


@pytest.fixture
def database_from(pg_cluster, db_templates):
    """``database_from(key, build)``: a new database copied from that template (CREATE DATABASE
    ... TEMPLATE, a file copy: much cheaper than loading a schema and migrating it again), dropped
    after the test."""
    made: list[str] = []

    def copy(key: str, build) -> Database:
        name = f"t{os.getpid()}_{next(_db_counter)}"
        pg_cluster.createdb(name, template=db_templates(key, build))
        made.append(name)
        return Database(pg_cluster, name)
    yield copy
    for name in made:
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


@pytest.fixture(scope="session")
def weed():
    """SeaweedFS (``weed server -s3``, tests/support/seaweed.py) on 127.0.0.1 for the whole session: it
    takes seconds to start and ~15 s to stop, so it is started once.

    Its credentials are set for this process (the CLI and S3Storage find them in AWS_*; test
    code makes its clients with weed.client(): boto3's default session keeps the first keys it
    found, such as a unit test's dummy ones),
    and AWS_CA_BUNDLE is removed so children such as docker-registry's S3 driver start."""
    with WeedServer() as server, pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_CA_BUNDLE", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", server.access_key)
        mp.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield server


@pytest.fixture(scope="session")
def s3_server(weed) -> str:
    """The endpoint URL of the session's S3 server (SeaweedFS)."""
    return weed.endpoint


_bucket_counter = itertools.count()


@pytest.fixture
def s3_upload(weed):
    """Upload a storage tree to a fresh bucket of the session's S3 server:
    ``s3_upload(tree, rootdirectory="/harbor/registry") -> (bucket, rootdirectory)``."""
    client = weed.client()

    def upload(storage_root: Path, rootdirectory: str = "/harbor/registry") -> tuple[str, str]:
        bucket = f"registry-{os.getpid()}-{next(_bucket_counter)}"
        client.create_bucket(Bucket=bucket)
        upload_tree(client, bucket, rootdirectory, storage_root)
        return bucket, rootdirectory

    yield upload
    client.close()
