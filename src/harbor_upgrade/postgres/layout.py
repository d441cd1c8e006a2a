"""Where Harbor keeps its PostgreSQL cluster, and the rules for where a new one may go.

harbor-db up to 2.2 runs PostgreSQL 9.6 with the cluster directly in
``data_volume/database`` (``PG_VERSION`` says ``9.6``); 2.3 moved to 13 in a ``pg13``
sub-folder, 2.9 to ``pg14``, 2.11 to ``pg15``. Harbor 2.3's entrypoint decided "fresh
install" when ``ls`` of the folder failed, and initialised an empty database beside the
real data (Harbor issues 15383, 15538). Here a folder we cannot read is an error, never
"empty".
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInput, UnsafeState

_SUBFOLDER_RE = re.compile(r"^pg(\d+)$")


@dataclass(frozen=True)
class ClusterDir:
    """A PostgreSQL data folder and the version its PG_VERSION file names ('9.6', '13')."""
    path: Path
    pg_version: str

    @property
    def major(self) -> int:
        """9 for 9.6 (pre-10 majors are two numbers; only 9.6 matters to Harbor), else the number."""
        return int(self.pg_version.split(".")[0])


def _unreadable(path: Path, err: OSError) -> UnsafeState:
    return UnsafeState(
        f"cannot read {path}: {err.strerror or err}. It is NOT treated as empty: nothing was initialised",
        hint=f"check the owner and mode of {path} (harbor-db expects 999:999, 0700) and the container "
             "runtime (Docker older than 20.10 blocks syscalls newer images use); run as root or as the owner",
        reference="datadir-unreadable")


def read_pg_version(datadir: str | os.PathLike) -> str | None:
    """The PG_VERSION of a data folder; None when the folder has none; an error when unreadable."""
    path = Path(datadir)
    try:
        return (path / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        try:
            os.listdir(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise _unreadable(path, e) from None
        return None
    except NotADirectoryError:
        return None
    except OSError as e:
        raise _unreadable(path, e) from None


def list_entries(path: str | os.PathLike) -> list[str] | None:
    """The names in a folder, None when it does not exist, an error when it cannot be listed."""
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _unreadable(Path(path), e) from None


def harbor_clusters(database_dir: str | os.PathLike) -> list[ClusterDir]:
    """Every cluster in Harbor's ``data_volume/database``: the 9.6 one at its top, pgNN below."""
    root = Path(database_dir)
    names = list_entries(root)
    if names is None:
        raise InvalidInput(f"{root} does not exist", reference="datadir-missing")
    found = []
    top = read_pg_version(root)
    if top:
        found.append(ClusterDir(root, top))
    for name in names:
        if _SUBFOLDER_RE.match(name) and (root / name).is_dir():
            v = read_pg_version(root / name)
            if v:
                found.append(ClusterDir(root / name, v))
    return found


def harbor_cluster(database_dir: str | os.PathLike) -> ClusterDir:
    """The one cluster of a Harbor database folder; refuses an empty or ambiguous folder."""
    found = harbor_clusters(database_dir)
    if not found:
        raise UnsafeState(f"{database_dir} holds no PostgreSQL cluster (no PG_VERSION, no pgNN/PG_VERSION)",
                          hint="point at Harbor's data_volume/database folder", reference="datadir-empty")
    if len(found) > 1:
        listed = ", ".join(f"{c.path} ({c.pg_version})" for c in found)
        raise UnsafeState(f"{database_dir} holds more than one cluster: {listed}; an earlier engine upgrade "
                          "may have started an empty cluster beside the data (Harbor issue 15383)",
                          hint="compare their row counts, keep the one with the data, and pass it as --old-datadir",
                          reference="datadir-ambiguous")
    return found[0]


def check_siblings(old: Path, new: Path) -> None:
    """The new cluster goes beside the old, never inside it (nor the old inside the new):
    pg_upgrade warns about it and cannot write a delete script (Harbor issue 15471)."""
    o, n = old.resolve(), new.resolve()
    if o == n or o in n.parents or n in o.parents:
        raise InvalidInput(f"new data folder {new} must not be inside the old one {old} (nor the other way)",
                           hint=f"use a sibling folder, e.g. {old.parent / (old.name + '-new')}",
                           reference="datadir-nested")


def harbor_home(database_dir: str | os.PathLike, major: int) -> Path:
    """Where harbor-db of a release on PostgreSQL ``major`` expects its cluster."""
    root = Path(database_dir)
    return root if major < 10 else root / f"pg{major}"


def harbor_database_dir(cluster: Path) -> Path | None:
    """Harbor's data_volume/database folder a cluster belongs to, if it sits in that layout."""
    if cluster.name == "database":
        return cluster
    if _SUBFOLDER_RE.match(cluster.name) and cluster.parent.name == "database":
        return cluster.parent
    return None


def harbor_move_target(old: Path, new_major: int, new: Path) -> Path | None:
    """Where harbor-db of the new major expects a cluster upgraded from ``old`` into ``new``
    (what ``pg-upgrade --cleanup --move-into`` takes), or None when it is there already or
    ``old`` is not in Harbor's layout."""
    database_dir = harbor_database_dir(old)
    home = harbor_home(database_dir, new_major) if database_dir else None
    return home if home and home != new else None
