"""The safety campaign: kill, fuzz and tamper with harbor-upgrade the way an adversarial
review does, and count what goes wrong.

    python bench/chaos.py                      # the review's sizes (about 30-40 minutes)
    python bench/chaos.py --quick              # a few of each, to try the script
    python bench/chaos.py --parts fuzz,tamper  # some parts only

Parts (each on sample installations built by ``demo.build``, in a folder of its own):
- ``run``: ``run`` SIGKILLed at random points (a wall-clock time, the N-th journal write,
  the N-th progress event), then run again until it is through; each series ends compared
  with an uninterrupted run (normalized schema and data, the migrated harbor.yml).
- ``prepare``: the same series after ``run --prepare``, itself killed 1-3 times at random
  points (a time, the N-th progress event) and run again until through (no partial prefetch
  file may stay behind) or, one time in four, left killed once (the window reads storage); the
  in-window run is then killed as in ``run`` and compared with the same uninterrupted run made
  without a prepare (the prefetch must give the rows reading gives; the data folder copy the
  prepare took must be taken by the window's backup or removed).
- ``pg-upgrade``, ``restore``, ``backup``: each killed at a random time, then run again.
- ``rollback``: a run through (its backup a copy of the stopped cluster's data folder), then
  ``rollback`` killed at a random point (a time, the N-th progress event) and run again until
  through: the 1.10 database served again where the DSN expects it, with its rows as before.
- ``fuzz``: mutated harbor.yml files through ``migrate``, ``plan``, ``run --dry-run`` and
  ``artifacts`` (in-process, in worker processes with a memory limit and an alarm).
- ``storage``: hostile registry storage trees (bench/chaos_storage.py).
- ``tamper``: a backup's manifest edited with its checksum recomputed, three ways (an entry
  that is a symlink out of the target, a ``../`` path, a folder outside chowned/chmodded).

Watched throughout: tracebacks (and ``internal-error``) in any output, hangs, the sample's
passwords in any output or in any process's arguments (sampled from /proc every 20 ms),
a complete backup deleted or changed, servers or scratch folders left behind, and writes
outside the folders a command was given. The last lines print every count; the campaign
passes when all the failure counts are 0.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "src"), str(REPO), str(HERE)]  # REPO: tests.support

from harbor_upgrade import demo, versions  # noqa: E402
from harbor_upgrade.artifacts.prefetch import prefetch_path  # noqa: E402
from harbor_upgrade.backup.manifest import KEY_ENV  # noqa: E402
from harbor_upgrade.backup.prepared import prepared_folder  # noqa: E402
from harbor_upgrade.journal import CRASH_AFTER_WRITES_ENV as CRASH_AFTER_WRITES  # noqa: E402
from harbor_upgrade.postgres.cluster import LocalCluster  # noqa: E402
from harbor_upgrade.report import CRASH_AFTER_PROGRESS_ENV as CRASH_AFTER_PROGRESS  # noqa: E402
from tests.support.procs import process_argvs  # noqa: E402

SECRETS = (demo.DB_PASSWORD, demo.ADMIN_PASSWORD)
TIMEOUT = 300          # a command that takes longer than this has hung
LOCKED = 4             # a killed run's server session may linger a moment
FAILURES = ("traceback", "hang", "secret-in-output", "secret-in-argv", "backup-lost", "backup-replaced",
            "leftover-server", "leftover-folder", "outside-write", "not-identical", "not-continued",
            "database-lost", "tamper-accepted", "unexpected-exit",
            # the storage part's own (bench/chaos_storage.py)
            "outside-read", "not-reported", "control-in-output", "rows-differ", "memory")


@dataclasses.dataclass
class Tally:
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict = dataclasses.field(default_factory=dict)

    def bad(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, detail[-1500:])

    def add(self, kind: str, n: int = 1) -> None:
        self.counts[kind] += n


TALLY = Tally()


# --------------------------------------------------------------------------- watching
class ArgvWatch(threading.Thread):
    """Samples every process's command line for the sample's passwords."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.samples = 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.02):
            self.samples += 1
            for pid, argv in process_argvs():
                args = " ".join(argv)
                if pid != me and any(s in args for s in SECRETS):
                    TALLY.bad("secret-in-argv", f"pid {pid}: {args}")


def check_output(what: str, code: int | None, out: str) -> None:
    if "Traceback (most recent call last)" in out or "internal-error" in out:
        TALLY.bad("traceback", f"{what} exited {code}:\n{out}")
    for s in SECRETS:
        if s in out:
            TALLY.bad("secret-in-output", f"{what}: {out}")


def launch(what: str, cmd: list[str], env: dict | None = None, kill_after: float | None = None,
           ok: tuple[int, ...] = (0,), outputs: list[str] | None = None) -> int:
    """Run a command (in its own process group); SIGKILL the group after kill_after seconds.
    Returns the exit code (-9 when killed by us or by its crash hook); its output is appended
    to outputs when given."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=kill_after if kill_after is not None else TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=60)
        if kill_after is None:
            TALLY.bad("hang", what)
            return -signal.SIGKILL
    text = out.decode(errors="replace")
    if outputs is not None:
        outputs.append(text)
    check_output(what, p.returncode, text)
    if p.returncode not in ok and p.returncode != -signal.SIGKILL:
        TALLY.bad("unexpected-exit", f"{what} exited {p.returncode}:\n{text}")
    return p.returncode


def tool(*args: object) -> list[str]:
    return [sys.executable, "-m", "harbor_upgrade", *map(str, args)]


def postgres_servers_under(base: Path) -> list[tuple[int, str]]:
    """(pid, data folder) of every PostgreSQL server whose -D is below base."""
    found = []
    for pid, argv in process_argvs():
        if argv[0].endswith("postgres") and "-D" in argv:
            d = argv[argv.index("-D") + 1]
            if d.startswith(str(base)):
                found.append((pid, d))
    return found


def check_leftovers(what: str, base: Path, allowed: set[str], scratch: Path | None) -> None:
    for pid, d in postgres_servers_under(base):
        if str(Path(d).resolve()) not in allowed:
            TALLY.bad("leftover-server", f"{what}: postgres {pid} on {d}")
            with contextlib.suppress(Exception):
                LocalCluster(Path(d)).stop()
    if scratch is not None and scratch.exists():
        left = [p.name for p in scratch.iterdir()]
        if left:
            TALLY.bad("leftover-folder", f"{what}: {scratch}: {left}")
            for p in scratch.iterdir():
                shutil.rmtree(p, ignore_errors=True)


def digest_tree(root: Path) -> str:
    """One digest over names, modes, owners and contents below root (symlinks not followed)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = Path(dirpath, name)
            st = p.lstat()
            h.update(f"{p.relative_to(root)}|{st.st_mode}|{st.st_uid}|{st.st_gid}".encode())
            if p.is_file() and not p.is_symlink():
                h.update(p.read_bytes())
    return h.hexdigest()


def sample(base: Path, name: str) -> demo.DemoInstallation:
    return demo.build(base / name)


def scratch_env(base: Path) -> tuple[dict, Path]:
    """Environment whose TMPDIR is a folder of ours, so scratch clusters left behind are found."""
    scratch = base / "tmp"
    scratch.mkdir(mode=0o755, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_AFTER_WRITES, CRASH_AFTER_PROGRESS)}
    env["TMPDIR"] = str(scratch)
    env[KEY_ENV] = str(base / "key" / "backup.key")   # the campaign's own, never the machine's
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return env, scratch


# --------------------------------------------------------------------------- run
def run_cmd(inst: demo.DemoInstallation, backup_dir: Path | None = None, prepare: bool = False) -> list[str]:
    return tool("run", "--harbor-yml", inst.harbor_yml, "--backup-dir", backup_dir or inst.backup_dir, "--dsn",
                inst.dsn, "--prepare" if prepare else "--yes", "--json")


class BackupWatch:
    """A complete pre-upgrade backup, once seen, must never change or disappear."""

    def __init__(self, backup_dir: Path) -> None:
        self.dir = backup_dir / "backup"
        self.digest: str | None = None

    def check(self, what: str) -> None:
        manifest = self.dir / "manifest.json"
        if self.digest is None:
            if manifest.exists() and (self.dir / "manifest.sha256").exists():
                self.digest = digest_tree(self.dir)
                schema = json.loads(manifest.read_text()).get("schema_version")
                if schema not in (15, None):
                    TALLY.bad("backup-replaced", f"{what}: the first complete backup holds schema {schema}")
            return
        if not manifest.exists():
            TALLY.bad("backup-lost", f"{what}: {self.dir} has no manifest any more")
        elif digest_tree(self.dir) != self.digest:
            TALLY.bad("backup-replaced", f"{what}: {self.dir} changed after it was complete")


def migrated_yml(inst: demo.DemoInstallation) -> str:
    """The harbor.yml a run wrote, with the installation's own folder made comparable."""
    return (inst.harbor_yml.parent / f"harbor-{versions.TARGET}.yml").read_text().replace(str(inst.dir), "<dir>")


RUN_KILLS = ("timed", "timed", "writes", "progress")
PREPARE_KILLS = ("timed", "progress")   # run --prepare writes no journal


def one_kill(rng: random.Random, duration: float, kinds: tuple[str, ...] = RUN_KILLS) -> tuple[str, float]:
    kind = rng.choice(kinds)
    if kind == "timed":
        return kind, round(rng.uniform(0.2, max(0.5, duration)), 2)
    return kind, rng.randint(1, 3) if kind == "writes" else rng.randint(1, 6)


def until_through(what: str, cmd: list[str], env: dict, rng: random.Random, kills: int, duration: float,
                  kinds: tuple[str, ...], ok: tuple[int, ...], after=None,
                  outputs: list[str] | None = None, through: bool = True) -> tuple[int, list[int]]:
    """cmd SIGKILLed kills times at random points (one_kill), then run until it exits 0 (a kill point
    past its end leaves it through; without through, it is left killed); after(description) after
    each attempt. (kills done, exit codes); not-continued when it never got through."""
    done_kills = 0
    codes: list[int] = []
    for _attempt in range(kills + 8):
        kill = one_kill(rng, duration, kinds) if done_kills < kills else None
        e = dict(env)
        if kill and kill[0] == "writes":
            e[CRASH_AFTER_WRITES] = str(kill[1])
        elif kill and kill[0] == "progress":
            e[CRASH_AFTER_PROGRESS] = str(kill[1])
        code = launch(f"{what} (kill {kill})", cmd, e, kill_after=kill[1] if kill and kill[0] == "timed" else None,
                      ok=ok, outputs=outputs)
        codes.append(code)
        if after is not None:
            after(f"{what} after kill {kill}")
        if code == -signal.SIGKILL:
            done_kills += 1
            if not through and done_kills >= kills:
                return done_kills, codes
        elif code == LOCKED:
            time.sleep(1)
        elif code == 0:
            return done_kills, codes
    TALLY.bad("not-continued", f"{what} never completed: exits {codes}")
    return done_kills, codes


def prepare_series(inst: demo.DemoInstallation, rng: random.Random, env: dict, duration: float) -> bool:
    """run --prepare killed 1-3 times, then through (nothing but the prefetch file left in its folder);
    one time in four the operator goes on to the window after the first kill, without a prefetch."""
    through = rng.random() >= 0.25
    done, codes = until_through(f"run --prepare in {inst.dir}", run_cmd(inst, prepare=True), env, rng,
                                rng.randint(1, 3) if through else 1, duration, PREPARE_KILLS, ok=(0,), through=through)
    TALLY.add("prepare-kills", done)
    if not through:
        TALLY.add("prepare-left-killed")
        return True
    folder = prefetch_path(inst.backup_dir).parent
    left = sorted(p.name for p in folder.iterdir() if p.name != prefetch_path(inst.backup_dir).name) \
        if folder.is_dir() else []
    if left:
        TALLY.bad("leftover-folder", f"run --prepare killed {done} times: {folder} holds {left}")
    return bool(codes) and codes[-1] == 0


def run_series(base: Path, rng: random.Random, kills: int, straight_result, window_start, duration: float,
               prepare: float | None = None) -> int:
    """A sample run killed `kills` times then through, compared with the uninterrupted one; with
    prepare (its seconds), after a run --prepare killed and run again (prepare_series)."""
    from tests.support.db_normalize import ClusterPsql, compare_data, compare_schema, data, schema
    inst = sample(base, f"killed-{rng.randrange(10**9)}")
    env, scratch = scratch_env(base)
    watch = BackupWatch(inst.backup_dir)
    try:
        if prepare is not None and not prepare_series(inst, rng, env, prepare):
            return 0
        outputs: list[str] = []
        done_kills, codes = until_through(f"run in {inst.dir}", run_cmd(inst), env, rng, kills, duration, RUN_KILLS,
                                          ok=(0, LOCKED), after=watch.check, outputs=outputs)
        if codes[-1] != 0:
            return done_kills
        if prepare is not None:
            count_prefetched(outputs)
            if prepared_folder(inst.backup_dir).exists():   # the window takes the data folder copy or removes it
                TALLY.bad("leftover-folder", f"{prepared_folder(inst.backup_dir)} stays after the window's run")
        check_leftovers("run series", base, {str(inst.cluster.datadir.resolve())}, scratch)
        straight_schema, straight_data, src_ids, straight_yml = straight_result
        window = (window_start, dt.datetime.utcnow())
        pg = ClusterPsql(inst.cluster)
        diffs = compare_schema(straight_schema, schema(pg, "registry")) + \
            compare_data(straight_data, data(pg, "registry", src_ids, window))[0]
        killed_yml = migrated_yml(inst)
        if diffs or killed_yml != straight_yml:
            TALLY.bad("not-identical", f"{inst.dir}: {diffs[:5]} yml equal: {killed_yml == straight_yml}")
        return done_kills
    finally:
        inst.cluster.stop()


def count_prefetched(outputs: list[str]) -> None:
    """How many repositories the in-window runs took from the prefetch and read again (the
    artifacts step's figures of the runs that finished it)."""
    for text in outputs:
        start = 0 if text.startswith("{") else text.find("\n{") + 1   # the report; stderr's lines around it
        try:
            report = json.loads(text[start:text.rfind("\n}") + 2])
        except ValueError:
            continue
        for step in report.get("steps", ()):
            if step.get("name") == "artifacts" and isinstance(step.get("changed"), dict):
                TALLY.add("window-prefetched", step["changed"].get("prefetched", 0))
                TALLY.add("window-reread", step["changed"].get("reread", 0))


def part_run(base: Path, rng: random.Random, kills: int, prepare: bool = False) -> None:
    """Series of killed runs (after a killed run --prepare with prepare) against one uninterrupted run."""
    from tests.support.db_normalize import ClusterPsql, data, schema, source_ids
    window_start = dt.datetime.utcnow()
    straight = sample(base, "straight")
    try:
        env, scratch = scratch_env(base)
        prepare_seconds = None
        if prepare:   # its seconds, for the kill times (into a folder of its own: the straight run has none)
            t0 = time.monotonic()
            if launch("run --prepare (uninterrupted)", run_cmd(straight, straight.dir / "prepared", True), env) != 0:
                return
            prepare_seconds = time.monotonic() - t0
        t0 = time.monotonic()
        if launch("run (uninterrupted)", run_cmd(straight), env) != 0:
            return
        duration = time.monotonic() - t0
        src_ids = source_ids(ClusterPsql(straight.cluster), "registry")
        pg = ClusterPsql(straight.cluster)
        yml = migrated_yml(straight)
        later = dt.datetime.utcnow() + dt.timedelta(hours=2)  # covers the killed series' migration stamps too
        result = (schema(pg, "registry"), data(pg, "registry", src_ids, (window_start, later)), src_ids, yml)
    finally:
        straight.cluster.stop()
    done = series = 0
    while done < kills:
        series += 1
        done += run_series(base, rng, min(10, kills - done), result, window_start, duration, prepare_seconds)
    name = "window" if prepare else "run"
    TALLY.add(f"{name}-kills", done)
    TALLY.add(f"{name}-series", series)


# --------------------------------------------------------------------------- pg-upgrade
def part_pg_upgrade(base: Path, rng: random.Random, kills: int) -> None:
    try:
        newer = demo.newer_binaries(demo.find_binaries().major)
    except Exception as e:  # noqa: BLE001 - the campaign says why it skipped
        print(f"pg-upgrade part skipped: {e}")
        return
    for i in range(kills):
        inst = sample(base, f"pgup-{i}")
        env, scratch = scratch_env(base)
        old = inst.cluster.datadir
        before = inst.cluster.psql("SELECT count(*) FROM artifact", dbname="registry").strip()
        inst.cluster.stop()
        new = old.parent / f"pg{newer.major}"
        cmd = tool("pg-upgrade", "--old-datadir", old, "--new-datadir", new, "--new-bindir", newer.bindir,
                   "--mode", rng.choice(("copy", "link")))
        launch("pg-upgrade (killed)", cmd, env, kill_after=rng.uniform(0.2, 6.0), ok=(0,))
        code = launch("pg-upgrade (again)", cmd, env, ok=(0,))
        if code != 0:
            TALLY.bad("not-continued", f"pg-upgrade rerun exited {code} in {inst.dir}")
        check_leftovers("pg-upgrade", base, set(), scratch)
        cluster = LocalCluster(new, newer) if code == 0 else inst.cluster
        cluster.socket_dir = inst.cluster.socket_dir
        try:
            cluster.start()
            after = cluster.psql("SELECT count(*) FROM artifact", dbname="registry").strip()
            if after != before:
                TALLY.bad("database-lost", f"{inst.dir}: {before} artifact rows before, {after} after")
        except Exception as e:  # noqa: BLE001
            TALLY.bad("database-lost", f"{inst.dir}: cluster does not start after the rerun: {e}")
        finally:
            cluster.stop()
        TALLY.add("pg-upgrade-kills")
        shutil.rmtree(inst.dir, ignore_errors=True)


# --------------------------------------------------------------------------- backup / restore
def backup_cmd(inst: demo.DemoInstallation, to: Path) -> list[str]:
    return tool("backup", "--dsn", inst.dsn, "--harbor-dir", inst.harbor_yml.parent, "--data-volume",
                inst.data_volume, "--to", to)


def part_backup(base: Path, rng: random.Random, kills: int) -> None:
    inst = sample(base, "backup-site")
    env, scratch = scratch_env(base)
    try:
        for i in range(kills):
            to = base / f"backup-{i}"
            launch("backup (killed)", backup_cmd(inst, to), env, kill_after=rng.uniform(0.1, 4.0))
            # a half-written folder: the rerun continues, or refuses with a clear message
            code = launch("backup (again)", backup_cmd(inst, to), env, ok=(0, 2, 4))
            if code != 0:
                to = base / f"backup-{i}-fresh"
                code = launch("backup (new folder)", backup_cmd(inst, to), env)
            if code == 0:
                launch("backup verify (killed)", tool("backup", "verify", to), env, kill_after=rng.uniform(0.2, 3.0))
                launch("backup verify", tool("backup", "verify", to), env)
            check_leftovers("backup", base, {str(inst.cluster.datadir.resolve())}, scratch)
            TALLY.add("backup-kills")
    finally:
        inst.cluster.stop()


def table_count(inst: demo.DemoInstallation) -> str:
    try:
        return inst.cluster.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                                 dbname="registry").strip()
    except Exception:  # noqa: BLE001 - no database at all
        return "0"


def part_restore(base: Path, rng: random.Random, kills: int) -> None:
    inst = sample(base, "restore-site")
    env, scratch = scratch_env(base)
    try:
        b = base / "restore-backup"
        if launch("backup", backup_cmd(inst, b), env) != 0:
            return
        want = json.loads((b / "manifest.json").read_text())
        launch("db migrate", tool("db", "migrate", "--dsn", inst.dsn), env)
        cmd = tool("restore", "--from", b, "--dsn", inst.dsn, "--harbor-dir", inst.harbor_yml.parent,
                   "--data-volume", inst.data_volume, "--yes")
        for _ in range(kills):
            launch("restore (killed)", cmd, env, kill_after=rng.uniform(0.1, 5.0))
            if table_count(inst) in ("0", ""):
                TALLY.bad("database-lost", f"{inst.dir}: the registry database has no tables after a killed restore")
            code = launch("restore (again)", cmd, env, ok=(0,))
            if code != 0:
                TALLY.bad("not-continued", f"restore rerun exited {code}")
            got = inst.cluster.psql("SELECT version FROM schema_migrations", dbname="registry").strip()
            if str(want.get("schema_version")) != got:
                TALLY.bad("database-lost", f"restored schema {got}, backup holds {want.get('schema_version')}")
            check_leftovers("restore", base, {str(inst.cluster.datadir.resolve())}, scratch)
            TALLY.add("restore-kills")
            launch("db migrate", tool("db", "migrate", "--dsn", inst.dsn), env)
    finally:
        inst.cluster.stop()


def part_rollback(base: Path, rng: random.Random, kills: int) -> None:
    inst = sample(base, "rollback-site")
    env, scratch = scratch_env(base)
    allowed = {str(inst.cluster.datadir.resolve())}
    try:
        before = inst.cluster.psql("SELECT count(*) FROM artifact", dbname="registry").strip()
        for i in range(kills):
            b = base / f"run-{i}"
            if launch("run (to roll back)", run_cmd(inst, b), env) != 0:
                return
            watch = BackupWatch(b)
            watch.check("before the rollback")
            done, codes = until_through(f"rollback of {b}", tool("rollback", "--backup-dir", b, "--dsn", inst.dsn,
                                                                 "--yes", "--json"),
                                        env, rng, 1, 8.0, ("timed", "timed", "progress"), ok=(0,), after=watch.check)
            TALLY.add("rollback-kills", done)
            if codes[-1] != 0:
                break
            try:
                got = (inst.cluster.psql("SELECT version FROM schema_migrations", dbname="registry").strip(),
                       inst.cluster.psql("SELECT count(*) FROM artifact", dbname="registry").strip())
            except Exception as e:  # noqa: BLE001 - said in the tally
                TALLY.bad("not-continued", f"rollback of {b} (killed {done} times) went through but the database is "
                                           f"not served: {e}")
                inst.cluster.start()
                continue
            if got != ("15", before):
                TALLY.bad("database-lost", f"rolled back {b}: schema {got[0]}, {got[1]} artifact rows; before the "
                                           f"run 15, {before}")
            # the data folders a rollback keeps are the operator's to remove once Harbor works
            for kept in inst.cluster.datadir.parent.glob(f"{inst.cluster.datadir.name}.before-restore-*"):
                shutil.rmtree(kept, ignore_errors=True)
            check_leftovers("rollback", base, allowed, scratch)
    finally:
        inst.cluster.stop()


# --------------------------------------------------------------------------- tamper
def rewrite_manifest(b: Path, change) -> None:
    """Edit the manifest as someone who can write the backup folder can: the change, then its
    checksum file recomputed (a keyed MAC kept elsewhere must make this fail)."""
    m = json.loads((b / "manifest.json").read_text())
    change(b, m)
    text = json.dumps(m, indent=1, sort_keys=True) + "\n"
    (b / "manifest.json").write_text(text)
    (b / "manifest.sha256").write_text(hashlib.sha256(text.encode()).hexdigest() + "  manifest.json\n")


def add_file(b: Path, m: dict, path: str, body: bytes) -> None:
    """A file entry and its stored copy: files/harbor/<path> inside the backup folder."""
    stored = b / "files" / "harbor" / path
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(body)
    e = next(f for f in m["files"] if f["type"] == "file" and f["area"] == "harbor")
    m["files"].append({**e, "path": path, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()})


def part_tamper(base: Path, rng: random.Random) -> None:
    inst = sample(base, "tamper-site")
    env, scratch = scratch_env(base)
    # harbor_dir is base/tamper-site/harbor: "../../outside" from it is this folder
    outside = base / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("an operator's file\n")
    try:
        b0 = base / "tamper-backup"
        if launch("backup", backup_cmd(inst, b0), env) != 0:
            return

        def symlink_entry(b, m):
            e = next(f for f in m["files"] if f["type"] == "dir" and f["area"] == "harbor")
            m["files"].append({**e, "path": "escape", "type": "symlink", "target": str(outside), "mode": 0o777})
            add_file(b, m, "escape/written.txt", b"through a symlink\n")

        def dotdot(b, m):
            add_file(b, m, "../../outside/dotdot.txt", b"up and out\n")

        def chown_outside(b, m):
            e = next(f for f in m["files"] if f["type"] == "dir" and f["area"] == "harbor")
            m["files"].append({**e, "path": "../../outside", "uid": 65534, "gid": 65534, "mode": 0o777})

        for name, change in (("symlink", symlink_entry), ("dotdot", dotdot), ("chown", chown_outside)):
            b = base / f"tampered-{name}"
            shutil.copytree(b0, b, symlinks=True)
            try:
                rewrite_manifest(b, change)
            except (StopIteration, KeyError) as e:
                print(f"tamper {name}: the manifest's shape changed ({e!r}); adapt the campaign")
                continue
            before = digest_tree(outside)
            v = launch(f"backup verify ({name})", tool("backup", "verify", b), env, ok=(0, 2, 4, 5))
            r = launch(f"restore ({name})", tool("restore", "--from", b, "--dsn", inst.dsn, "--harbor-dir",
                                                 inst.harbor_yml.parent, "--data-volume", inst.data_volume, "--yes"),
                       env, ok=(0, 2, 4, 5))
            if v == 0 or r == 0:
                TALLY.bad("tamper-accepted", f"{name}: verify exited {v}, restore {r}")
            if digest_tree(outside) != before:
                TALLY.bad("outside-write", f"{name}: {outside} changed")
            TALLY.add("tamper-cases")
        check_leftovers("tamper", base, {str(inst.cluster.datadir.resolve())}, scratch)
    finally:
        inst.cluster.stop()


# --------------------------------------------------------------------------- fuzz
MUTATIONS = ("drop-line", "dup-line", "retype", "bytes", "deep", "aliases", "bigint", "indent", "control",
             "truncate", "utf16", "tabs", "banana", "empty-section", "swap-lines")


def mutate(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        m = rng.choice(MUTATIONS)
        i = rng.randrange(len(lines)) if lines else 0
        if m == "drop-line" and lines:
            del lines[i]
        elif m == "dup-line" and lines:
            lines.insert(i, lines[i])
        elif m == "retype" and lines and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = key + ": " + rng.choice(("[1, 2]", "{a: b}", "~", "''", "-1", "1e999", "!!binary aGk=",
                                                "&x 3", "*nope", "[", "{{")) + "\n"
        elif m == "bytes":
            lines.insert(i, rng.choice(("\udcff\udcfe".encode("utf-8", "surrogateescape").decode("latin-1"),
                                        "\x00", "\ufeff")) + "x: 1\n")
        elif m == "deep":
            lines.append("deep: " + "[" * rng.choice((100, 1000, 20000)) + "\n")
        elif m == "aliases":
            bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]\n"]
            bomb += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]\n" for k in range(1, 12)]
            lines += bomb
        elif m == "bigint":
            lines = [ln for ln in lines if not ln.startswith("_version")] + ["_version: " + "9" * 5000 + "\n"]
        elif m == "indent" and lines:
            lines[i] = " " * rng.randint(1, 7) + lines[i]
        elif m == "control" and lines:
            lines[i] = lines[i].replace(":", ":\x1b[31m", 1)
        elif m == "truncate" and lines:
            lines = lines[:i]
        elif m == "tabs" and lines:
            lines[i] = lines[i].replace("  ", "\t")
        elif m == "banana":
            lines.append(rng.choice(("storage_service: banana\n", "database: banana\n", "http: 80\n",
                                     "https: []\n", "data_volume: [/data]\n", "log: {level: [x]}\n")))
        elif m == "empty-section":
            lines.append(rng.choice(("http:\n", "https:\n", "external_redis:\n  host: r:6379\n")))
        elif m == "swap-lines" and len(lines) > 1:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
    data = "".join(lines)
    if rng.random() < 0.05:
        return data.encode("utf-16")
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data


def fuzz_inputs(n: int, rng: random.Random, d: Path, site_yml: Path, shared: Path | None) -> list[Path]:
    seeds = [site_yml.read_text()]
    if shared is not None:
        seeds += [p.read_text() for p in sorted((shared / "fixtures" / "harbor-yml").glob("*/harbor.yml*"))]
    files = []
    for i in range(n):
        f = d / f"fuzz-{i}.yml"
        if i % 100 == 98:
            f.symlink_to("/dev/zero")
        elif i % 100 == 99:
            os.mkfifo(f)
        else:
            f.write_bytes(mutate(rng.choice(seeds), rng))
        files.append(f)
    return files


WORKER = r"""
import io, json, os, resource, signal, sys, contextlib
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from harbor_upgrade.cli import main
class Hang(Exception): pass
def alarm(*_): raise Hang()
signal.signal(signal.SIGALRM, alarm)
for line in sys.stdin:
    case = json.loads(line)
    out, err = io.StringIO(), io.StringIO()
    signal.alarm(20)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(case["args"])
        kind = "ok"
    except Hang:
        kind, code = "hang", None
    except SystemExit as e:
        kind, code = "ok", e.code
    except BaseException as e:
        import traceback
        kind, code = "traceback", None
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
    print(json.dumps({"i": case["i"], "kind": kind, "code": code, "out": (out.getvalue() + err.getvalue())[-4000:]}),
          flush=True)
"""


def part_fuzz(base: Path, rng: random.Random, n: int, shared: Path | None) -> None:
    inst = sample(base, "fuzz-site")
    try:
        d = base / "fuzz"
        d.mkdir()
        files = fuzz_inputs(n, rng, d, inst.harbor_yml, shared)
        cases = []
        for f in files:
            out = d / (f.name + ".out")
            cases += [
                ["migrate", "-i", str(f), "-o", str(out)],
                ["plan", "--harbor-yml", str(f), "--dsn", inst.dsn, "--json"],
                ["run", "--harbor-yml", str(f), "--backup-dir", str(d / "b"), "--dsn", inst.dsn, "--dry-run",
                 "--yes"],
                ["artifacts", "--harbor-yml", str(f), "--dsn", inst.dsn],
            ]
        pending = list(enumerate(cases))
        while pending:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
            w = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=env, text=True)
            lines = [json.dumps({"i": i, "args": a}) + "\n" for i, a in pending]
            feed = threading.Thread(target=lambda w=w, lines=lines: (w.stdin.writelines(lines), w.stdin.close()),
                                    daemon=True)
            feed.start()
            seen = set()
            for line in w.stdout:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                seen.add(r["i"])
                what = " ".join(cases[r["i"]][:1] + [Path(cases[r["i"]][2]).name])
                if r["kind"] == "hang":
                    TALLY.bad("hang", what)
                elif r["kind"] == "traceback":
                    TALLY.bad("traceback", f"{what}:\n{r['out']}")
                else:
                    check_output(what, r["code"], r["out"])
                    if r["code"] not in (0, 1, 2, 3, 4, 5):
                        TALLY.bad("unexpected-exit", f"{what} exited {r['code']}:\n{r['out']}")
                TALLY.add("fuzz-runs")
            w.wait()
            rest = [(i, a) for i, a in pending if i not in seen]
            if rest and w.returncode != 0:
                i, a = rest[0]
                TALLY.bad("traceback", f"worker died ({w.returncode}) on {' '.join(a[:3])}")
                rest = rest[1:]
            pending = rest
        TALLY.add("fuzz-files", len(files))
    finally:
        inst.cluster.stop()


# --------------------------------------------------------------------------- storage
def part_storage(base: Path, rng: random.Random, n: int) -> None:
    try:
        import chaos_storage
    except ImportError:
        print("storage part skipped: bench/chaos_storage.py is not there")
        return
    counts = chaos_storage.campaign(base / "storage", n, seed=rng.randrange(10**6))
    for k, v in counts.items():
        TALLY.counts[k] += v


# --------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="fuzz,tamper,storage,backup,restore,rollback,pg-upgrade,run,prepare")
    ap.add_argument("--quick", action="store_true", help="a few of each")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-kills", type=int, default=50)
    ap.add_argument("--window-kills", type=int, default=20, help="kills of the in-window run after a prepare")
    ap.add_argument("--pg-kills", type=int, default=20)
    ap.add_argument("--restore-kills", type=int, default=20)
    ap.add_argument("--backup-kills", type=int, default=20)
    ap.add_argument("--rollback-kills", type=int, default=8)
    ap.add_argument("--fuzz", type=int, default=500, help="fuzzed harbor.yml files (each through 4 commands)")
    ap.add_argument("--storage", type=int, default=25, help="hostile storage cases")
    ap.add_argument("--keep", action="store_true", help="keep the campaign's folder")
    a = ap.parse_args()
    if a.quick:
        a.run_kills, a.pg_kills, a.restore_kills, a.backup_kills, a.fuzz, a.storage = 6, 2, 2, 2, 20, 25
        a.window_kills, a.rollback_kills = 4, 2
    rng = random.Random(a.seed)
    shared = REPO.parent / "shared"
    shared = shared if (shared / "fixtures").is_dir() else None
    base = Path(tempfile.mkdtemp(prefix="harbor-upgrade-chaos-", dir="/tmp"))
    base.chmod(0o755)
    watch = ArgvWatch()
    watch.start()
    t0 = time.monotonic()
    parts = a.parts.split(",")
    try:
        for part in parts:
            t = time.monotonic()
            print(f"== {part}", flush=True)
            sub = base / part
            sub.mkdir()
            sub.chmod(0o755)
            if part == "run":
                part_run(sub, rng, a.run_kills)
            elif part == "prepare":
                part_run(sub, rng, a.window_kills, prepare=True)
            elif part == "pg-upgrade":
                part_pg_upgrade(sub, rng, a.pg_kills)
            elif part == "restore":
                part_restore(sub, rng, a.restore_kills)
            elif part == "rollback":
                part_rollback(sub, rng, a.rollback_kills)
            elif part == "backup":
                part_backup(sub, rng, a.backup_kills)
            elif part == "fuzz":
                part_fuzz(sub, rng, a.fuzz, shared)
            elif part == "storage":
                part_storage(sub, rng, a.storage)
            elif part == "tamper":
                part_tamper(sub, rng)
            else:
                raise SystemExit(f"unknown part {part}")
            print(f"   {time.monotonic() - t:.0f} s", flush=True)
    finally:
        watch.stop.set()
        watch.join()
        for pid, d in postgres_servers_under(base):
            TALLY.bad("leftover-server", f"end of campaign: postgres {pid} on {d}")
            with contextlib.suppress(Exception):
                LocalCluster(Path(d)).stop()
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\ncampaign: {', '.join(parts)} in {time.monotonic() - t0:.0f} s, seed {a.seed}, "
          f"{watch.samples} samples of every process's arguments")
    for k in sorted(k for k in TALLY.counts if k not in FAILURES):
        print(f"  {k:18} {TALLY.counts[k]}")
    failed = 0
    for k in FAILURES:
        print(f"  {k:18} {TALLY.counts[k]}")
        failed += TALLY.counts[k]
    for k, ex in TALLY.examples.items():
        print(f"\n-- first {k}:\n{ex}")
    print(f"\nchaos: {'PASS' if failed == 0 else 'FAIL'} ({failed} failures)")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
