"""The run journal: what an upgrade run has done, step by step, in the backup folder.

One JSON object per line in ``<backup-dir>/journal.jsonl``, appended and fsync'd before
the step it announces does anything (``start``) and after it is complete (``done``), so
that a run killed at any moment leaves a journal that tells the next run where to pick
up: the first step without a ``done`` record. A line cut short by a kill is dropped on
open. Every record passes through secret masking before it is written.

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

from .errors import InvalidInput
from .secrets import mask_data

JOURNAL_NAME = "journal.jsonl"
CRASH_ENV = "HARBOR_UPGRADE_CRASH_AFTER_WRITES"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def parse_lines(text: str) -> list[dict]:
    """The complete records of a journal text; a torn last line (a kill mid-write) is left out."""
    records = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # only the last line can be torn: records are appended one by one
    return records


@dataclass
class Journal:
    path: Path
    records: list[dict] = field(default_factory=list)
    _writes: int = 0

    @classmethod
    def open(cls, backup_dir: str | os.PathLike) -> Journal:
        d = Path(backup_dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / JOURNAL_NAME
        j = cls(path)
        if path.exists():
            text = path.read_text(encoding="utf-8")
            j.records = parse_lines(text)
            complete = "".join(json.dumps(r, sort_keys=True) + "\n" for r in j.records)
            if complete != text:
                # drop the torn tail so the next record starts on a line of its own
                tmp = path.with_suffix(".tmp")
                tmp.write_text(complete, encoding="utf-8")
                os.replace(tmp, path)
        return j

    @classmethod
    def read(cls, backup_dir: str | os.PathLike) -> Journal:
        """An existing journal, read-only use (verify, rollback, report)."""
        path = Path(backup_dir) / JOURNAL_NAME
        if not path.exists():
            raise InvalidInput(f"{path} does not exist: {backup_dir} holds no upgrade run",
                               hint="pass the --backup-dir given to `harbor-upgrade run`",
                               reference="journal-missing")
        return cls(path, parse_lines(path.read_text(encoding="utf-8")))

    # -- writing -------------------------------------------------------------------
    def write(self, event: str, step: str | None = None, **data) -> dict:
        record = {"seq": len(self.records) + 1, "time": now_iso(), "event": event}
        if step is not None:
            record["step"] = step
        record.update(data)
        record = mask_data(json.loads(json.dumps(record, sort_keys=True, default=str)))
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.records.append(record)
        self._writes += 1
        self._maybe_crash()
        return record

    def _maybe_crash(self) -> None:
        limit = os.environ.get(CRASH_ENV)
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
