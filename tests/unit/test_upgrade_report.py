"""Reports: text and JSON views of one dict, secrets masked, progress lines off a terminal."""
from __future__ import annotations

import io
import json

from harbor_upgrade.report import ProgressReporter, render_text, to_json
from harbor_upgrade.results import FAIL, PASS, WARN, CheckResult
from harbor_upgrade.secrets import register

REPORT = {
    "ok": False, "command": "run",
    "hops": ["1.10.0", "2.0.0", "2.4.0"],
    "checks": [CheckResult("Harbor stopped", PASS, "no other client").to_dict(),
               CheckResult("Clair", WARN, "Clair is in use", hint="scan all").to_dict(),
               CheckResult("free disk", FAIL, "not enough for rep0rt-secret-pw", hint="free space").to_dict()],
    "steps": [{"name": "backup", "ok": True, "seconds": 1.5, "summary": "done"},
              {"name": "config", "ok": False, "seconds": 0.1, "summary": "broke"}],
    "next": ["fix it", "run again"],
}


def test_text_report_has_tables_result_and_next_steps_and_no_secret():
    register("rep0rt-secret-pw")
    text = render_text(REPORT)
    for word in ("Preflight", "Harbor stopped", "warn", "fail", "Steps", "backup", "FAILED", "1.10.0 → 2.0.0 → 2.4.0",
                 "Result: FAILED", "What to do next:", "1. fix it", "2. run again", "→ free space"):
        assert word in text, word
    assert "rep0rt-secret-pw" not in text


def test_json_report_has_top_level_ok_and_an_ok_per_step_and_no_secret():
    register("rep0rt-secret-pw")
    d = json.loads(to_json(REPORT))
    assert d["ok"] is False
    assert [s["ok"] for s in d["steps"]] == [True, False]
    assert [c["ok"] for c in d["checks"]] == [True, True, False]
    assert "rep0rt-secret-pw" not in to_json(REPORT)


def test_progress_off_a_terminal_is_plain_lines_with_rate_and_eta():
    out = io.StringIO()
    with ProgressReporter(stream=out) as p:
        task = p.task("artifacts")
        task.start(total=10, done=0)
        task.advance(10)
        p.note("a note")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("artifacts: 0/10 (0%)") and "ETA" in lines[0]
    assert lines[1].startswith("artifacts: 10/10 (100%)") and "/s" in lines[1]
    assert lines[2] == "a note"


def test_rate_of_a_resumed_step_counts_only_this_run():
    import time
    stream = io.StringIO()
    with ProgressReporter(stream=stream) as reporter:
        counter = reporter.task("artifacts")
        counter.start(total=1000, done=900)  # 900 were done by an earlier, killed run
        time.sleep(0.2)
        counter.advance(100)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("artifacts: 1,000/1,000 (100%)")
    rate = int(last.split(", ")[1].split("/s")[0].replace(",", ""))
    assert rate <= 100 / 0.2, last  # 100 rows in at least 0.2 s; counting the earlier 900 gives > 1000/s
