"""The database upgrade on real PostgreSQL, with a Harbor 1.10 database built from the
project's own fresh 1.10 schema and seed generator (tests/support/seed_harbor.py), no ../shared needed."""
from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import psycopg
import pytest

from harbor_upgrade import db as harbor_db
from harbor_upgrade.db.steps import APPLIED
from harbor_upgrade.errors import UnsafeState, UnsupportedVersion
from harbor_upgrade.versions import SCHEMA_VERSION, TARGET
from tests.support import seed_harbor
from tests.support.migrate_kill import STEP_BLOCKER, kill_during_step
from tests.support.pg import Database

REPO = Path(__file__).resolve().parents[2]
FRESH_1_10 = REPO / "src" / "harbor_upgrade" / "data" / "harbor-1.10.0-fresh.sql"
LATEST = SCHEMA_VERSION[TARGET]   # what db migrate reaches by default


@pytest.fixture(scope="session")
def seed_sql(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "harbor-1.10-seed3.sql"
    out.write_text(seed_harbor.generate(seed=3, scale=1, profile="edge", inventory="none"))
    return out


def load_seeded_110(seed_sql: Path, database: Database) -> None:
    database.load(FRESH_1_10)
    database.load(seed_sql)


@pytest.fixture
def harbor110(database_from, seed_sql):
    """The fresh 1.10 schema with seed 3 (edge profile): a copy of one database loaded once per session."""
    return database_from("harbor-1.10.0-seed3-edge", functools.partial(load_seeded_110, seed_sql))


def snapshot(dsn: str) -> dict[str, str]:
    """Every table's content hash and every sequence's state: equal means nothing written."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        out = {}
        for t in tables:
            out[t] = conn.execute(
                f'SELECT count(*) || md5(coalesce(string_agg(x::text, \'|\' ORDER BY x::text), \'\')) '
                f'FROM public."{t}" x').fetchone()[0]
        for (s,) in conn.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"):
            out["seq:" + s] = str(conn.execute(f'SELECT last_value, is_called FROM public."{s}"').fetchone())
        out["columns"] = str(conn.execute(
            "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY 1) "
            "FROM information_schema.columns WHERE table_schema = 'public'").fetchone()[0])
    return out


def test_1_10_to_2_4_then_a_second_run_changes_nothing(harbor110, run_cli):
    before = harbor_db.status(harbor110.dsn)
    assert (before.schema_version, before.dirty, before.release) == (15, False, "1.10.0")
    assert len(before.pending) == len(APPLIED)
    report = harbor_db.migrate(harbor110.dsn)
    assert [s.release for s in report.steps] == [s.release for s in APPLIED]
    assert all(s.ok for s in report.steps)
    assert harbor110.scalar("SELECT version || ',' || dirty FROM schema_migrations") == f"{LATEST},false"
    assert harbor110.scalar("SELECT count(*) FROM schema_migrations") == "1"
    # the artifact abstraction has not run: harbor-core (or `harbor-upgrade artifacts`) will
    assert harbor110.scalar("SELECT string_agg(version::text, ',') FROM data_migrations") == "0"
    st = harbor_db.status(harbor110.dsn)
    assert (st.schema_version, st.dirty, st.data_version, st.pending) == (LATEST, False, 0, [])
    # the 1.10 tag rows became tags, the old tables are gone
    assert int(harbor110.scalar("SELECT count(*) FROM tag")) > 0
    assert harbor110.scalar("SELECT to_regclass('public.access_log') IS NULL") == "t"

    frozen = snapshot(harbor110.dsn)
    code, out, _ = run_cli("db", "migrate", "--dsn", harbor110.dsn)
    assert code == 0 and "nothing to do" in out
    assert snapshot(harbor110.dsn) == frozen


def test_intermediate_release_then_the_rest(harbor110):
    rep = harbor_db.migrate(harbor110.dsn, to="2.1.0")
    assert [s.release for s in rep.steps] == ["2.0.0", "2.1.0"] and rep.to_version == 41
    st = harbor_db.status(harbor110.dsn)
    assert (st.schema_version, st.release) == (41, "2.1.0")
    assert st.pending[:3] == ["2.2.0 (0050+0051+0052+0053)", "2.3.0 (0060+0061)", "2.4.0 (0070+0071)"]
    assert st.pending[-1] == "2.15.0 (0180)"
    rep = harbor_db.migrate(harbor110.dsn)
    assert rep.from_version == 41 and rep.to_version == LATEST


def test_to_2_0_keeps_the_2_0_data_version_column(harbor110):
    harbor_db.migrate(harbor110.dsn, to="2.0.0")
    assert harbor110.scalar("SELECT version || ',' || dirty || ',' || coalesce(data_version::text, 'null') "
                            "FROM schema_migrations") == "31,false,null"


def test_dry_run_reports_row_counts_and_writes_nothing(harbor110, run_cli):
    before = snapshot(harbor110.dsn)
    code, out, _ = run_cli("db", "migrate", "--dsn", harbor110.dsn, "--dry-run")
    assert code == 0, out
    assert f"dry run: nothing written; would go 15 -> {LATEST}" in out
    tags = int(harbor110.scalar("SELECT count(*) FROM artifact"))
    assert f"tag: one tag per 1.10 artifact row: {tags} row(s)" in out
    assert snapshot(harbor110.dsn) == before


def test_other_clients_are_refused_unless_forced(harbor110):
    with psycopg.connect(harbor110.dsn, application_name="harbor-core"):
        with pytest.raises(UnsafeState) as err:
            harbor_db.migrate(harbor110.dsn)
        assert err.value.reference == "db-in-use" and "harbor-core" in err.value.message
        assert harbor_db.status(harbor110.dsn).schema_version == 15
        harbor_db.migrate(harbor110.dsn, to="2.0.0", force_connected=True)
    assert harbor_db.status(harbor110.dsn).schema_version == 31


def test_a_second_run_is_locked_out(harbor110):
    from harbor_upgrade.db import ledger
    with psycopg.connect(harbor110.dsn, autocommit=True) as other:
        assert ledger.try_lock(other)
        with pytest.raises(UnsafeState) as err:
            harbor_db.migrate(harbor110.dsn, force_connected=True)
        assert err.value.reference == "db-locked"
    assert harbor_db.status(harbor110.dsn).schema_version == 15


BREAKING_ROWS = """
INSERT INTO access_log (username, project_id, repo_name, repo_tag, operation)
    VALUES ('admin', 1, NULL, 'N/A', 'create');
INSERT INTO harbor_resource_label (label_id, resource_name, resource_type)
    SELECT 987654, a.repo || ':' || a.tag, 'i' FROM artifact a
    JOIN repository r ON r.name = a.repo JOIN blob b ON b.digest = a.digest
    ORDER BY a.id LIMIT 1;
-- a dangling label of an image 2.0 cannot resolve is dropped by upstream, not a failure
INSERT INTO harbor_resource_label (label_id, resource_name, resource_type)
    VALUES (987655, 'nowhere/ghost:1.0', 'i');
INSERT INTO schedule (job_id, status) VALUES ('job-without-status', NULL);
INSERT INTO quota (reference, reference_id, hard) VALUES ('project', 'not-a-number', '{}');
UPDATE properties SET v = 'forever' WHERE k = 'robot_token_duration';
INSERT INTO properties (k, v) SELECT 'robot_token_duration', 'forever'
    WHERE NOT EXISTS (SELECT 1 FROM properties WHERE k = 'robot_token_duration');
INSERT INTO retention_policy (id, data) VALUES (98765, '{not json');
"""


def test_lint_lists_breaking_rows_and_migrate_refuses_before_writing(harbor110, run_cli):
    harbor110.psql(BREAKING_ROWS)
    findings = harbor_db.lint(harbor110.dsn)
    found = {(f.step, f.table) for f in findings}
    assert {("2.0.0", "access_log"), ("2.0.0", "harbor_resource_label"), ("2.1.0", "schedule"),
            ("2.2.0", "quota"), ("2.2.0", "properties"), ("2.1.0", "retention_policy")} <= found
    label = next(f for f in findings if f.table == "harbor_resource_label")
    assert [r["label_id"] for r in label.rows] == [987654] and "DELETE" in label.fix
    assert harbor_db.lint(harbor110.dsn, to="2.0.0") and all(
        f.step == "2.0.0" for f in harbor_db.lint(harbor110.dsn, to="2.0.0"))

    before = snapshot(harbor110.dsn)
    code, _, err = run_cli("db", "migrate", "--dsn", harbor110.dsn)
    assert code == 4 and "lint-findings" in err and "would make the upgrade fail" in err
    assert snapshot(harbor110.dsn) == before
    code, out, _ = run_cli("db", "lint", "--dsn", harbor110.dsn, "--json")
    assert code == 1 and len(json.loads(out)) == len(findings)


def test_each_lint_fix_lets_the_upgrade_through(harbor110):
    harbor110.psql(BREAKING_ROWS)
    harbor110.psql("""
        UPDATE access_log SET repo_name = '' WHERE repo_name IS NULL AND repo_tag = 'N/A';
        DELETE FROM harbor_resource_label WHERE resource_type = 'i'
            AND label_id NOT IN (SELECT id FROM harbor_label);
        UPDATE schedule SET status = 'Error' WHERE status IS NULL OR length(status) > 16;
        DELETE FROM quota WHERE reference = 'project' AND reference_id !~ '^[0-9]+$';
        UPDATE properties SET v = '43200' WHERE k = 'robot_token_duration';
        DELETE FROM retention_policy WHERE id = 98765;""")
    assert harbor_db.lint(harbor110.dsn) == []
    assert harbor_db.migrate(harbor110.dsn).to_version == LATEST


def test_migrate_lints_again_after_a_write_since_a_clean_lint(harbor110, monkeypatch):
    """A run's preflight lint spares migrate its own only while nothing was written since:
    a breaking row added after a clean lint is still refused, and nothing is written."""
    from harbor_upgrade.db import checks
    assert harbor_db.lint(harbor110.dsn) == []
    harbor110.psql("INSERT INTO retention_policy (id, data) VALUES (98765, '{not json')")
    before = snapshot(harbor110.dsn)
    with pytest.raises(UnsafeState) as refused:
        harbor_db.migrate(harbor110.dsn)
    assert refused.value.reference == "lint-findings" and snapshot(harbor110.dsn) == before

    harbor110.psql("DELETE FROM retention_policy WHERE id = 98765")
    linted: list = []
    monkeypatch.setattr(harbor_db, "run_checks", lambda *a: linted.append(a) or checks.run_checks(*a))
    for _ in range(5):   # an autovacuum ANALYZE in between (it takes a transaction id) lints again
        assert harbor_db.lint(harbor110.dsn) == []
        linted.clear()
        assert harbor_db.migrate(harbor110.dsn, dry_run=True).to_version == LATEST
        if not linted:
            break
    assert linted == []   # nothing written between the clean lint and migrate: not linted twice


def test_below_1_10_is_refused(harbor110, run_cli):
    harbor110.psql("UPDATE schema_migrations SET version = 12")
    code, _, err = run_cli("db", "migrate", "--dsn", harbor110.dsn)
    assert code == 3 and "upgrade to 1.10 first" in err
    with pytest.raises(UnsupportedVersion):
        harbor_db.lint(harbor110.dsn)


def test_dirty_state_is_explained_and_repair_checks_the_schema(harbor110, run_cli):
    harbor_db.migrate(harbor110.dsn, to="2.1.0")
    # what golang-migrate leaves when 0050 fails: (50, dirty) with 0050 rolled back
    harbor110.psql("UPDATE schema_migrations SET version = 50, dirty = true")
    code, _, err = run_cli("db", "migrate", "--dsn", harbor110.dsn)
    assert code == 4 and "dirty" in err and "harbor-upgrade db repair --dsn" in err
    code, out, _ = run_cli("db", "status", "--dsn", harbor110.dsn, "--json")
    assert json.loads(out)["dirty"] is True
    code, out, _ = run_cli("db", "repair", "--dsn", harbor110.dsn)
    assert code == 0 and "schema matches version 40" in out
    assert harbor110.scalar("SELECT version || ',' || dirty FROM schema_migrations") == "40,false"
    code, out, _ = run_cli("db", "repair", "--dsn", harbor110.dsn)
    assert "nothing to repair" in out
    assert harbor_db.migrate(harbor110.dsn).to_version == LATEST


def test_repair_refuses_a_schema_it_does_not_recognise(harbor110):
    harbor110.psql("DROP TABLE access_log; UPDATE schema_migrations SET dirty = true")
    with pytest.raises(UnsafeState) as err:
        harbor_db.repair(harbor110.dsn)
    assert err.value.reference == "schema-unrecognized"
    assert harbor110.scalar("SELECT dirty FROM schema_migrations") == "t"


# The schema version a migration killed inside the step leaves (the steps before it committed).
VERSION_BEFORE = {"2.0.0": 15, "2.1.0": 31, "2.2.0": 41, "2.3.0": 53, "2.4.0": 61}


@pytest.mark.parametrize("step", list(STEP_BLOCKER))
def test_sigkill_inside_a_step_leaves_the_last_completed_step(harbor110, step):
    kill_during_step(harbor110.dsn, step)
    st = harbor_db.status(harbor110.dsn)
    assert (st.schema_version, st.dirty) == (VERSION_BEFORE[step], False)
    assert harbor_db.migrate(harbor110.dsn).to_version == LATEST
    assert harbor110.scalar("SELECT version || ',' || dirty FROM schema_migrations") == f"{LATEST},false"


@pytest.fixture
def second110(database_from, seed_sql):
    """A second copy of the seeded 1.10 database, for runs compared side by side."""
    return database_from("harbor-1.10.0-seed3-edge", functools.partial(load_seeded_110, seed_sql))


MINTED = ("SELECT string_agg(id || ':' || project_id, ',' ORDER BY id) FROM cve_allowlist",
          "SELECT string_agg(id || ':' || vendor_type || ':' || coalesce(vendor_id, 0), ',' ORDER BY id) "
          "FROM execution",
          "SELECT string_agg(id || ':' || execution_id, ',' ORDER BY id) FROM task")


def test_a_rerun_after_a_kill_mints_the_ids_of_an_uninterrupted_run(harbor110, second110):
    """Sequences are not transactional: the killed 2.2.0 step had taken cve_allowlist and
    execution ids; the rerun puts the sequences back first (issue 10 item 8)."""
    harbor_db.migrate(second110.dsn)
    # scan_report is altered after 2.2.0 has minted the replication executions' ids
    kill_during_step(harbor110.dsn, "2.2.0", table="scan_report")
    assert harbor_db.status(harbor110.dsn).schema_version == 41
    assert harbor110.scalar("SELECT count(*) FROM harbor_upgrade_db.sequences") != "0"
    harbor_db.migrate(harbor110.dsn)
    for query in MINTED:
        assert harbor110.scalar(query) == second110.scalar(query), query
    assert harbor110.scalar("SELECT to_regnamespace('harbor_upgrade_db') IS NULL") == "t"


def apply_without_lint(dsn: str, to: str = "2.4.0") -> None:
    """The release steps alone, as if lint did not exist: shows what a finding prevents."""
    from harbor_upgrade.db import ledger, runner
    from harbor_upgrade.db.connection import connect
    with connect(dsn) as conn:
        for step, files in runner.plan_steps(ledger.read_state(conn).version, to):
            with conn.transaction():
                runner.run_step(conn, step, files, None)


# The first 1.10 row with a repository and a manifest blob, listed again under another project.
KNOWN_TAG_UNDER_ANOTHER_PROJECT = """
    INSERT INTO artifact (project_id, repo, tag, digest, kind)
    SELECT a.project_id + 1000, a.repo, a.tag, a.digest, a.kind FROM artifact a
    WHERE EXISTS (SELECT 1 FROM repository r WHERE r.name = a.repo)
      AND EXISTS (SELECT 1 FROM blob b WHERE b.digest = a.digest)
    ORDER BY a.id LIMIT 1"""


def test_a_repository_and_tag_under_two_projects_is_a_finding_when_both_rows_resolve(harbor110):
    """An orphan (no manifest blob) keeps its own repository id in 2.0: no clash, no finding;
    a second row that resolves clashes on tag's unique (repository_id, name): all rows listed."""
    problem = "one repository and tag listed under several projects"
    harbor110.psql(KNOWN_TAG_UNDER_ANOTHER_PROJECT.replace("a.digest, a.kind", "'sha256:no-such-blob', a.kind"))
    assert not [f for f in harbor_db.lint(harbor110.dsn) if f.problem.startswith(problem)]
    harbor110.psql(KNOWN_TAG_UNDER_ANOTHER_PROJECT.replace("+ 1000", "+ 2000"))
    [finding] = [f for f in harbor_db.lint(harbor110.dsn) if f.problem.startswith(problem)]
    rows = finding.rows
    assert finding.count == 3 and len({(r["repo"], r["tag"]) for r in rows}) == 1
    assert sorted(r["digest"] == "sha256:no-such-blob" for r in rows) == [False, False, True]


@pytest.mark.parametrize("rows,step,left_at", [
    ("INSERT INTO access_log (username, project_id, repo_name, repo_tag, operation) "
     "VALUES ('admin', 1, NULL, 'N/A', 'delete')", "2.0.0", 15),
    (BREAKING_ROWS.split(";")[1], "2.0.0", 15),
    ("INSERT INTO schedule (job_id, status) VALUES ('j', NULL)", "2.1.0", 31),
    ("INSERT INTO retention_policy (id, data) VALUES (98765, '{not json')", "2.1.0", 31),
    ("INSERT INTO quota (reference, reference_id, hard) VALUES ('project', 'x1', '{}')", "2.2.0", 41),
    ("UPDATE properties SET v = '30d' WHERE k = 'robot_token_duration'; "
     "INSERT INTO properties (k, v) SELECT 'robot_token_duration', '30d' "
     "WHERE NOT EXISTS (SELECT 1 FROM properties WHERE k = 'robot_token_duration')", "2.2.0", 41),
    (KNOWN_TAG_UNDER_ANOTHER_PROJECT, "2.0.0", 15),
])
def test_a_lint_finding_is_a_row_that_really_breaks_its_step(harbor110, rows, step, left_at):
    from harbor_upgrade.db.runner import StatementFailed
    harbor110.psql(rows)
    assert [f.step for f in harbor_db.lint(harbor110.dsn)] == [step]
    with pytest.raises(StatementFailed) as err:
        apply_without_lint(harbor110.dsn)
    assert err.value.step.startswith(step)
    st = harbor_db.status(harbor110.dsn)
    assert (st.schema_version, st.dirty) == (left_at, False)


# Hazards of the later files, each inserted once the database is at the release before them.
LATER_HAZARDS = [
    ("2.7.0", "INSERT INTO notification_policy (name, project_id, targets, event_types) "
              "VALUES ('object-targets', 1, '{\"type\": \"http\"}', '[]')", "2.8.0", "notification_policy", 100),
    ("2.7.0", "INSERT INTO notification_policy (name, project_id, targets, event_types) "
              "VALUES ('empty-targets', 1, '', '[]')", "2.8.0", "notification_policy", 100),
    ("2.8.0", "INSERT INTO schedule (vendor_type, vendor_id, callback_func_name, callback_func_param) "
              "VALUES ('REPLICATION', 7, 'REPLICATION_CALLBACK', 'seven')", "2.9.0", "schedule", 111),
    ("2.8.0", "INSERT INTO vulnerability_record (cve_id, registration_uuid, package, package_version, severity, "
              "vendor_attributes) SELECT 'CVE-2024-1', uuid, 'p', '1', 'High', "
              "'{\"CVSS\": {\"nvd\": {\"V3Score\": \"high\"}}}' FROM scanner_registration "
              "ORDER BY id LIMIT 1", "2.9.0", "vulnerability_record", 111),
]


@pytest.mark.parametrize("at,rows,step,table,left_at", LATER_HAZARDS)
def test_later_hazards_are_lint_findings_naming_rows_that_really_break_their_step(
        harbor110, at, rows, step, table, left_at):
    from harbor_upgrade.db.runner import StatementFailed
    harbor_db.migrate(harbor110.dsn, to=at)
    harbor110.psql(rows)
    findings = harbor_db.lint(harbor110.dsn, to="2.15.0")
    assert [(f.step, f.table, f.count) for f in findings] == [(step, table, 1)]
    assert findings[0].rows[0]["id"] and findings[0].fix
    with pytest.raises(UnsafeState) as refused:
        harbor_db.migrate(harbor110.dsn, to="2.15.0")
    assert refused.value.reference == "lint-findings"
    with pytest.raises(StatementFailed) as err:
        apply_without_lint(harbor110.dsn, to="2.15.0")
    assert err.value.step.startswith(step)
    st = harbor_db.status(harbor110.dsn)
    assert (st.schema_version, st.dirty) == (left_at, False)


def test_dropped_labels_are_counted_before_and_reported_after(harbor110, run_cli):
    harbor_db.migrate(harbor110.dsn, to="2.9.0")
    harbor110.psql("INSERT INTO harbor_resource_label (label_id, resource_id, resource_type) "
                   "SELECT min(id), 1, 'p' FROM harbor_label")
    labels = int(harbor110.scalar("SELECT count(*) FROM harbor_resource_label"))
    assert labels >= 1
    losses = harbor_db.data_losses(harbor110.dsn, to="2.15.0")
    assert [(x.release, x.rows) for x in losses] == [("2.10.0", labels)]
    assert harbor_db.data_losses(harbor110.dsn, to="2.9.0") == []
    code, out, _ = run_cli("db", "migrate", "--dsn", harbor110.dsn, "--to", "2.15.0")
    assert code == 0 and f"dropped by design: {labels} row(s) of labels attached to projects" in out
    assert harbor_db.status(harbor110.dsn).schema_version == 180


def test_2_4_0_stops_at_70_and_0071_comes_with_the_next_release(harbor110):
    assert harbor_db.migrate(harbor110.dsn, to="2.4.3").to_version == 70
    report = harbor_db.migrate(harbor110.dsn, to="2.5.0")
    assert [s.name for s in report.steps] == ["2.4.0 (0071)", "2.5.0 (0080+0081+0082)"]
    assert report.to_version == 82
    assert harbor110.scalar("SELECT version || ',' || dirty FROM schema_migrations") == "82,false"


def test_force_connected_waits_a_bounded_time_for_a_lock_then_stops_cleanly(harbor110, monkeypatch):
    """--force-connected lets the migration start beside a session; one that holds a lock a
    step needs makes that step give up after the lock timeout (it used to wait forever)."""
    monkeypatch.setattr(harbor_db, "LOCK_TIMEOUT_S", 1.0)
    with psycopg.connect(harbor110.dsn, application_name="harbor-core") as blocker:
        blocker.execute(f"LOCK TABLE {STEP_BLOCKER['2.1.0']} IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        with pytest.raises(UnsafeState) as err:
            harbor_db.migrate(harbor110.dsn, force_connected=True)
        assert time.monotonic() - t0 < 30
        assert err.value.reference == "db-in-use" and "harbor-core" in err.value.message
        assert "schema 31" in err.value.message
        blocker.rollback()
    assert harbor110.scalar("SELECT version || ',' || dirty FROM schema_migrations") == "31,false"
    assert harbor_db.migrate(harbor110.dsn, to="2.4.0").to_version == 70


def test_repair_recognises_the_schema_of_every_release(database):
    """db repair's probes, declared by each release step, find every release's schema (and,
    after a data-only file, the file before it too)."""
    from harbor_upgrade.db.connection import connect
    from harbor_upgrade.db.repair import matching_versions
    database.load(FRESH_1_10)
    seen = []
    for step in APPLIED:
        version = harbor_db.migrate(database.dsn, to=step.release).to_version
        with connect(database.dsn) as conn:
            matches = matching_versions(conn)
        assert version in matches, (step.release, version, matches)
        assert max(matches) == version or step.release == "2.4.0", (step.release, matches)
        seen.append(version)
    assert seen[-1] == LATEST
    database.psql("UPDATE schema_migrations SET dirty = true")
    assert harbor_db.repair(database.dsn).version == LATEST


@pytest.fixture
def artifact_roles(pg_cluster):
    """Two roles (dropped after the test's database): one owning 1.10's artifact table, one granted SELECT on it."""
    owner, reader = f"hu_owner_{os.getpid()}", f"hu_reader_{os.getpid()}"
    pg_cluster.psql(f"CREATE ROLE {owner}; CREATE ROLE {reader}")
    yield owner, reader
    pg_cluster.psql(f"DROP ROLE IF EXISTS {reader}; DROP ROLE IF EXISTS {owner}")


def test_2_0_keeps_the_artifact_tables_owner_privileges_and_sequence(artifact_roles, harbor110):
    """2.0.0 builds the new artifact table beside 1.10's and swaps them: whoever owned or could read
    the table still does (upstream alters the table in place), and new rows take the next id."""
    owner, reader = artifact_roles
    harbor110.psql(f"ALTER TABLE artifact OWNER TO {owner}; GRANT SELECT, UPDATE ON artifact TO {reader}")
    last_id = int(harbor110.scalar("SELECT max(id) FROM artifact"))
    harbor_db.migrate(harbor110.dsn, to="2.0.0")
    assert harbor110.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'artifact'") == owner
    assert harbor110.scalar(f"""SELECT has_table_privilege('{reader}', 'artifact', 'SELECT')
                                       AND has_table_privilege('{reader}', 'artifact', 'UPDATE')
                                       AND NOT has_table_privilege('{reader}', 'artifact', 'DELETE')""") == "t"
    assert harbor110.scalar("SELECT pg_get_serial_sequence('artifact', 'id')") == "public.artifact_id_seq"
    new_id = harbor110.scalar("""INSERT INTO artifact (project_id, repository_name, digest, type, repository_id,
                                                       media_type, manifest_media_type)
                                 VALUES (1, 'r', 'sha256:x', 'IMAGE', 1, 'm', 'm') RETURNING id""")
    assert int(new_id.split()[0]) > last_id


def test_a_step_runs_with_jit_off_and_at_least_the_step_memory_then_the_session_is_as_before(database):
    """The runner's step settings are SET LOCAL: inside the step jit is off and work_mem is raised
    (never lowered); after the step's transaction the session has its own settings back."""
    from harbor_upgrade.db import runner
    from harbor_upgrade.db.steps import ReleaseStep, SchemaFile, Statement
    database.psql("CREATE TABLE schema_migrations (version bigint NOT NULL, dirty boolean NOT NULL); "
                  "INSERT INTO schema_migrations VALUES (15, false)")
    probe = SchemaFile(30, (Statement("settings seen by the step", """
        CREATE TABLE seen AS SELECT current_setting('jit') AS jit, current_setting('work_mem') AS work_mem,
                                    current_setting('maintenance_work_mem') AS mwm"""),))
    step = ReleaseStep("2.0.0", (probe,), harbor_db=())
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute("SET jit = on; SET work_mem = '1MB'; SET maintenance_work_mem = '1GB'")
        with conn.transaction():
            runner.run_step(conn, step, (probe,), None)
        assert conn.execute("SELECT current_setting('jit'), current_setting('work_mem'), "
                            "current_setting('maintenance_work_mem')").fetchone() == ("on", "1MB", "1GB")
    assert database.scalar("SELECT jit || ',' || work_mem || ',' || mwm FROM seen") == "off,64MB,1GB"
