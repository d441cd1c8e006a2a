"""The Harbor 1.10 installation the benchmarks upgrade (bench_upgrade.py, bench_estimate.py,
bench_window.py), built in one place.

``build(base, scale, seed, tree=...)`` makes, under ``base/site``:

  * ``harbor/harbor.yml``: the demo's, its data_volume ``data``;
  * the registry storage in ``data/registry``: the demo's images (no tree), or a storage tree of
    bench/artifacts_tree.py (kept elsewhere and only read: linked there, or, with
    ``link_tree=False``, an empty folder, the run being given ``--storage``);
  * a PostgreSQL cluster of the demo's kind in ``data/database`` (left running) with the 1.10
    database ``registry``: src/harbor_upgrade/data/harbor-1.10.0-fresh.sql, then
    tests/support/seed_harbor.py at the scale (in a child process) with the tree's tags as its
    registry inventory (one 1.10 artifact row per tag, as 1.10 knew them; the seed's own synthetic
    repositories are database-only), then VACUUM ANALYZE: the state autovacuum keeps a database
    in after months of service (hint bits set, visibility map written). Without it the first
    reads after the load rewrite most pages to set hint bits, which a long-served Harbor database
    has long had, and the window's backup would copy a third of the folder again for that alone.

With ``kept_db=PREFIX`` the built cluster is kept stopped in ``PREFIX-s<scale>-seed<seed>-<key>``
(the key: seed_harbor.py, the 1.10 schema, the arguments, the tree's rows, the PostgreSQL
major) and the next build with the same key copies it instead of seeding again (seconds, where
seeding scale 100 takes minutes).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from artifacts_tree import TreeShape, generate, load_summary, read_rows
from harbor_upgrade import demo
from harbor_upgrade.postgres.cluster import LocalCluster, find_binaries

HERE = Path(__file__).resolve().parent
FRESH_1_10 = HERE.parent / "src" / "harbor_upgrade" / "data" / "harbor-1.10.0-fresh.sql"  # shipped for the demo
SEED = HERE.parent / "tests" / "support" / "seed_harbor.py"


@dataclass
class Site:
    base: Path
    dir: Path                 # base/site
    harbor_yml: Path
    data_volume: Path
    cluster: LocalCluster     # running: the caller stops it
    dsn: str                  # the 1.10 database
    artifact_rows: int        # 1.10 artifact rows
    storage_tags: int         # of them the tree's tags (0 with the demo's storage)
    seconds: float            # to build it


def kept_tree(tree: Path, shape: TreeShape, log: Callable[[str], None] | None = None) -> dict:
    """The summary of the storage tree kept in tree, generated there first (once: minutes) when
    it is not complete."""
    summary = load_summary(tree)
    if summary is None:
        shutil.rmtree(tree, ignore_errors=True)
        if log is not None:
            log(f"generating {shape.expected_artifacts:,} artifacts in {tree} (once; minutes)")
        summary = generate(tree, shape)
    return summary


def write_inventory(tree: Path, path: Path) -> int:
    """The tree's tags as seed_harbor's registry inventory in path; returns the tag count."""
    repos: dict[str, list[dict]] = {}
    for repo, tag, digest, media_type, size in read_rows(tree):
        repos.setdefault(repo, []).append({"name": tag, "digest": digest, "media_type": media_type, "size": size})
    path.write_text(json.dumps({"repositories": [{"name": r, "project": r.split("/")[0], "tags": t}
                                                 for r, t in repos.items()]}))
    return sum(len(t) for t in repos.values())


def kept_database(prefix: Path, scale: float, seed: int, tree: Path | None, major: int) -> Path:
    """Where the built cluster of these arguments is kept (module doc)."""
    h = hashlib.sha256()
    for part in (SEED.read_bytes(), FRESH_1_10.read_bytes(), f"{scale}/{seed}/{major}/vacuumed".encode(),
                 (tree / "rows.tsv").read_bytes() if tree else b"demo"):
        h.update(hashlib.sha256(part).digest())
    return Path(f"{prefix}-s{scale:g}-seed{seed}-{h.hexdigest()[:12]}")


def build(base: Path, scale: float, seed: int = 1, tree: Path | None = None, link_tree: bool = True,
          kept_db: Path | None = None) -> Site:
    """The installation in base/site (module doc); base must let the server's user through."""
    t0 = time.monotonic()
    d = base / "site"
    data_volume = d / "data"
    (d / "harbor").mkdir(parents=True)
    data_volume.mkdir()
    tags = 0
    inventory = "none"
    if tree is None:
        (data_volume / "registry").mkdir()
        demo.write_storage(data_volume / "registry")
    else:
        if link_tree:
            # a link to the kept tree (the storage resolves its root once; the run only reads it):
            # nothing to copy or to delete, which on a busy disk takes minutes for 176,000 files
            (data_volume / "registry").symlink_to(tree / "storage")
        else:
            (data_volume / "registry").mkdir()
        inventory = str(base / "inventory.json")
        tags = write_inventory(tree, Path(inventory))
    harbor_yml = d / "harbor" / "harbor.yml"
    harbor_yml.write_text(demo.HARBOR_YML.replace("{data_volume}", str(data_volume)))
    datadir = data_volume / "database"
    binaries = find_binaries()
    kept = kept_database(kept_db, scale, seed, tree, binaries.major) if kept_db is not None else None
    if kept is not None and (kept / "PG_VERSION").exists():
        demo.check_reachable(data_volume)
        subprocess.run(["cp", "-a", str(kept), str(datadir)], check=True)
        cluster = LocalCluster(datadir, binaries)
        cluster.fast = True      # as demo.new_cluster made it
        cluster.socket_dir = demo.server_owned_dir(d / "run", 0o755)
        cluster.start()
    else:
        seed_sql = base / "seed.sql"
        subprocess.run([sys.executable, str(SEED), "--seed", str(seed), "--scale", str(scale), "--inventory",
                        inventory, "--out", str(seed_sql)], check=True)
        cluster = demo.new_cluster(d, datadir, binaries)
        try:
            cluster.createdb("registry")
            cluster.psql(dbname="registry", file=FRESH_1_10)
            cluster.psql(dbname="registry", file=seed_sql)
            cluster.psql("VACUUM ANALYZE", dbname="registry")
            if kept is not None:    # a stopped copy, put in place whole (a killed copy leaves only .tmp)
                cluster.psql("CHECKPOINT")
                cluster.stop()
                tmp = kept.with_name(kept.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                subprocess.run(["cp", "-a", str(datadir), str(tmp)], check=True)
                os.replace(tmp, kept)
                cluster.start()
        except BaseException:
            cluster.stop()
            raise
    try:
        rows = int(cluster.psql("SELECT count(*) FROM artifact", dbname="registry"))
    except BaseException:
        cluster.stop()
        raise
    return Site(base, d, harbor_yml, data_volume, cluster, cluster.dsn("registry"), rows, tags,
                time.monotonic() - t0)
