"""The run journal: append-only records, torn last lines, resume point, masking, crash hook."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from harbor_upgrade.journal import CRASH_ENV, JOURNAL_NAME, Journal, parse_lines
from harbor_upgrade.secrets import MASK, register

STEPS = ("backup", "config", "database")


def test_first_unfinished_is_the_first_step_without_done(tmp_path):
    j = Journal.open(tmp_path)
    assert j.first_unfinished(STEPS) == "backup"
    j.start("backup")
    assert j.first_unfinished(STEPS) == "backup"
    j.done("backup", summary="ok")
    j.start("config")
    j2 = Journal.open(tmp_path)
    assert j2.first_unfinished(STEPS) == "config"
    assert j2.was_started("config") and not j2.is_done("config")
    assert j2.done_record("backup")["summary"] == "ok"
    assert [r["seq"] for r in j2.records] == [1, 2, 3]


def test_a_torn_last_line_is_dropped_and_the_next_record_starts_clean(tmp_path):
    j = Journal.open(tmp_path)
    j.start("backup")
    j.done("backup")
    with open(tmp_path / JOURNAL_NAME, "a") as f:
        f.write('{"event": "start", "st')  # what a kill in the middle of a write leaves
    j2 = Journal.open(tmp_path)
    assert [r["event"] for r in j2.records] == ["start", "done"]
    j2.start("config")
    lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    assert parse_lines('{"a": 1}\n{"b"') == [{"a": 1}]


def test_records_never_hold_a_registered_secret(tmp_path):
    register("s3cr3t-journal-pw")
    j = Journal.open(tmp_path)
    j.done("backup", changed={"dsn": "postgresql://u:s3cr3t-journal-pw@127.0.0.1/registry"})
    text = (tmp_path / JOURNAL_NAME).read_text()
    assert "s3cr3t-journal-pw" not in text and MASK in text


def test_crash_hook_kills_the_process_right_after_the_nth_write(tmp_path):
    code = ("import sys; from harbor_upgrade.journal import Journal\n"
            "j = Journal.open(sys.argv[1])\n"
            "for s in ('backup', 'config', 'database'):\n"
            "    j.start(s); j.done(s)\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env={**os.environ, CRASH_ENV: "3"})
    assert r.returncode == -signal.SIGKILL
    j = Journal.open(tmp_path)
    assert [(r["event"], r["step"]) for r in j.records] == [("start", "backup"), ("done", "backup"),
                                                            ("start", "config")]
    assert j.first_unfinished(STEPS) == "config"
