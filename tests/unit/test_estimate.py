"""plan's estimate: the arithmetic of the estimators on given inputs, the line fit of the
calibration, and the rows each release step is charged for (db.costs)."""
from __future__ import annotations

import pytest

from harbor_upgrade.db import costs
from harbor_upgrade.db.steps import ReleaseStep, SchemaFile
from harbor_upgrade.db.steps.base import sql
from harbor_upgrade.upgrade import estimate as est
from harbor_upgrade.upgrade.steps import RUN_STEPS

RATES = est.Rates(
    probe_seconds=0.05,
    steps={"backup": est.Line(2.0, 1e-7), "config": est.Line(0.1), "engine-copy": est.Line(4.0, 2e-8),
           "engine-link": est.Line(3.0), "database": est.Line(0.5), "artifacts": est.Line(1.0, 1e-4),
           "scanner": est.Line(0.2), "verify": est.Line(1.0, 1e-6), est.RUN_OWN: est.Line(0.5, 1e-5)},
    releases={"2.0.0": est.Line(1.0, 1e-4), "2.1.0": est.Line(0.2, 3e-5)})


def inputs(**kw) -> est.Inputs:
    storage = est.StorageSample(repositories=400, artifacts_in_storage=20_000, sampled_repositories=6,
                                sampled_artifacts=300, sampled_seconds=0.6, sampled_list_seconds=0.06, readers=2)
    base = dict(database_bytes=500_000_000, cluster_bytes=600_000_000, total_rows=1_000_000, artifact_rows=50_000,
                releases=[("2.0.0", 300_000), ("2.1.0", 100_000)], storage=storage, speed=1.0)
    base.update(kw)
    return est.Inputs(**base)


def test_each_step_is_its_line_at_its_driver():
    i = inputs()
    assert est.estimate_backup(i, RATES) == pytest.approx(2.0 + 50.0)
    assert est.estimate_config(i, RATES) == pytest.approx(0.1)
    assert est.estimate_engine(i, RATES) == pytest.approx(4.0 + 12.0)
    assert est.estimate_engine(inputs(engine_mode="link"), RATES) == pytest.approx(3.0)
    # the step's own part plus each pending release step at the rows it touches
    assert est.estimate_database(i, RATES) == pytest.approx(0.5 + (1.0 + 30.0) + (0.2 + 3.0))
    assert est.estimate_scanner(i, RATES) == pytest.approx(0.2)
    assert est.estimate_verify(i, RATES) == pytest.approx(1.0 + 1.0)
    assert est.estimate_run_own(i, RATES) == pytest.approx(0.5 + 0.5)


def test_artifacts_read_is_the_sampled_rate_over_the_readers_plus_the_calibrated_writes():
    i = inputs()
    # 0.6 s / 300 artifacts = 2 ms each; 20,000 of them over 2 readers
    assert est.artifacts_read(i) == pytest.approx(20.0)
    assert est.estimate_artifacts(i, RATES) == pytest.approx(20.0 + 1.0 + 5.0)
    i.storage.readers = 8      # an object store read by --jobs 8 threads
    assert est.artifacts_read(i) == pytest.approx(5.0)
    # nothing sampled (no storage repository has database rows): no read time
    assert est.artifacts_read(inputs(storage=est.StorageSample())) == 0.0


def test_a_slower_server_scales_every_calibrated_line_but_not_the_measured_read():
    slow = inputs(speed=2.0)
    assert est.estimate_backup(slow, RATES) == pytest.approx(2 * 52.0)
    assert est.estimate_artifacts(slow, RATES) == pytest.approx(20.0 + 2 * 6.0)


def test_window_is_every_step_plus_the_runs_own_part_and_prepare_takes_the_read_out():
    names = [s.name for s in RUN_STEPS if s.name != "engine"]
    e = est.compute(inputs(), RATES, names)
    assert list(e.steps) == names and "engine" not in e.steps
    assert e.window == pytest.approx(sum(e.steps.values()) + e.run_own)
    assert e.prepare == pytest.approx(20.0)
    # the window still lists the 400 repositories again: 10 ms each (0.06 s for 6) over 2 readers
    assert e.relist == pytest.approx(2.0)
    assert e.window_with_prepare == pytest.approx(e.window - 20.0 + 2.0)
    d = e.to_dict()
    assert d["window_seconds"] == round(e.window, est.DIGITS) and d["prepare"]["seconds"] == 20.0
    assert d["inputs"]["storage"]["seconds_per_artifact"] == pytest.approx(0.002)
    # a run without the artifacts step has nothing to prepare
    assert est.compute(inputs(), RATES, ["backup", "database"]).prepare == 0.0


def test_a_release_the_calibration_never_saw_gets_the_median_line_and_is_named():
    line = RATES.release("2.99.0")
    assert line.a == pytest.approx(0.6) and line.b == pytest.approx(6.5e-5)
    # one steep release (few rows, some seconds) does not make every new release steep
    rates = est.Rates(0.05, RATES.steps, {"2.0.0": est.Line(1.0, 1e-5), "2.1.0": est.Line(0.2, 2e-5),
                                          "2.2.0": est.Line(0.0, 4e-3)})
    assert rates.release("2.99.0") == est.Line(0.2, 2e-5)
    # a release added after the calibration (only its two step modules changed): estimated, and said so
    i = inputs(releases=[("2.0.0", 300_000), ("2.99.0", 1_000_000)])
    assert est.estimate_database(i, rates) == pytest.approx(0.5 + (1.0 + 3.0) + (0.2 + 20.0))
    e = est.compute(i, rates, ["backup", "database"])
    assert e.not_calibrated == ["2.99.0"] and e.to_dict()["not_calibrated"]["lines"] == ["2.99.0"]
    assert est.compute(inputs(), RATES, ["backup", "database"]).not_calibrated == []


def test_a_rates_file_without_a_line_falls_back_instead_of_failing():
    bare = est.Rates(0.05, {"backup": est.Line(2.0, 1e-7)}, {})
    names = [s.name for s in RUN_STEPS]
    e = est.compute(inputs(engine_mode="link"), bare, names)
    assert set(e.steps) == set(names) and all(v >= 0 for v in e.steps.values())
    assert e.steps["engine"] == pytest.approx(5.0 + 6.0)        # the placeholder line: no mode was measured
    assert e.steps["database"] == pytest.approx(2 * 0.2)        # no release line at all: 0.2 s each
    assert e.steps["config"] == 0.0 and e.run_own == 0.0
    assert {"engine-link", "config", "database", "2.0.0", "2.1.0", est.RUN_OWN} <= set(e.not_calibrated)
    assert "backup" not in e.not_calibrated


def test_engine_line_per_mode_with_fallbacks():
    i = inputs(engine_mode="copy")
    assert est.engine_line_name(i) == "engine-copy" and est.engine_line_name(inputs()) == "engine-copy"
    # dump and restore, never measured: the backup's line (a dump and its restore) at the cluster's bytes
    dump = inputs(engine_mode="dump")
    assert est.estimate_engine(dump, RATES) == pytest.approx(2.0 + 60.0)
    assert est.not_calibrated(dump, RATES, ["engine"]) == ["engine-dump"]
    # link measured, copy not: copy gets the placeholder, never link's line
    only_link = est.Rates(0.05, {"engine-link": est.Line(3.0)}, {})
    assert only_link.step("engine-copy") == est.ENGINE_FALLBACK


def test_fit_through_two_points_and_never_negative():
    line = est.fit([(100.0, 3.0), (500.0, 11.0)])
    assert line.a == pytest.approx(1.0) and line.b == pytest.approx(0.02)
    assert est.fit([(100.0, 5.0), (500.0, 4.0)]) == est.Line(4.5)       # noise: a falling line is flat
    through_zero = est.fit([(100.0, 1.0), (500.0, 11.0)])               # intercept would be -1.5
    assert through_zero.a == 0.0 and through_zero.b == pytest.approx((100 + 5500) / (100**2 + 500**2))
    assert est.fit([(0.0, 0.3), (0.0, 0.5)]) == est.Line(0.4)
    assert est.fit([]) == est.Line(0.0)


def test_rates_round_trip_and_the_shipped_file_covers_every_step():
    assert est.Rates.from_dict(RATES.to_dict()).to_dict() == RATES.to_dict()
    shipped = est.load_rates()
    assert shipped.probe_seconds > 0
    assert set(est.ESTIMATORS) - {"engine"} | {est.RUN_OWN, "engine-copy", "engine-link"} <= set(shipped.steps)


def test_release_costs_charge_each_step_for_the_tables_it_touches_and_what_earlier_steps_filled():
    first = ReleaseStep("9.0.0", (SchemaFile(900, (
        sql("copy", "CREATE TABLE audit (id int)"),
        sql("fill", "INSERT INTO audit (id) SELECT id FROM access_log WHERE op = 'push'"),
        sql("rewrite", "UPDATE artifact SET x = 1"),
        sql("rename", "ALTER TABLE old_jobs RENAME TO jobs"),
        sql("drop", "DROP TABLE IF EXISTS gone"),
    )),), ())
    second = ReleaseStep("9.1.0", (SchemaFile(910, (
        sql("index", "CREATE INDEX i ON audit (id)"),
        sql("rewrite", "UPDATE jobs SET y = 2 FROM project p WHERE p.id = jobs.project_id"),
        sql("nothing", "DELETE FROM gone"),
    )),), ())
    rows = {"access_log": 5000, "artifact": 700, "old_jobs": 40, "project": 3, "gone": 9}
    out = costs.release_costs([(first, first.files), (second, second.files)], rows)
    assert [c.release for c in out] == ["9.0.0", "9.1.0"] and [c.statements for c in out] == [5, 3]
    assert out[0].tables == {"access_log": 5000, "artifact": 700, "old_jobs": 40, "gone": 9, "audit": 0}
    assert out[1].tables == {"audit": 5000, "jobs": 40, "project": 3}
    assert out[1].rows == 5043
    assert rows["access_log"] == 5000 and "audit" not in rows    # the caller's counts are not changed


def test_statement_tables_finds_read_and_written_tables():
    assert costs.statement_tables(
        'INSERT INTO tag (name) SELECT a.tag FROM public.artifact a JOIN "repository" r ON r.id = a.rid '
        "ON CONFLICT DO NOTHING") == ["tag", "artifact", "repository", "r", "conflict"]
