"""The engine step: stop the old PostgreSQL server, upgrade its cluster into a folder beside
it, serve the new cluster with the old server's port and socket."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ...db.identity import answers, served_cluster, server_major
from ...errors import HarborUpgradeError, InvalidInput, UnsafeState
from ...installation import Installation
from ...journal import sha256_file
from ...postgres import upgrade as engine
from ...postgres.cluster import find_binaries
from ...postgres.layout import harbor_cluster, list_entries, read_pg_version
from ...postgres.server import Server
from ...postgres.upgrade import state_path
from ..context import Context, StepOutcome
from ..options import ENGINE_MODES, Options


def engine_new_datadir(old: Path, new_major: int) -> Path:
    """Beside the old cluster, never inside it: harbor-db's pgNN sub-folder when the old one
    is such a sub-folder (2.3+), else database-pgNN next to data_volume/database (9.6 kept
    its cluster at the top of that folder)."""
    if old.name.startswith("pg") and old.name[2:].isdigit():
        return old.parent / f"pg{new_major}"
    return old.with_name(f"{old.name}-pg{new_major}")


def engine_target(inst: Installation, opts: Options) -> dict:
    """Which cluster the engine step upgrades, with which binaries, into which folder; an
    operator error when any of it is missing or does not fit."""
    if opts.engine_mode not in ENGINE_MODES:
        raise InvalidInput(f"--engine-mode {opts.engine_mode!r} is not one of {', '.join(ENGINE_MODES)}",
                           reference="invalid-mode")
    db_dir = Path(inst.data_volume) / "database"
    if not db_dir.is_dir():
        raise InvalidInput(f"{db_dir} is not on this machine: the engine step upgrades only the cluster in the "
                           "installation's data_volume/database", reference="engine-no-local-cluster",
                           hint="upgrade an external database with its own tools, and run without --engine-bindir")
    old = harbor_cluster(db_dir)
    old_bin = find_binaries(major=old.major, bindir=opts.engine_old_bindir)
    if old_bin.major != old.major:
        raise InvalidInput(f"{old.path} is a PostgreSQL {old.pg_version} cluster but --engine-old-bindir "
                           f"{opts.engine_old_bindir} holds PostgreSQL {old_bin.major}", reference="datadir-version")
    new_bin = find_binaries(bindir=opts.engine_bindir)
    if new_bin.major <= old.major:
        raise InvalidInput(f"--engine-bindir {opts.engine_bindir} holds PostgreSQL {new_bin.major}, not newer than "
                           f"the cluster's {old.pg_version}", reference="engine-not-newer")
    return {"old_datadir": str(old.path), "old_version": old.pg_version, "old_bindir": str(old_bin.bindir),
            "new_bindir": str(new_bin.bindir), "new_major": new_bin.major,
            "new_datadir": str(engine_new_datadir(old.path, new_bin.major)), "mode": opts.engine_mode}


def engine_state(rec: dict) -> dict | None:
    """The state file upgrade_cluster writes last, once the new cluster is verified: a
    finished upgrade of this very old cluster, or None."""
    new = Path(rec["new_datadir"])
    try:
        state = json.loads(state_path(new).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if state.get("verified") and state.get("old_datadir") == rec["old_datadir"] \
            and state.get("new_major") == rec["new_major"] and read_pg_version(new) == str(rec["new_major"]):
        return state
    return None


def remove_half_made(rec: dict) -> None:
    """What a killed attempt left of the new cluster; the old one is as it was (a link-mode
    attempt that got as far as disabling it is refused before: see old_cluster_usable)."""
    new = Path(rec["new_datadir"])
    server = Server(rec["new_bindir"], new)
    if server.running():
        server.stop()
    shutil.rmtree(new, ignore_errors=True)
    engine.state_path(new).unlink(missing_ok=True)


def old_cluster_usable(rec: dict) -> None:
    """pg_upgrade --link renames the old global/pg_control before it links the files; once
    it has, the old cluster shares them with a new one that may have run: neither is safe
    to start or to remove without a look, so an interrupted link-mode attempt stops here."""
    old = Path(rec["old_datadir"])
    if rec["mode"] == "link" and (old / "global" / "pg_control.old").exists():
        raise UnsafeState(f"an interrupted link-mode upgrade left {old} sharing its files with {rec['new_datadir']}, "
                          "and the new cluster was not verified", reference="engine-link-interrupted",
                          hint="restore data_volume/database from your snapshot (link mode needs one), then run "
                               "again; or check the new cluster by hand and finish with harbor-upgrade pg-upgrade")


def step_engine(ctx: Context) -> StepOutcome:
    """Stop the old server (as the data folder's owner), upgrade its cluster into a new
    folder beside it, start the new cluster with the old server's port and socket."""
    say = ctx.progress.note
    rec = ctx.journal.last("engine-plan")
    if rec is None:
        target = engine_target(ctx.inst, ctx.opts)
        if list_entries(target["new_datadir"]):
            raise UnsafeState(f"{target['new_datadir']} exists and is not empty", reference="datadir-not-empty",
                              hint="move it away, then run again")
        rec = ctx.journal.write("engine-plan", "engine", **target, listen=served_cluster(ctx.dsn)[1])
    old, new = Path(rec["old_datadir"]), Path(rec["new_datadir"])
    old_server, new_server = Server(rec["old_bindir"], old), Server(rec["new_bindir"], new)
    if old_server.running():
        say(f"  stopping the PostgreSQL server of {old} (pg_ctl stop as the folder's owner)")
        old_server.stop()
        ctx.journal.write("engine-stopped", "engine", datadir=str(old))
    state = engine_state(rec)
    if state is None and (old / "postmaster.pid").exists() and answers(ctx.dsn):
        raise UnsafeState(f"the server behind --dsn runs from {old} but is no process pg_ctl can stop here "
                          "(a container?)", reference="postgres-running",
                          hint="stop harbor-db (docker compose down), then run again")
    if state is None:
        if list_entries(new) is not None or engine.state_path(new).exists():
            say(f"  removing {new}, the unfinished new cluster of an interrupted attempt")
            remove_half_made(rec)
            ctx.journal.write("engine-removed", "engine", datadir=str(new))
        try:
            result = engine.upgrade_cluster(rec["old_bindir"], old, rec["new_bindir"], new, mode=rec["mode"],
                                            jobs=max(1, min(ctx.opts.jobs, os.cpu_count() or 1)),
                                            progress=lambda m: say(f"  {m}"))
        except HarborUpgradeError:
            # the API left the old cluster as it was: serve it again, Harbor's database stays usable
            if engine_state(rec) is None and not (old / "global" / "pg_control.old").exists():
                old_server.ensure_serving(rec["listen"])
            raise
        ctx.journal.write("engine-upgraded", "engine", seconds={k: round(v, 3) for k, v in result.seconds.items()},
                          notes=result.notes)
        state = engine_state(rec)
    else:
        say(f"  {new} was finished and verified by an interrupted attempt: using it")
    listen = rec["listen"]
    how = new_server.ensure_serving(listen)
    say(f"  PostgreSQL {rec['new_major']} in {new}: {how} on port {listen['port']}")
    ctx.journal.write("engine-serving", "engine", datadir=str(new), how=how)
    major = server_major(ctx.dsn)
    if major != rec["new_major"]:
        raise UnsafeState(f"--dsn reaches PostgreSQL {major}, not the new {rec['new_major']} cluster in {new}",
                          reference="engine-other-cluster", hint="check what else listens on that port")
    evidence = (state or {}).get("evidence", {})
    rows = sum(sum(t.values()) for t in evidence.get("tables", {}).values())
    sequences = sum(len(s) for s in evidence.get("sequences", {}).values())
    stopped = any(r["event"] == "engine-stopped" for r in ctx.journal.of_step("engine"))
    ctx.outcome["engine"] = rec
    return StepOutcome(f"PostgreSQL {rec['old_version']} → {rec['new_major']} ({rec['mode']}) into {new}: "
                       f"{rows:,} rows and {sequences} sequences equal to the old cluster's; serving on port "
                       f"{listen['port']}; the old cluster is kept in {old}",
                       changed={"old_datadir": str(old), "new_datadir": str(new), "old_version": rec["old_version"],
                                "new_major": rec["new_major"], "mode": rec["mode"], "old_server_stopped": stopped,
                                "new_server": listen},
                       checksums={"state": sha256_file(engine.state_path(new))})
