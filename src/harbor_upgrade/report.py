"""Tell the operator: text tables, progress bars, JSON, and what to do next.

Every report is a ``results.RunReport`` (or its plain dict: ``ok``, ``command``, ``steps``
— one entry per step with its own ``ok`` — and sections such as ``checks``, ``verify``,
``next``); the text and JSON renderings are two views of that dict, and both pass through
secret masking last.
Progress goes to stderr: rich bars with rate and ETA on a terminal, a plain line every
few seconds otherwise.

For the crash tests, ``HARBOR_UPGRADE_CRASH_AFTER_PROGRESS=N`` makes the process kill
itself (SIGKILL) at its N-th progress event: inside a step, between two pieces of work.
"""
from __future__ import annotations

import copy
import io
import json
import os
import signal
import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .results import FAIL, PASS, WARN, RunReport
from .secrets import mask_data, mask_text

CRASH_AFTER_PROGRESS_ENV = "HARBOR_UPGRADE_CRASH_AFTER_PROGRESS"


# -- JSON -----------------------------------------------------------------------------
def to_json(report: dict | RunReport) -> str:
    if isinstance(report, RunReport):
        report = report.to_dict()
    return json.dumps(mask_data(json.loads(json.dumps(report, default=str))), indent=2, sort_keys=False)


# -- text -----------------------------------------------------------------------------
_STATUS_STYLE = {PASS: "green", WARN: "yellow", FAIL: "bold red", True: "green", False: "bold red"}


def _mark(value: object) -> Text:
    """A styled status; a Text, not markup: every printed string is taken literally."""
    if value is True:
        return Text("ok", style="green")
    if value is False:
        return Text("FAILED", style="bold red")
    return Text(str(value), style=_STATUS_STYLE.get(value, ""))


def _checks_table(title: str, checks: list[dict]) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    t.add_column("check")
    t.add_column("result")
    t.add_column("detail", overflow="fold")
    for c in checks:
        detail = c["detail"]
        if c.get("samples"):
            detail += "\n  e.g. " + "; ".join(c["samples"][:5])
        if c.get("hint") and c["status"] != PASS:
            detail += f"\n  → {c['hint']}"
        t.add_row(c["name"], _mark(c["status"]), detail)
    return t


def _steps_table(steps: list[dict]) -> Table:
    t = Table(title="Steps", title_justify="left")
    t.add_column("step")
    t.add_column("result")
    t.add_column("seconds", justify="right")
    t.add_column("what it did", overflow="fold")
    for s in steps:
        result = "planned" if s.get("planned") else ("resumed: done before" if s.get("resumed") else _mark(s["ok"]))
        secs = "" if s.get("seconds") is None else f"{s['seconds']:.1f}"
        if not secs and s.get("estimate_seconds") is not None:
            secs = f"≈ {s['estimate_seconds']:.1f}"
        t.add_row(s["name"], result, secs, s.get("summary", ""))
    return t


def _estimate_text(e: dict) -> str:
    """plan's estimate under its steps (the table shows each step's as '≈ seconds')."""
    s = e["inputs"]["storage"]
    text = (f"Estimated stop window: ≈ {e['window_seconds']:.0f} s (the steps above plus "
            f"{e['run_own_seconds']:.0f} s of preflight, census and journal; Harbor is stopped for all of it)")
    if e["prepare"]["seconds"]:
        text += (f"; run --prepare reads storage (≈ {e['prepare']['seconds']:.0f} s) while Harbor still serves, "
                 f"leaving ≈ {e['prepare']['window_seconds']:.0f} s")
    if s.get("sampled_artifacts"):
        text += (f". Storage measured on {s['sampled_artifacts']:,} artifacts of {s['sampled_repositories']} "
                 f"repositories ({s['artifacts_in_storage']:,} to read in {s['repositories']:,} repositories"
                 + ("" if s.get("listed_all", True) else ", the listing cut short: the database's count") + ")")
    elif s.get("problem"):
        text += f". Storage could not be sampled: {s['problem']}"
    return text + "."


def _counts_table(counts: list[dict]) -> Table:
    t = Table(title="Counts before → after", title_justify="left")
    t.add_column("what")
    t.add_column("before", justify="right")
    t.add_column("after", justify="right")
    t.add_column("rule")
    t.add_column("result")
    for c in counts:
        t.add_row(c["name"], "-" if c["before"] is None else str(c["before"]), str(c["after"]), c["rule"],
                  _mark(c["ok"]))
    return t


def _chart_text(charts: dict) -> str:
    if not charts["counted"]:
        return f"not counted in {charts['where']} ({charts['problem']})"
    if not charts["total"]:
        return f"none in {charts['where']}"
    projects = ", ".join(f"{name} ({n})" for name, n in charts["projects"].items())
    return f"{charts['total']} chart packages in {charts['where']}: {projects}"


def render_text(report: dict | RunReport, width: int = 110) -> str:
    if isinstance(report, RunReport):
        report = report.to_dict()
    buf = io.StringIO()
    # markup=False: paths, names and messages are the operator's text ('B[/x]', 'error [ref]'), never markup
    con = Console(file=buf, width=width, force_terminal=False, color_system=None, highlight=False, markup=False)
    inst = report.get("installation")
    if inst:
        db = inst.get("database") or {}
        comps = [k for k, v in (inst.get("components") or {}).items() if v]
        con.print(f"Installation: {inst['harbor_yml']}")
        con.print(f"  harbor.yml _version {inst.get('config_version')}, data_volume {inst['data_volume']}, "
                  f"storage {inst['storage']} ({inst['storage_kind']})")
        if db:
            con.print(f"  database schema {db.get('schema_version')}{' (dirty)' if db.get('dirty') else ''}, "
                      f"data version {db.get('data_version')}, PostgreSQL {db.get('server_version')}")
        if inst.get("pg_major_on_disk"):
            con.print(f"  PostgreSQL data folder {inst['pg_data_dir']} (major {inst['pg_major_on_disk']})")
        con.print(f"  components in use: {', '.join(comps) if comps else 'none of the optional ones'}")
        compose = inst.get("compose")
        if compose:
            con.print(f"  Docker Compose: {compose['compose_file']}, project {compose['project']}, images of "
                      f"{compose.get('release') or 'an unknown release'}; running: "
                      f"{', '.join(compose['running']) or 'nothing'}"
                      + (f" (Docker: {compose['docker_error']})" if compose.get("docker_error")
                         else f" (Docker Engine {compose.get('docker_version')})"))
            if compose.get("database_dir"):
                con.print(f"  harbor-db: {compose['database_image']} on {compose['database_dir']} (owner "
                          f"{compose.get('database_dir_owner')}, mode {compose.get('database_dir_mode')})")
    if report.get("hops"):
        con.print("Path: " + " → ".join(report["hops"]))
    way = report.get("harbor_path")
    if way and way.get("installs"):
        n = len(way["installs"])
        con.print(f"Harbor's own installers: {way['path']} ({n} install{'s' if n != 1 else ''}, each with its "
                  "downtime and its database migration at harbor-core's start)")
        if way.get("stops"):
            con.print("  cannot be skipped: " + ", ".join(r.rsplit(".", 1)[0] for r in way["stops"])
                      + " (the next install's upgrade guide covers nothing older)")
        if way.get("engine_moves"):
            con.print("  harbor-db moves the PostgreSQL data folder: " + "; ".join(way["engine_moves"]))
        con.print(f"  {way['ours']}")
    for r in report.get("removed") or []:
        charts = r.get("charts")
        if not r["in_use"]:
            con.print(f"Removed in {r['release']}: {r['component']} (not in use here"
                      + (f"; charts: {_chart_text(charts)}" if charts else "") + ")")
            continue
        con.print(f"Removed in {r['release']}: {r['component']}" + ("" if r["in_use"] else " (not in use here)")
                  + f". Lost: {r['lost']}." + (f" Charts: {_chart_text(charts)}." if charts else "")
                  + f" Before: {r['before']}.")
    for loss in [x for x in report.get("data_losses") or [] if x["rows"]]:
        con.print(f"Dropped by design in {loss['release']}: {loss['rows']:,} rows of {loss['what']}")
    if report.get("checks"):
        con.print(_checks_table("Preflight", report["checks"]))
    if report.get("steps"):
        con.print(_steps_table(report["steps"]))
    if report.get("estimate"):
        con.print(_estimate_text(report["estimate"]))
    verify = report.get("verify") or ({"counts": report["counts"], "checks": report.get("invariants", [])}
                                      if "counts" in report else None)
    if verify:
        if verify.get("counts"):
            con.print(_counts_table(verify["counts"]))
        if verify.get("checks"):
            con.print(_checks_table("Verification", verify["checks"]))
    if report.get("window_seconds") is not None:
        prepared = report.get("prepare_seconds")
        con.print(f"Stop window (Harbor stopped → verified): {report['window_seconds']:.1f} s; total "
                  f"{report['total_seconds']:.1f} s"
                  + (f" (with run --prepare: {prepared:.1f} s while Harbor served)" if prepared else ""))
    elif report.get("command") == "run --prepare" and report.get("prepare_seconds") is not None:
        con.print(f"Prepared in {report['prepare_seconds']:.1f} s while Harbor served (nothing stopped)")
    if report.get("error"):
        err = report["error"]
        con.print(f"error [{err.get('reference')}]: {err.get('message')}")
        if err.get("hint"):
            con.print(f"hint: {err['hint']}")
    if report.get("journal"):
        con.print(f"Journal: {report['journal']}")
    con.print(f"Result: {'OK' if report['ok'] else 'FAILED'}")
    if report.get("next"):
        con.print("What to do next:")
        for i, line in enumerate(report["next"], 1):
            con.print(f"  {i}. {line}")
    return mask_text(buf.getvalue())


# -- progress -------------------------------------------------------------------------
class _Shared:
    """What a reporter and its task views share: the bars, the line clock, the event count."""

    def __init__(self) -> None:
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.last_line: dict[str, float] = {}
        self.events = 0


class ProgressReporter:
    """Progress of the long steps, on stderr (the ``progress.Progress`` protocol): a rich bar
    per label on a terminal, else a plain line every few seconds. ``task(label)`` gives a
    view that counts under its own label, sharing the stream and the bars."""

    def __init__(self, stream=None, enabled: bool = True, tty: bool = False, label: str = "progress"):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and tty  # the CLI's console says whether stream is a terminal
        self.label = label
        self._shared = _Shared()
        self.total: int | None = None
        self.done = 0
        self._first: int | None = None  # the count at start: a resumed step starts past zero
        self._started = time.monotonic()

    def __enter__(self) -> ProgressReporter:
        if self.tty:
            self._shared.bars = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TextColumn("{task.fields[rate]}", markup=False), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(file=self.stream, markup=False, highlight=False), transient=False)
            self._shared.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._shared.bars:
            self._shared.bars.stop()

    def task(self, label: str) -> ProgressReporter:
        view = copy.copy(self)
        view.label, view.total, view.done, view._first, view._started = label, None, 0, None, time.monotonic()
        return view

    def _tick(self) -> None:
        self._shared.events += 1
        limit = os.environ.get(CRASH_AFTER_PROGRESS_ENV)
        if limit and self._shared.events >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)

    def note(self, text: str) -> None:
        self._tick()
        if not self.enabled:
            return
        if self._shared.bars:
            self._shared.bars.console.print(mask_text(text))
        else:
            print(mask_text(text), file=self.stream, flush=True)

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        self._update()

    def advance(self, count: int) -> None:
        self.done += count
        self._update()

    def finish(self) -> None:
        self._update()

    def _update(self) -> None:
        self._tick()
        if not self.enabled:
            return
        label, done, total, shared = self.label, self.done, self.total, self._shared
        if self._first is None:
            self._first = done
        rate = (done - self._first) / max(time.monotonic() - self._started, 1e-6)
        if shared.bars:
            if label not in shared.tasks:
                shared.tasks[label] = shared.bars.add_task(label, total=total, rate="")
            shared.bars.update(shared.tasks[label], completed=done, total=total, rate=f"{rate:,.0f}/s")
            return
        now = time.monotonic()
        if now - shared.last_line.get(label, 0) < 2 and not (total and done >= total):
            return
        shared.last_line[label] = now
        if total:
            eta = (total - done) / rate if rate > 0 else 0
            line = f"{label}: {done:,}/{total:,} ({100 * done / total:.0f}%), {rate:,.0f}/s, ETA {eta:,.0f} s"
        else:
            line = f"{label}: {done:,} done, {rate:,.0f}/s"
        print(line, file=self.stream, flush=True)
