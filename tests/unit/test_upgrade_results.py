"""The run's steps as Step objects, and the typed report: its exit code, its JSON shape,
advice picked by kind, and the CLI's console deciding who can confirm."""
from __future__ import annotations

import io

from harbor_upgrade.cli.console import Console
from harbor_upgrade.errors import ExitStatus, UnsafeState
from harbor_upgrade.results import FAIL, PASS, Advice, CheckResult, RunCommand, RunReport, StepResult
from harbor_upgrade.upgrade import RUN_STEPS, Options, StepOutcome, steps_for


def test_the_engine_step_is_taken_only_when_asked_and_goes_after_config():
    assert [s.name for s in steps_for(Options("harbor.yml"))] == [
        "backup", "config", "database", "artifacts", "scanner", "verify"]
    assert [s.name for s in steps_for(Options("harbor.yml", engine_bindir="/usr/lib/postgresql/16/bin"))] == [
        "backup", "config", "engine", "database", "artifacts", "scanner", "verify"]
    assert len({s.name for s in RUN_STEPS}) == len(RUN_STEPS) and all(s.text for s in RUN_STEPS)


def test_a_step_outcome_records_checksums_only_when_it_has_some():
    assert StepOutcome("done").to_dict() == {"summary": "done", "changed": {}}
    assert StepOutcome("done", {"a": 1}, {"f": "00"}).to_dict() == {"summary": "done", "changed": {"a": 1},
                                                                   "checksums": {"f": "00"}}


def test_exit_codes_come_from_the_report():
    assert RunReport("run", True, []).exit_code == ExitStatus.OK
    assert RunReport("plan", False, []).exit_code == ExitStatus.UNSAFE_STATE
    assert RunReport("verify", False, []).exit_code == ExitStatus.CHANGES_NEEDED
    declined = UnsafeState("no", reference="not-confirmed")
    assert RunReport("run", False, [], error=declined).exit_code == ExitStatus.INTERRUPTED


def test_the_report_dict_keeps_its_shape_and_advice_is_picked_by_kind():
    report = RunReport("run", False, [StepResult("backup", True, "ok", seconds=1.5, changed={}),
                                      StepResult("config", False, "not run", planned=True)],
                       checks=[CheckResult("free disk", PASS, "plenty"), CheckResult("Clair", FAIL, "no")],
                       next=[Advice(Advice.CONTINUE, "run again"), Advice(Advice.ROLLBACK, "or go back")])
    d = report.to_dict()
    assert d["steps"] == [{"name": "backup", "ok": True, "seconds": 1.5, "summary": "ok", "changed": {}},
                          {"name": "config", "ok": False, "planned": True, "summary": "not run"}]
    assert [c["ok"] for c in d["checks"]] == [True, False]
    assert d["next"] == ["run again", "or go back"] and "error" not in d and "verify" not in d
    assert [a.text for a in report.advice(Advice.ROLLBACK)] == ["or go back"]


def test_only_a_terminal_can_confirm():
    assert Console(stdin=io.StringIO()).confirmer is None
    assert Console(stdin=io.StringIO(), stdin_tty=True).confirmer is not None


def test_only_a_terminal_is_asked_for_a_password():
    assert Console(stdin=io.StringIO()).ask_password("postgres@db") is None


def test_the_cli_writes_the_run_a_plan_advises_first_in_next():
    from harbor_upgrade.cli.upgrade import emit, run_line
    cmd = RunCommand("/h/harbor.yml", None, dsn="postgresql://postgres@db:5432/registry", to="2.10.0",
                     engine_bindir="/usr/lib/postgresql/16/bin", engine_mode="link", stop_harbor=True)
    assert run_line(cmd) == ("harbor-upgrade run --harbor-yml /h/harbor.yml --backup-dir BACKUP_DIR "
                             "--dsn 'postgresql://postgres@db:5432/registry' --to 2.10.0 "
                             "--engine-bindir /usr/lib/postgresql/16/bin --engine-mode link --stop-harbor")
    assert run_line(RunCommand("h.yml", "/b", engine_old_bindir="/old", drop_chartmuseum=True)) == \
        "harbor-upgrade run --harbor-yml h.yml --backup-dir /b --drop-chartmuseum"
    report = RunReport("plan", True, [], next=[Advice(Advice.BEFORE_RUN, "Before the run: x")], run_command=cmd)
    emit(report, as_json=True)
    assert [a.kind for a in report.next] == [Advice.RUN, Advice.BEFORE_RUN] and report.next[0].text == run_line(cmd)
