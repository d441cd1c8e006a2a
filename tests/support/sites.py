"""Folders and one-value queries for tests that run a PostgreSQL server as another user."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from harbor_upgrade import demo
from harbor_upgrade.postgres.cluster import LocalCluster


def open_tmpdir(prefix: str) -> Path:
    """A temporary folder the PostgreSQL server user can pass through (pytest's own are 0700,
    and another pytest session may close them again at any time)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    return base


def scalar(dsn: str, sql: str):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def stop_orphans(base: Path) -> None:
    """Stop the scratch clusters a killed run left under ``base/tmp``."""
    for pid_file in [*base.glob("tmp/*/*/postmaster.pid"), *base.glob("tmp/*/*/*/postmaster.pid")]:
        LocalCluster(pid_file.parent, socket_dir=pid_file.parent.parent).stop()


@contextmanager
def demo_site(prefix: str) -> Iterator[demo.DemoInstallation]:
    """The sample 1.10 installation (demo.build, its cluster running) in a folder of its own;
    afterwards its cluster and any scratch cluster a killed run left are stopped, the folder removed."""
    base = open_tmpdir(prefix)
    inst = None
    try:
        inst = demo.build(base / "site")
        yield inst
    finally:
        if inst is not None:
            inst.cluster.stop()
        stop_orphans(base)
        shutil.rmtree(base, ignore_errors=True)
