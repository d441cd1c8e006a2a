"""Scratch PostgreSQL clusters the tool starts for itself (the backup's restore check), recorded
so that none outlives the process that made it.

Each one lives in ``<tmp>/harbor-upgrade-scratch/<id>/`` next to ``owner.json``: the pid and
start time of the process that made it. Normally the cluster is stopped and removed when its
``with`` block ends (an error or Ctrl-C included). A process killed outright (SIGKILL, a
power cut's sibling: the OOM killer) cannot clean up; then ``sweep()``, run by every command
that starts one, stops the servers of owners that are gone and removes their folders.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .cluster import LocalCluster, PgBinaries
from .server import process_start

OWNER = "owner.json"
PENDING_GRACE_S = 3600   # a folder still being set up (no owner.json yet) is left alone this long


def scratch_root(create: bool = True) -> Path:
    root = Path(tempfile.gettempdir()) / "harbor-upgrade-scratch"
    if create:
        root.mkdir(mode=0o711, exist_ok=True)  # the server user (when we are root) must pass through
    return root


def _remove_root_if_empty(root: Path) -> None:
    try:
        root.rmdir()
    except OSError:   # not empty: another command's cluster is in it
        pass


def _alive(owner: dict) -> bool:
    pid = owner.get("pid")
    return isinstance(pid, int) and process_start(pid) is not None and process_start(pid) == owner.get("start")


def _postmaster_pid(datadir: Path) -> int | None:
    try:
        first = (datadir / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first)
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if str(datadir).encode() in cmdline else None  # never a pid that is not this server


def _stop(folder: Path) -> None:
    datadir = folder / "data"
    if (datadir / "postmaster.pid").exists():
        try:
            LocalCluster(datadir, PgBinaries(Path(json.loads((folder / OWNER).read_text())["bindir"]), 0),
                         socket_dir=folder).stop()
        except Exception:  # noqa: BLE001 - a broken record: fall back to the signal below
            pass
        pid = _postmaster_pid(datadir)
        if pid is not None:
            os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
            for _ in range(100):
                if process_start(pid) is None:
                    break
                time.sleep(0.05)


def sweep() -> list[Path]:
    """Stop and remove the scratch clusters whose owner process is gone; returns their folders."""
    removed: list[Path] = []
    root = scratch_root(create=False)
    if not root.is_dir():
        return removed
    for folder in sorted(root.iterdir()):
        try:
            owner = json.loads((folder / OWNER).read_text())
        except FileNotFoundError:
            if time.time() - folder.lstat().st_mtime < PENDING_GRACE_S:
                continue
            owner = {}
        except (OSError, ValueError):
            owner = {}
        if owner and _alive(owner):
            continue
        _stop(folder)
        _remove(folder)
        removed.append(folder)
    _remove_root_if_empty(root)
    return removed


def _remove(folder: Path) -> None:
    """Remove a scratch folder, its record last: a process killed while removing a cluster
    (a copy of the whole database) leaves a folder that ``sweep`` still knows to remove."""
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name != OWNER:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def scratch_folder(bindir: Path, purpose: str) -> Iterator[Path]:
    """A recorded folder for a throwaway cluster in its ``data`` sub-folder (served with the
    binaries of bindir); its server is stopped and the folder removed when the block ends,
    or by ``sweep`` once this process is gone."""
    sweep()
    folder = scratch_root() / uuid.uuid4().hex[:12]
    try:
        folder.mkdir(mode=0o711)
    except FileNotFoundError:   # another command removed the empty root just now
        folder = scratch_root() / folder.name
        folder.mkdir(mode=0o711)
    owner = {"pid": os.getpid(), "start": process_start(os.getpid()), "purpose": purpose,
             "bindir": str(bindir), "created": time.time()}
    (folder / OWNER).write_text(json.dumps(owner))
    try:
        yield folder
    finally:
        _stop(folder)
        _remove(folder)
        _remove_root_if_empty(folder.parent)


@contextmanager
def scratch_cluster(binaries: PgBinaries, purpose: str) -> Iterator[LocalCluster]:
    """A started throwaway cluster (fsync off), recorded while it exists."""
    with scratch_folder(binaries.bindir, purpose) as folder:
        cluster = LocalCluster.create(folder / "data", binaries=binaries, fast=True)
        cluster.socket_dir = folder
        cluster.chown_for_server(folder)
        cluster.owned_dir, cluster.throwaway = folder, True
        with cluster:
            yield cluster
