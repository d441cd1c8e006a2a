"""The run journal: append-only records, torn last lines, resume point, masking, crash hook."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from harbor_upgrade.journal import CRASH_AFTER_WRITES_ENV, JOURNAL_NAME, Journal, JournalDamaged, parse_lines
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
    assert parse_lines('{"event": "x", "seq": 1}\n{"b"') == [{"event": "x", "seq": 1}]


def _journal_with(tmp_path, n=4) -> bytes:
    j = Journal.open(tmp_path)
    for i in range(n):
        j.write("note", i=i)
    return (tmp_path / JOURNAL_NAME).read_bytes()


def _refused(tmp_path) -> str:
    with pytest.raises(JournalDamaged) as e:
        Journal.open(tmp_path)
    with pytest.raises(JournalDamaged):
        Journal.read(tmp_path)
    assert e.value.reference == "journal-damaged" and "mv " in e.value.hint
    return e.value.message


@pytest.mark.parametrize("offset", [0.3, 0.5, 0.7])
def test_any_byte_flipped_in_a_complete_line_is_refused_naming_the_line(tmp_path, offset):
    raw = bytearray(_journal_with(tmp_path))
    raw[int(len(raw) * offset)] ^= 0x01
    (tmp_path / JOURNAL_NAME).write_bytes(bytes(raw))
    before = (tmp_path / JOURNAL_NAME).read_bytes()
    msg = _refused(tmp_path)
    assert "line " in msg and "of 4" in msg
    assert (tmp_path / JOURNAL_NAME).read_bytes() == before  # nothing dropped or rewritten


def test_a_digit_changed_so_the_line_stays_json_is_refused(tmp_path):
    raw = _journal_with(tmp_path).decode()
    lines = raw.splitlines(keepends=True)
    lines[1] = lines[1].replace('"i": 1', '"i": 7')
    (tmp_path / JOURNAL_NAME).write_text("".join(lines))
    assert "line 2 of 4" in _refused(tmp_path) and "checksum" in _refused(tmp_path)


@pytest.mark.parametrize("edit", ["drop-middle", "swap", "blank-line", "last-line-edited", "not-utf8"])
def test_missing_reordered_or_edited_lines_are_refused(tmp_path, edit):
    lines = _journal_with(tmp_path).splitlines(keepends=True)
    if edit == "drop-middle":
        del lines[1]
    elif edit == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    elif edit == "blank-line":
        lines.insert(2, b"\n")
    elif edit == "last-line-edited":
        lines[-1] = lines[-1].replace(b'"i": 3', b'"i": 4')
    else:
        lines[2] = b"\xff\xfe" + lines[2]
    (tmp_path / JOURNAL_NAME).write_bytes(b"".join(lines))
    _refused(tmp_path)


def test_journal_is_0600_in_a_0700_folder_even_when_an_older_release_made_it_0644(tmp_path):
    d = tmp_path / "b"
    Journal.open(d).write("note")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / JOURNAL_NAME).stat().st_mode) == 0o600
    os.chmod(d / JOURNAL_NAME, 0o644)
    Journal.open(d).write("note")
    assert stat.S_IMODE((d / JOURNAL_NAME).stat().st_mode) == 0o600


def test_a_symlinked_journal_is_not_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("")
    (tmp_path / "b").mkdir()
    os.symlink(outside, tmp_path / "b" / JOURNAL_NAME)
    with pytest.raises(OSError):
        Journal.open(tmp_path / "b").write("note")
    assert outside.read_text() == ""


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
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env={**os.environ, CRASH_AFTER_WRITES_ENV: "3"})
    assert r.returncode == -signal.SIGKILL
    j = Journal.open(tmp_path)
    assert [(r["event"], r["step"]) for r in j.records] == [("start", "backup"), ("done", "backup"),
                                                            ("start", "config")]
    assert j.first_unfinished(STEPS) == "config"
