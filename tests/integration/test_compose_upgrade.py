"""A Harbor 1.10 Docker Compose installation upgraded end to end with a real Docker Engine:
the stand-in stack (tests/support/compose_stack.py) runs; `run` refuses and changes
nothing; `run --stop-harbor` stops it, upgrades the database inside harbor-db started alone
on 127.0.0.1 and leaves nothing running; `rollback` brings schema 15 and the counts back; a
run killed at several points continues on rerun. No secret in any output, journal or
process argument; no port beyond 127.0.0.1; nothing left behind."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from harbor_upgrade.compose import detect_compose, serving
from harbor_upgrade.compose.database import container_name
from harbor_upgrade.compose.docker import daemon_answers
from harbor_upgrade.versions import SCHEMA_VERSION, TARGET
from tests.support import compose_stack as cs
from tests.support.procs import process_argvs

# One Docker daemon, one stack of fixed container names and ports (cs.stack_lock guards it across
# processes): under pytest-xdist (--dist loadgroup) these tests all run on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("docker")]
SECRETS = (cs.DB_PASSWORD, quote(cs.DB_PASSWORD, safe=""))


@pytest.fixture(scope="module")
def engine():
    if not daemon_answers():
        if os.environ.get("CI") or os.environ.get("HARBOR_UPGRADE_REQUIRE_SHARED") == "1":
            pytest.fail("no Docker daemon answers (scripts/test starts one)")
        pytest.skip("no Docker daemon answers (scripts/test starts one)")
    with cs.stack_lock():
        cs.build_images()
        cs.remove_stack()
        yield engine_objects()
        cs.remove_stack()


@pytest.fixture(scope="module")
def pristine(engine):
    base = Path(tempfile.mkdtemp(prefix="harbor-compose-"))
    yield cs.new_site(base / "pristine")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def site(pristine, tmp_path):
    s = cs.copy_site(pristine, tmp_path / "site")
    yield s
    cs.remove_stack(s)


class Watch:
    """Samples every process's arguments while a command runs: secrets and docker-proxy
    addresses (a published port shows as `docker-proxy ... -host-ip ADDR`)."""

    def __init__(self):
        self.leaks: list[str] = []
        self.host_ips: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for _pid, argv in process_argvs():
                text = " ".join(argv)
                self.leaks += [text for s in SECRETS if s in text]
                if "docker-proxy" in text and "-host-ip" in text:
                    self.host_ips.add(text.split("-host-ip")[1].split()[0])
            self._stop.wait(0.02)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def hu(*args: object, env: dict | None = None, watch: Watch | None = None) -> subprocess.CompletedProcess:
    """The harbor-upgrade command, as an operator runs it; no secret may show in its output."""
    r = subprocess.run([sys.executable, "-m", "harbor_upgrade", *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=600, stdin=subprocess.DEVNULL)
    for s in SECRETS:
        assert s not in r.stdout and s not in r.stderr
    return r


def ours() -> list[str]:
    return cs.docker("ps", "-a", "--filter", "label=org.harbor-upgrade.owner", "--format", "{{.Names}}").stdout.split()


def engine_objects() -> tuple[set[str], set[str]]:
    """The engine's networks and volumes."""
    return (set(cs.docker("network", "ls", "--format", "{{.Name}}").stdout.split()),
            set(cs.docker("volume", "ls", "-q").stdout.split()))


def assert_nothing_left(before: tuple[set[str], set[str]], backup: Path) -> None:
    assert cs.running_containers() == [] and ours() == []
    assert engine_objects() == before
    assert "docker-proxy" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for f in backup.rglob("*.jsonl"):
        assert not any(s in f.read_text() for s in SECRETS), f


def query(site: cs.Site, sql: str) -> list[tuple]:
    """Read the installation's database the tool's way (harbor-db alone, stopped after)."""
    ci = detect_compose(site.harbor_dir, {"database": {"password": cs.DB_PASSWORD}})
    with serving(ci) as dsn, psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def test_refuses_while_harbor_runs_then_stop_harbor_upgrades_and_rollback_restores(site, engine):
    backup = site.dir / "backup"
    cs.compose(site, "up", "-d")
    running = set(cs.running_containers())
    assert {"harbor-db", "harbor-core", "harbor-log", "nginx"} <= running
    yml_before = site.harbor_yml.read_bytes()

    with Watch() as w:
        r = hu("plan", "--harbor-yml", site.harbor_yml, "--json", watch=w)
        assert r.returncode == 0, r.stderr
        p = json.loads(r.stdout)
        compose = p["installation"]["compose"]
        assert compose["project"] == "harbor" and compose["release"] == "1.10.6" and compose["docker_version"]
        assert set(compose["running"]) == running and compose["database_image"] == cs.DB_IMAGE
        assert compose["database_dir"] == str(site.data_volume / "database")
        assert (compose["database_dir_owner"], compose["database_dir_mode"]) == (999, "0700")
        assert "--stop-harbor" in p["next"][0] and "--dsn" not in p["next"][0]

        r = hu("run", "--harbor-yml", site.harbor_yml, "--backup-dir", backup, "--yes", watch=w)
        assert r.returncode == 4 and "harbor-running" in r.stderr and "--stop-harbor" in r.stderr
        assert "harbor-core" in r.stderr and "harbor-db" in r.stderr
        assert not backup.exists() and set(cs.running_containers()) == running and ours() == []
        assert site.harbor_yml.read_bytes() == yml_before and not (site.harbor_dir / f"harbor-{TARGET}.yml").exists()

        r = hu("run", "--harbor-yml", site.harbor_yml, "--backup-dir", backup, "--yes", "--stop-harbor", "--json",
               watch=w)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        report = json.loads(r.stdout)
        assert [s["name"] for s in report["steps"] if s["ok"]] == ["backup", "config", "database", "artifacts",
                                                                    "scanner", "verify"]
        assert report["next"][0].startswith("Nothing of Harbor runs now")
        assert any("./install.sh" in line for line in report["next"])
        assert any("rollback --backup-dir" in line and "docker compose up -d" in line for line in report["next"])
    assert w.leaks == [] and w.host_ips == {"127.0.0.1"}
    assert_nothing_left(engine, backup)
    events = [json.loads(line)["event"] for line in (backup / "containers.jsonl").read_text().splitlines()]
    assert events[:2] == ["harbor-stopping", "harbor-stopped"] and events[-1] == "compose-db-removed"

    assert query(site, "SELECT max(version) FROM schema_migrations") == [(SCHEMA_VERSION[TARGET],)]
    assert query(site, "SELECT version FROM data_migrations") == [(30,)]
    assert query(site, "SELECT count(*) FROM artifact WHERE type IS NULL OR media_type IS NULL "
                       "OR manifest_media_type IS NULL OR size IS NULL")[0][0] == 0

    with Watch() as w:
        r = hu("db", "status", "--harbor-yml", site.harbor_yml, watch=w)
        assert r.returncode == 0 and re.search(rf"schema version: {SCHEMA_VERSION[TARGET]}\b", r.stdout)
        r = hu("rollback", "--backup-dir", backup, "--yes", "--json", watch=w)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        steps = json.loads(r.stdout)["steps"]   # restore, verify, and what was left in place (listed)
        assert [s["name"] for s in steps][:2] == ["restore", "verify"] and all(s["ok"] for s in steps)
    assert w.leaks == [] and w.host_ips <= {"127.0.0.1"}
    assert_nothing_left(engine, backup)
    assert query(site, "SELECT max(version) FROM schema_migrations") == [(15,)]
    manifest = json.loads((backup / "backup" / "manifest.json").read_text())
    assert query(site, "SELECT count(*) FROM artifact")[0][0] == manifest["table_counts"]["artifact"]

    # the old stack starts again on the restored folder
    cs.compose(site, "up", "-d")
    assert "harbor-db" in cs.running_containers()
    from harbor_upgrade.compose import stop_harbor
    stop_harbor(detect_compose(site.harbor_dir, {}))
    assert cs.running_containers() == []


def test_a_run_killed_at_several_points_continues_on_rerun(site, engine):
    """SIGTERM while harbor-upgrade's harbor-db serves (it is stopped and removed on the way
    out); SIGKILL after the stack is down, with that harbor-db running, and inside the steps;
    each rerun removes what the killed one left and goes on."""
    backup = site.dir / "backup"
    cs.compose(site, "up", "-d")
    cmd = ("run", "--harbor-yml", site.harbor_yml, "--backup-dir", backup, "--yes", "--stop-harbor", "--json")

    def killed_at(writes: int, ours_left: bool) -> None:
        r = hu(*cmd, env={"HARBOR_UPGRADE_CRASH_AFTER_WRITES": str(writes)})
        assert r.returncode == -9, (writes, r.stdout[-2000:], r.stderr[-2000:])
        assert cs.running_containers() == ([container_name(detect_compose(site.harbor_dir, {}))] if ours_left
                                           else [])

    # each invocation counts the writes of each of its journals (containers.jsonl, journal.jsonl)
    killed_at(2, ours_left=False)          # right after the stack went down
    # interrupted (SIGTERM, as docker stop or systemd send it) while harbor-upgrade's harbor-db serves
    proc = subprocess.Popen([sys.executable, "-m", "harbor_upgrade", *map(str, cmd)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    started = backup / "containers.jsonl"
    cs.wait_for(lambda: started.read_text().count("compose-db-started") == 1, 120,
                "harbor-upgrade's harbor-db did not start")
    proc.terminate()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out[-2000:], err[-2000:])
    assert cs.running_containers() == [] and ours() == []
    assert json.loads(started.read_text().splitlines()[-1])["event"] == "compose-db-removed"
    killed_at(2, ours_left=True)           # right after harbor-upgrade's harbor-db started
    killed_at(7, ours_left=True)           # inside the steps
    with Watch() as w:
        r = hu(*cmd, watch=w)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert w.leaks == [] and w.host_ips <= {"127.0.0.1"}
    assert_nothing_left(engine, backup)
    events = [json.loads(line) for line in (backup / "containers.jsonl").read_text().splitlines()]
    leftovers = [e for e in events if e["event"] == "compose-db-removed" and e["clean"]]
    assert len(leftovers) >= 3
    journal = [json.loads(line) for line in (backup / "journal.jsonl").read_text().splitlines()]
    assert sum(1 for e in journal if e["event"] == "run-start") >= 2   # the kill inside the steps, the last run
    assert query(site, "SELECT max(version) FROM schema_migrations") == [(SCHEMA_VERSION[TARGET],)]


def test_an_external_database_installation_stops_only_the_stack(engine, database, tmp_path):
    """external_database in harbor.yml, Compose for the rest: the same refusal and --stop-harbor,
    and the database harbor.yml names (no harbor-db in the stack, none started)."""
    from urllib.parse import urlsplit

    from harbor_upgrade import demo
    base = tmp_path / "ext"
    site = cs.Site(base, base / "harbor", base / "harbor" / "harbor.yml", base / "data", base / "log", 18080)
    site.harbor_dir.mkdir(parents=True)
    cs.prepare(site, cs.DB_PASSWORD, external_database=True)
    images = demo.write_storage(site.data_volume / "registry")
    database.load(demo.fresh_schema())
    demo.insert_rows(database.dsn, demo.sample_rows(images))
    url = urlsplit(database.dsn)
    site.harbor_yml.write_text(cs.harbor_yml_text(site.data_volume) + (
        f"external_database:\n  harbor:\n    host: {url.hostname}\n    port: {url.port}\n"
        f"    db_name: {database.name}\n    username: {url.username}\n    ssl_mode: disable\n"))
    backup = base / "backup"
    try:
        cs.compose(site, "up", "-d")
        assert "harbor-core" in cs.running_containers() and "harbor-db" not in cs.running_containers()
        r = hu("run", "--harbor-yml", site.harbor_yml, "--backup-dir", backup, "--yes")
        assert r.returncode == 4 and "harbor-running" in r.stderr and not backup.exists()
        r = hu("run", "--harbor-yml", site.harbor_yml, "--backup-dir", backup, "--yes", "--stop-harbor", "--json")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert json.loads(r.stdout)["next"][0].endswith("the external database is upgraded.")
        assert cs.running_containers() == [] and ours() == []
        assert database.scalar("SELECT max(version) FROM schema_migrations") == str(SCHEMA_VERSION[TARGET])
    finally:
        cs.remove_stack(site)


def test_every_database_command_takes_the_harbor_folder_instead_of_a_dsn(site, engine):
    """With the stack down: db migrate, artifacts, verify (--harbor-yml), backup and restore
    (--harbor-dir) each start harbor-db alone for their duration and leave nothing."""
    yml, hd, backup = site.harbor_yml, site.harbor_dir, site.dir / "plain-backup"
    with Watch() as w:
        r = hu("backup", "--harbor-dir", hd, "--data-volume", site.data_volume, "--to", backup, watch=w)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        r = hu("db", "migrate", "--harbor-yml", yml, watch=w)
        assert r.returncode == 0 and f"schema version 15 -> {SCHEMA_VERSION[TARGET]}" in r.stdout, r.stdout[-2000:]
        r = hu("artifacts", "--harbor-yml", yml, watch=w)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        r = hu("verify", "--harbor-yml", yml, "--json", watch=w)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        assert any(c["name"] == "manifests in storage" for c in json.loads(r.stdout)["verify"]["checks"])
        r = hu("restore", "--from", backup, "--harbor-dir", hd, "--data-volume", site.data_volume, "--yes",
               watch=w)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert w.leaks == [] and w.host_ips <= {"127.0.0.1"}
    assert cs.running_containers() == [] and ours() == []
    assert query(site, "SELECT max(version) FROM schema_migrations") == [(15,)]
