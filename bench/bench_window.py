#!/usr/bin/env python3
"""Benchmark: the stop window of a whole upgrade, 1.10 -> 2.15.0, after `run --prepare` (issue 13 item 2).

For each scale (default: 100 with 22,000 artifacts, then 350 with 110,000) it builds a Harbor 1.10
installation (bench/harbor_1_10.py): a storage tree in the exact distribution layout (bench/artifacts_tree.py, kept in
bench/out/window-<N>k and reused), and a 1.10 database from tests/support/seed_harbor.py at the
scale with the tree as its registry inventory, so that the database's rows of those repositories
are the storage's tags (one 1.10 artifact row per tag, as 1.10 knew them; the seed's own synthetic
repositories at the scale are database-only, as in bench_upgrade.py). Then, as an operator would:

  1. `run --prepare` while "Harbor serves" (a child process: its seconds and peak RSS);
  2. Harbor's users change a few repositories meanwhile: a push (new manifest and tag), a tag moved
     to another digest, a tag added (storage and the 1.10 rows both);
  3. the in-window `run --to 2.15.0 --yes` (a child process), and prints every step's seconds, the
     window (stop -> verified) and the total (prepare included), the peak RSS of each, and how many
     repositories came from the prefetch;
  4. beside it Harbor's own path for the same data: its SQL for the same hop (with --harbor-sql DIR
     measured side by side on a copy of the same 1.10 database; otherwise bench_db's recorded figure,
     labelled as such) plus its artifact walk (GET manifest + GET config per artifact through
     docker-registry, one after the other) measured here on a sample of the tree's repositories and
     extrapolated to every artifact in storage.

At the end, each step's seconds at both scales side by side with the growth of the data: no step
may grow faster than the data. Target: window <= 30 s at scale 350 + 110,000 artifacts. The machine
has 2 cores shared with other jobs: the load average is printed beside every figure.

Measured 2026-12-02 14:35-14:42 on a machine at load 14-21 (2 cores, 8 helpers: every figure here is
several times its quiet value; the lead re-measures), scale 100 + 22,000 artifacts, --jobs 2 (commit
b43621f): run --prepare 109.4 s (prefetch 100.2 s, 400 repositories, 14 MiB, peak RSS 150 MB); window
213.9 s: backup 78.1 s (37%), database 58.3 s (27%), artifacts 53.1 s (25%: 397 repositories from the
prefetch, 3 read again), verify 14.6 s, config/scanner 0.4 s, the rest 9.5 s; total 317.6 s; peak RSS
163 MB. Harbor beside it: walk 17.9 artifacts/s measured here on 432 (1,229 s for 22,000) + its SQL
422.9 s recorded by bench_db = 1,652 s of downtime, 8x the window. Scale 350 + 110,000 was not run
(no time left at that load); target window <= 30 s NOT met at scale 100 under that load.

Then on a nearly quiet machine (main at e4c3784, the data-folder copy backup in, load 1-3):
  scale 100 + 22,000: prepare 42.2 s; window 33.1 s (backup 7.6, database 10.3, artifacts 8.8
    with 397/400 repositories from the prefetch, verify 3.2, rest 3.1); total 74.8 s; 178 MB.
  scale 350 + 110,000: prepare 202.7 s; window 89.5 s (backup 13.1, database 33.9, artifacts 26.4
    with 1,997/2,000 from the prefetch, verify 8.9, rest 7.1); total 292.6 s; 218 MB.
  Target window <= 30 s at 350 + 110,000: NOT met. No step grew faster than the data.

With run --prepare copying the data folder while the server runs (the window finishes that copy:
every file read, each MiB whose sha256 differs written again; the proof unchanged), scale 100 +
22,000, under load (2 cores shared with other helpers; load beside each):
  main before it (daba6f2), load 10-16: backup 16.9 s of a 63.9 s window (database 22.9 s).
  after, load 12-8: backup 7.9 s of 27.3 s (database 10.1 s): copy 3.6 s, proof 0.6 s; prepare's
    live copy 11.3 s beside the prefetch's 12.0 s.
  after, load 5 (later, quieter): backup 2.6 s of 9.2 s (database 3.3 s): copy 1.4 s, proof 0.4 s.
  So backup/database 0.74 before, 0.78-0.79 after: here the gain is small, because this bench's
  database is freshly loaded (ANALYZE, no VACUUM): the reads between prepare and the stop set hint
  bits on most pages, and 426 of 1,499 files (246 MB) differ at the stop. On a VACUUMed database
  (bench_window_backup.py, the backup alone side by side, load 15-26) 17 of 1,554 files (11-12 MiB)
  are written again and the window's copy takes x0.18-0.31 of a full one, the backup step x0.31-0.48.
  The proof (throwaway server start + census) is 0.4-3 s, 10-20% of the backup: not dominant.
  (The builder, bench/harbor_1_10.py, now VACUUMs after loading, as autovacuum keeps a long-served
  database.)

The artifacts step from the prefetch, verify and the rest (issue 13, under load; --profile FILE
records the window run with py-spy). What they spent, profiled at 350 + 110,000 (load 13-19, after
the changes below but before verify's threads): artifacts 70.5 s of wall = the batch UPDATE of the
~110,000 prefetched rows 33.8 s (non-HOT: every row version goes to another page with 5 index
entries), waiting for the two reader processes 10.6 s (fingerprint of every listing: ~110 small
files a repository; spawn and import ~0.5 s CPU each), the end (rows storage lacks noted, notes read
back) 5.2 s, ANALYZE 2.0 s, the rest of the batches (COPY, references, commits) ~10 s; the prefetch
file's HMAC chain 1 s (not dominant). verify 19.7 s = the storage check 13.8 s (2 system calls per
link and per blob, tree often out of the cache: the same 132k pairs took 28.2 s cold, 4.3 s warm)
+ its queries 4.5 s; the rest: the record of gaps before 14.9 s (storage check 10.0 s, the 1.10
digests 4.5 s), preflight 2.8 s (before the window). Changes: one UPDATE per batch (artifact_type
with it; was a second pass), rows found by id (a hash join read the whole artifact table for each
batch), ANALYZE first (a freshly migrated artifact table has no statistics: each group of ids was a
seq scan), batch commits without waiting for the WAL (the last one synchronous), next ids asked only
when a batch inserts, ~6 round trips a batch instead of ~20, readers up to 2 batches of rows ahead
(were 16 repositories, less than a batch: reading and writing took turns); storage checks through
exists_many (folder two levels up kept open; a row of a repository storage lacks costs a look-up)
on 4 threads. Backfill alone on the 22k installation, artifact statistics removed as after a
migration, 397/400 from the prefetch, side by side at load 16-17: main wall 20.8/22.8 s, CPU 4.5/4.4
s (postgres 1.7/1.7, readers 2.2/2.1, main 0.6/0.6); after wall 13.8/16.0 s, CPU 3.6/3.5 s (postgres
0.9/0.9, readers 2.1/2.1, main 0.6/0.6). Left: the non-HOT UPDATE itself (a quiet figure at 110k is
needed to size it); reader processes for a prefetch that needs almost no reading (threads would
save their ~1 s of start); the gap record could overlap the backup's copy.

On a quiet machine with all of the above (main at 7da7fa5, 18:43-18:47, load 0.9-1.9; this machine
was about 4x faster than the one of the quiet figures above: bench_db's dump-restore at scale 350
6.9 s against 31.9 s), --jobs 4:
  scale 100 + 22,000: prepare 13.9 s (prefetch 11.3 s, data folder copy 1.7 s); window 9.2 s
    (backup 2.4: copy 1.3 with 489 of 1,554 files written again, proof 0.3; database 3.3, artifacts
    2.2 with 397/400 from the prefetch, verify 0.7, the rest 0.6); total 22.8 s; peak RSS 184 MB.
  scale 350 + 110,000: prepare 63.7 s (prefetch 58.6 s, data folder copy 3.7 s); window 32.9 s
    (backup 3.5: copy 1.9 with 251 of 1,554 files written again, proof 0.5; database 12.4, artifacts
    11.5 with 1,997/2,000 from the prefetch, verify 2.9, the rest 2.5); total 96.6 s; peak RSS 230 MB.
  Target window <= 30 s at 350 + 110,000: NOT met (32.9 s). Growth 100 -> 350 (storage x5.0, rows
  x3.9): backup x1.5, database x3.8, artifacts x5.2, verify x4.0, window x3.6: none faster than
  the data. Harbor's own path beside it: its walk measured here, 231.9 artifacts/s (474 s for
  110,000), plus its SQL as recorded by bench_db on the slower machine (> 1,330 s): > 1,804 s.
  After all of it (winart), scale 100 + 22,000, load 12-16: window 30.1 s (backup 8.7, database 10.5,
    artifacts 7.5 with 397/400 from the prefetch, verify 1.9, rest 1.5); compare the quiet figures
    above (load 1-3): artifacts 8.8, verify 3.2, rest 3.1.
  Scale 350 + 110,000, load 9-14: window 96.6 s (backup 12.8, database 43.4, artifacts 26.2 with
    1,997/2,000 from the prefetch, verify 6.9, rest 7.1); prepare 134.0 s; 225 MB. Beside the quiet
    figures above (artifacts 26.4, verify 8.9, rest 7.1) at several times the load: not worse.
  Then at load 4-7 (main at f74d08c + this docstring; the database/backup helpers' work in too):
    window 38.9 s (backup 4.3, database 16.3, artifacts 12.0 with 1,997/2,000 from the prefetch,
    verify 3.1, rest 3.1); prepare 57.7 s; total 96.3 s; 242 MB. Against the quiet figures above
    (load 1-3): artifacts x0.46, verify x0.35, rest x0.44. Target window <= 30 s: NOT met (database
    16.3 s and artifacts 12.0 s dominate; the artifacts step's UPDATE of 108,000 rows is its bulk).
  Tried (winart2, 19:02-19:09, main c1992e5, scale 350 + 110,000, one run each, one after the other):
    prefetched repositories replayed by ONE thread in the main process (no reader processes unless
    >16 repositories are read again): artifacts 22.0 s at load 5.6 against 14.8 s at load 5.9 for
    main's two reader processes (windows 52.6 / 47.3 s). Dropped: the replay (record parse, compose)
    is Python CPU under the interpreter lock, and the processes' parallelism is worth more than their
    start and the copying back. The UPDATE's columns (type, media types, size, extra_attrs,
    annotations, icon, artifact_type) are in none of artifact's 5 indexes, so HOT is possible given
    free space on the page (CREATE TABLE AS in db step 2.0.0 with a low fillfactor, or a rewrite
    before the backfill: not measured; the new row versions are bigger than the old, so it needs
    a fillfactor well under 50).

    python bench/bench_window.py                              # both scales (trees generated once)
    python bench/bench_window.py --scales 100:22000           # one
    python bench/bench_window.py --harbor-sql DIR   # DIR: Harbor v2.15.x make/migrations/postgresql (see bench_db.py)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402

from artifacts_baseline import Registry, harbor_walk  # noqa: E402
from artifacts_db import load_template  # noqa: E402
from artifacts_tree import TreeShape, read_rows  # noqa: E402
from bench_artifacts import RssSampler  # noqa: E402
from harbor_1_10 import build, kept_tree  # noqa: E402
from harbor_upgrade import versions  # noqa: E402

TARGET = "2.15.0"
WINDOW_TARGET_S = 30.0
# bench_db.py's docstring (1.10 -> 2.15.0, Harbor's SQL of v2.15.2, seed alone, no storage rows)
HARBOR_SQL_RECORDED = {100: (422.9, "422.9 s"), 350: (1330.0, "> 1,330 s (0030 unfinished when capped)")}
PER_REPO = TreeShape().expected_artifacts // TreeShape().repos   # 55 artifacts a repository


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def tree_for(artifacts: int, out: Path) -> Path:
    tree = out / f"window-{artifacts // 1000}k"
    kept_tree(tree, TreeShape(repos=max(1, artifacts // PER_REPO)), log)
    return tree


def run_cli(args: list[str], logfile: Path, profile: Path | None = None) -> tuple[dict, float, float]:
    """A harbor-upgrade command in a child process: (its JSON report, seconds, peak RSS MB of its tree).
    With profile, the command runs under py-spy (idle threads and reader processes included) and its
    folded stacks are written there (the seconds then include py-spy's sampling)."""
    command = [sys.executable, "-m", "harbor_upgrade", *args, "--json"]
    if profile is not None:
        command = ["py-spy", "record", "--idle", "--subprocesses", "--format", "raw", "--rate", "200",
                   "--output", str(profile), "--", *command]
    with open(logfile, "wb") as err, tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        memory = RssSampler(proc.pid)
        proc.wait()
        seconds = time.monotonic() - t0
        memory.stop()
        out.seek(0)
        text = out.read().decode()
    if profile is not None:   # py-spy's own lines go to the same stdout
        text = "\n".join(line for line in text.splitlines() if not line.startswith("py-spy> "))
    try:
        report = json.loads(text)
    except ValueError:
        raise SystemExit(f"{args[0]} failed ({proc.returncode}): {text[-2000:]} "
                         f"{logfile.read_text()[-2000:]}") from None
    if not report.get("ok"):
        raise SystemExit(f"{' '.join(args[:2])} failed: {json.dumps(report.get('error'))} (log {logfile})")
    return report, seconds, memory.peak_total_mb


class Changes:
    """What Harbor's users did between --prepare and the window, undone afterwards (the tree is reused)."""

    def __init__(self, tree: Path, dsn: str):
        self.root, self.dsn = tree / "storage", dsn
        self.v2 = self.root / "docker/registry/v2"
        self.created: list[Path] = []
        self.restored: dict[Path, bytes] = {}

    def _write(self, rel: str, data: bytes) -> None:
        p = self.v2 / rel
        if p.exists():
            self.restored.setdefault(p, p.read_bytes())
        else:
            missing = p
            while not missing.parent.exists():
                missing = missing.parent
            self.created.append(missing)
        p.parent.mkdir(parents=True, exist_ok=True)
        _replace(p, data)

    def make(self, rows: dict[str, list[tuple[str, str]]]) -> list[str]:
        names = sorted(rows)
        pushed, moved, added = names[1], names[len(names) // 2], names[-2]
        # a push: a new config and manifest (sharing the repository's layers), a new tag
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"pushed": "in window"}},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        cfg = "sha256:" + hashlib.sha256(config).hexdigest()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                          "size": len(config), "digest": cfg}, "layers": []}).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        for data, d in ((config, cfg), (manifest, digest)):
            h = d[7:]
            self._write(f"blobs/sha256/{h[:2]}/{h}/data", data)
        base = f"repositories/{pushed}"
        self._write(f"{base}/_layers/sha256/{cfg[7:]}/link", cfg.encode())
        self._write(f"{base}/_manifests/revisions/sha256/{digest[7:]}/link", digest.encode())
        self._write(f"{base}/_manifests/tags/pushed-in-window/current/link", digest.encode())
        self._write(f"{base}/_manifests/tags/pushed-in-window/index/sha256/{digest[7:]}/link", digest.encode())
        # a tag moved to another digest of its repository; a tag added
        (tag_a, _), (_tag_b, digest_b) = rows[moved][0], rows[moved][1]
        self._write(f"repositories/{moved}/_manifests/tags/{tag_a}/current/link", digest_b.encode())
        _, digest_c = rows[added][0]
        self._write(f"repositories/{added}/_manifests/tags/added-in-window/current/link", digest_c.encode())
        with psycopg.connect(self.dsn, autocommit=True) as conn:   # what 1.10's core writes for them
            for repo, tag, d in ((pushed, "pushed-in-window", digest), (added, "added-in-window", digest_c)):
                conn.execute("""INSERT INTO artifact (project_id, repo, tag, digest, kind, creation_time, push_time)
                                SELECT project_id, %s, %s, %s, 'Docker-Image', now(), now() FROM project
                                WHERE name = %s""", (repo, tag, d, repo.split("/")[0]))
            conn.execute("UPDATE artifact SET digest = %s WHERE repo = %s AND tag = %s", (digest_b, moved, tag_a))
        return [f"push {pushed}:pushed-in-window", f"tag {moved}:{tag_a} moved", f"tag {added}:added-in-window"]

    def undo(self) -> None:
        for p in self.created:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        for p, data in self.restored.items():
            _replace(p, data)


def _replace(p: Path, data: bytes) -> None:
    """A new file in p's place (a tree copied with hard links, cp -al, keeps its original intact)."""
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, p)


def measure(scale: float, artifacts: int, args) -> dict:
    tree = tree_for(artifacts, args.out)
    base = Path(tempfile.mkdtemp(prefix="hu-bench-window-"))
    base.chmod(0o755)
    fig: dict = {"scale": scale, "artifacts": artifacts, "load": {}}
    try:
        site = build(base, scale, 1, tree, link_tree=False)   # the run is given --storage
        d, cluster, dsn = site.dir, site.cluster, site.dsn
        try:
            fig["db_artifact_rows"] = site.artifact_rows
            fig["storage_tags"] = tags = site.storage_tags
            log(f"built scale {scale}: {fig['db_artifact_rows']:,} 1.10 artifact rows ({tags:,} of them the "
                f"storage's tags), {artifacts:,} artifacts in storage, in {site.seconds:.0f} s "
                f"[load {load()}]")
            if args.harbor_sql:
                cluster.psql('CREATE DATABASE harbor_sql TEMPLATE registry')
            common = ["--harbor-yml", str(site.harbor_yml), "--backup-dir", str(d / "backup"), "--dsn", dsn,
                      "--storage", str(tree / "storage"), "--jobs", str(args.jobs), "--to", TARGET]

            fig["load"]["prepare"] = load()
            prepared, prep_s, prep_rss = run_cli(["run", *common, "--prepare"], base / "prepare.log")
            prefetch = next(s for s in prepared["steps"] if s["name"] == "prefetch")
            fig.update(prepare_s=prep_s, prepare_rss_mb=prep_rss, prefetch_s=prefetch["seconds"],
                       prefetch=prefetch["changed"])
            log(f"run --prepare: {prep_s:.1f} s (prefetch {fig['prefetch_s']:.1f} s), peak RSS {prep_rss:.0f} MB "
                f"[load {fig['load']['prepare']}]")

            rows: dict[str, list[tuple[str, str]]] = {}
            for repo, tag, digest, _mt, _size in read_rows(tree):
                rows.setdefault(repo, []).append((tag, digest))
            changes = Changes(tree, dsn)
            try:
                fig["changes"] = changes.make(rows)
                log("meanwhile: " + "; ".join(fig["changes"]))
                fig["load"]["window"] = load()
                window, run_s, run_rss = run_cli(["run", *common, "--yes"], base / "window.log",
                                                 profile=args.profile and args.profile.with_suffix(
                                                     f".{artifacts // 1000}k.txt"))
            finally:
                changes.undo()
            fig.update(run_s=run_s, window_rss_mb=run_rss, window_s=window["window_seconds"],
                       total_s=window["total_seconds"],
                       steps={s["name"]: s["seconds"] for s in window["steps"]},
                       artifacts_step=next(s for s in window["steps"] if s["name"] == "artifacts")["changed"],
                       backup_step=next(s for s in window["steps"] if s["name"] == "backup")["changed"],
                       prepare_steps={s["name"]: s["seconds"] for s in prepared["steps"]})
            fig["load"]["after"] = load()
            log(f"window run: window {fig['window_s']:.1f} s, total {fig['total_s']:.1f} s, peak RSS "
                f"{run_rss:.0f} MB [load {fig['load']['window']} -> {fig['load']['after']}]")

            fig["harbor_walk"] = walk_sample(cluster, tree, args.walk_repos)
            log(f"Harbor-shaped walk on {fig['harbor_walk']['artifacts']} artifacts: "
                f"{fig['harbor_walk']['artifacts_per_s']}/s [load {load()}]")
            if args.harbor_sql:
                sys.path.insert(0, str(HERE))
                from bench_db import harbor_files, run_harbor_sql
                files = harbor_files(Path(args.harbor_sql), versions.SCHEMA_VERSION[TARGET])
                fig["load"]["harbor_sql"] = load()
                fig["harbor_sql_s"], _ = run_harbor_sql(cluster, "harbor_sql", files)
                fig["harbor_sql_label"] = f"{fig['harbor_sql_s']:.1f} s measured here [load {load()}]"
            else:
                recorded = HARBOR_SQL_RECORDED.get(int(scale))
                fig["harbor_sql_s"] = recorded[0] if recorded else None
                fig["harbor_sql_label"] = (f"{recorded[1]}, recorded by bench_db.py for the seed alone at this scale "
                                           "(not measured here; --harbor-sql DIR measures it)") if recorded else \
                    "not measured (--harbor-sql DIR)"
        finally:
            cluster.stop()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return fig


def walk_sample(cluster, tree: Path, repos: int) -> dict:
    """Harbor's walk (artifacts_baseline.harbor_walk) over the 2.4-shaped rows of a few of the tree's
    repositories, through docker-registry serving the tree."""
    names = sorted({r for r, *_ in read_rows(tree)})[:repos]
    cluster.dropdb("walk")
    load_template(cluster, "walk", tree, repos=set(names))
    with Registry(storage_root=tree / "storage") as registry:
        return harbor_walk(registry.addr, cluster.dsn("walk"))


def report(figs: list[dict]) -> None:
    print()
    for f in figs:
        walk_s = f["artifacts"] / f["harbor_walk"]["artifacts_per_s"]
        harbor = (f["harbor_sql_s"] or 0) + walk_s
        steps = f["steps"]
        own = f["window_s"] - sum(v or 0 for v in steps.values())
        print(f"scale {f['scale']:g} + {f['artifacts']:,} artifacts in storage ({f['db_artifact_rows']:,} 1.10 "
              f"artifact rows, {f['storage_tags']:,} of them the storage's tags)")
        print(f"  run --prepare (Harbor serving): {f['prepare_s']:.1f} s, prefetch {f['prefetch_s']:.1f} s "
              f"({f['prefetch']['repositories']:,} repositories, {f['prefetch']['bytes'] / 2**20:.0f} MiB), peak RSS "
              f"{f['prepare_rss_mb']:.0f} MB [load {f['load']['prepare']}]")
        print("  in the window: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items() if v is not None)
              + f", the rest (preflight, journal, census) {own:.1f} s")
        b = f["backup_step"]
        if "copy_seconds" in b:
            synced = b.get("prepared")
            print(f"  backup: data folder copy {b['copy_seconds']:.1f} s ("
                  + (f"the copy run --prepare took finished: {synced['copied']:,} of {synced['files']:,} files "
                     f"copied again, {synced['removed']:,} removed" if synced else "in full")
                  + f"), proof (throwaway server + census) {b['prove_seconds']:.1f} s; run --prepare steps: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in f["prepare_steps"].items() if v is not None))
        a = f["artifacts_step"]
        print(f"  artifacts: {a.get('prefetched', 0):,} repositories from the prefetch, {a.get('reread', 0):,} read "
              f"again ({'; '.join(f['changes'])})")
        met = "met" if f["window_s"] <= WINDOW_TARGET_S else "NOT met"
        print(f"  WINDOW {f['window_s']:.1f} s (target <= {WINDOW_TARGET_S:.0f} s at 350 + 110,000: {met}); total "
              f"{f['total_s']:.1f} s with prepare; peak RSS {f['window_rss_mb']:.0f} MB "
              f"[load {f['load']['window']} -> {f['load']['after']}]")
        print(f"  Harbor's own path, same data: SQL {f['harbor_sql_label']}; walk of {f['artifacts']:,} artifacts at "
              f"{f['harbor_walk']['artifacts_per_s']}/s (measured here on {f['harbor_walk']['artifacts']} of them) = "
              f"{walk_s:,.0f} s; together {harbor:,.0f} s, all of it downtime: {harbor / f['window_s']:.0f}x our "
              "window")
        top = sorted(((v or 0, k) for k, v in steps.items()), reverse=True)[:3]
        print("  dominant steps: " + ", ".join(f"{k} {v:.1f} s ({100 * v / f['window_s']:.0f}%)" for v, k in top))
    if len(figs) == 2:
        small, big = figs
        data = big["artifacts"] / small["artifacts"]
        rows = big["db_artifact_rows"] / small["db_artifact_rows"]
        print(f"\ngrowth {small['scale']:g} -> {big['scale']:g}: storage artifacts x{data:.1f}, database artifact "
              f"rows x{rows:.1f}")
        for name in [*small["steps"], "window", "prefetch (prepare)"]:
            a = small["window_s"] if name == "window" else small["prefetch_s"] if name.startswith("prefetch") \
                else small["steps"].get(name) or 0
            b = big["window_s"] if name == "window" else big["prefetch_s"] if name.startswith("prefetch") \
                else big["steps"].get(name) or 0
            ratio = b / a if a else float("nan")
            flag = "" if ratio <= max(data, rows) * 1.15 else "  <- grows faster than the data"
            print(f"  {name:<20} {a:7.1f} s -> {b:7.1f} s  x{ratio:.1f}{flag}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="100:22000,350:110000",
                    help="SCALE:ARTIFACTS,... (seed scale, artifacts in storage)")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--harbor-sql", help="Harbor's make/migrations/postgresql of 2.15: measure its SQL side by side")
    ap.add_argument("--walk-repos", type=int, default=8, help="repositories of the Harbor-shaped walk sample")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="where the storage trees are kept")
    ap.add_argument("--keep", action="store_true", help="keep the installations (printed)")
    ap.add_argument("--profile", type=Path, help="FILE: record the window run with py-spy (pip install py-spy) "
                    "into FILE.<N>k.txt, folded stacks")
    args = ap.parse_args(argv)
    args.out.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a stopped bench still stops its cluster
    figs = []
    for item in args.scales.split(","):
        scale, artifacts = item.split(":")
        figs.append(measure(float(scale), int(artifacts), args))
    report(figs)
    print("\n" + json.dumps(figs, default=str))


if __name__ == "__main__":
    main()
