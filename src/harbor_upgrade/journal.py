"""The run journal: what an upgrade run has done, step by step, in the backup folder.

One JSON object per line in ``<backup-dir>/journal.jsonl`` (0600), appended and fsync'd
before the step it announces does anything (``start``) and after it is complete (``done``),
so that a run killed at any moment leaves a journal that tells the next run where to pick
up: the first step without a ``done`` record. Every record passes through secret masking
before it is written.

Each record carries its sequence number, the sha256 of its own canonical text (``sum``)
and that of the record before it (``prev``). The only damage a kill can do is a last line
cut short (no newline yet): it is dropped. Anything else — a line that is not JSON, a
flipped byte, a line missing, lines out of order — is refused with the line and what is
wrong, because a journal that forgot a step would make the next run repeat it (a "backup"
of an already upgraded database over the only rollback point).

For the crash tests, ``HARBOR_UPGRADE_CRASH_AFTER_WRITES=N`` makes the process kill
itself (SIGKILL, no cleanup) right after its N-th journal write.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from .errors import InvalidInput, JournalDamaged
from .private import open_private, private_dir
from .secrets import mask_data

JOURNAL_NAME = "journal.jsonl"
CRASH_AFTER_WRITES_ENV = "HARBOR_UPGRADE_CRASH_AFTER_WRITES"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def record_sum(record: dict) -> str:
    """sha256 of a record's canonical text without its own ``sum``."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "sum"}).encode()).hexdigest()


def _damaged(path: Path | None, line: int, total: int, what: str) -> JournalDamaged:
    where = f"{path}" if path else "the journal"
    b = path.parent if path else None
    return JournalDamaged(
        f"{where} is damaged at line {line} of {total}: {what}; nothing was changed",
        hint=(f"the journal is how a run knows what it did: put back an intact copy of {where}; or move it aside "
              f"(mv {where} {where}.damaged) and run again: the backup in {b / 'backup' if b else 'the folder'} "
              "is kept, and adopted only after it is verified and the database is still at the state it holds"))


def parse_lines(text: str, path: Path | None = None) -> list[dict]:
    """The records of a journal text. A torn last line (a kill mid-write: no newline yet) is
    left out; any other damage raises JournalDamaged naming the line."""
    lines = text.split("\n")
    lines.pop()  # the text after the last newline: empty, or a torn last line
    records: list[dict] = []
    prev = None
    for i, line in enumerate(lines, 1):
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise _damaged(path, i, len(lines), f"not a JSON record ({e.msg} at column {e.colno})") from None
        if not isinstance(r, dict) or "event" not in r:
            raise _damaged(path, i, len(lines), "not a journal record")
        if r.get("seq") != i:
            raise _damaged(path, i, len(lines), f"record number {r.get('seq')!r}, expected {i} "
                                                "(a line is missing or out of order)")
        if "sum" not in r and prev is not None:
            raise _damaged(path, i, len(lines), "its checksum is missing")
        if "sum" in r:
            if r["sum"] != record_sum(r):
                raise _damaged(path, i, len(lines), "its checksum does not match its content (changed after it "
                                                    "was written)")
            if r.get("prev") != prev:
                raise _damaged(path, i, len(lines), "it does not follow the record before it")
            prev = r["sum"]
        records.append(r)
    return records


@dataclass
class Journal:
    path: Path
    records: list[dict] = field(default_factory=list)
    _writes: int = 0

    @classmethod
    def open(cls, backup_dir: str | os.PathLike) -> Journal:
        """The journal of backup_dir for writing (created 0600 in a 0700 folder when absent)."""
        d = private_dir(backup_dir)
        path = d / JOURNAL_NAME
        j = cls(path)
        if path.exists():
            fd = open_private(path, os.O_RDWR)
            with os.fdopen(fd, "r+b") as f:
                raw = f.read()
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    line = raw[:e.start].count(b"\n") + 1
                    raise _damaged(path, line, raw.count(b"\n"), "not UTF-8 text") from None
                j.records = parse_lines(text, path)
                complete = text.rfind("\n") + 1
                if complete != len(text):
                    # drop the torn tail so the next record starts on a line of its own
                    f.truncate(len(text[:complete].encode("utf-8")))
                    os.fsync(f.fileno())
        return j

    @classmethod
    def read(cls, backup_dir: str | os.PathLike) -> Journal:
        """An existing journal, read-only use (verify, rollback, report)."""
        path = Path(backup_dir) / JOURNAL_NAME
        if not path.exists():
            raise InvalidInput(f"{path} does not exist: {backup_dir} holds no upgrade run",
                               hint="pass the --backup-dir given to `harbor-upgrade run`",
                               reference="journal-missing")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _damaged(path, raw[:e.start].count(b"\n") + 1, raw.count(b"\n"), "not UTF-8 text") from None
        return cls(path, parse_lines(text, path))

    # -- writing -------------------------------------------------------------------
    def write(self, event: str, step: str | None = None, **data) -> dict:
        record = {"seq": len(self.records) + 1, "time": now_iso(), "event": event}
        if step is not None:
            record["step"] = step
        record.update(data)
        record = cast(dict, mask_data(json.loads(json.dumps(record, sort_keys=True, default=str))))
        record["prev"] = self.records[-1].get("sum") if self.records else None
        record["sum"] = record_sum(record)
        line = (_canonical(record) + "\n").encode("utf-8")
        fd = open_private(self.path)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(record)
        self._writes += 1
        self._maybe_crash()
        return record

    def _maybe_crash(self) -> None:
        limit = os.environ.get(CRASH_AFTER_WRITES_ENV)
        if limit and self._writes >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)

    def start(self, step: str, **data) -> dict:
        return self.write("start", step, **data)

    def done(self, step: str, **data) -> dict:
        return self.write("done", step, **data)

    def failed(self, step: str, error: str, **data) -> dict:
        return self.write("failed", step, error=error, **data)

    # -- reading -------------------------------------------------------------------
    def of_step(self, step: str) -> list[dict]:
        return [r for r in self.records if r.get("step") == step]

    def is_done(self, step: str) -> bool:
        return any(r["event"] == "done" for r in self.of_step(step))

    def done_record(self, step: str) -> dict | None:
        return next((r for r in reversed(self.of_step(step)) if r["event"] == "done"), None)

    def was_started(self, step: str) -> bool:
        return any(r["event"] == "start" for r in self.of_step(step))

    def first_unfinished(self, steps: Iterable[str]) -> str | None:
        return next((s for s in steps if not self.is_done(s)), None)

    def last(self, event: str) -> dict | None:
        return next((r for r in reversed(self.records) if r["event"] == event), None)

    def runs(self) -> int:
        """How many times `run` has been started on this backup folder."""
        return sum(1 for r in self.records if r["event"] == "run-start")
