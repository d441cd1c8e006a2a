"""What the commands report, as typed values: checks, step results, advice, the report.

The core builds these; ``report`` renders them (text and JSON, both from ``to_dict()``),
and the CLI picks the exit code from ``RunReport.exit_code``. Nothing here prints.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import ExitStatus, HarborUpgradeError

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class CheckResult:
    """One preflight or verification check and its outcome."""
    name: str
    status: str                  # pass | warn | fail
    detail: str
    hint: str | None = None
    samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def all_ok(checks: list[CheckResult]) -> bool:
    return all(c.ok for c in checks)


@dataclass
class StepResult:
    """One line of a report's steps: planned, resumed (done by an earlier run), run, or not run."""
    name: str
    ok: bool
    summary: str
    seconds: float | None = None
    planned: bool = False
    resumed: bool = False
    changed: dict | None = None
    checksums: dict | None = None
    estimate_seconds: float | None = None   # plan: how long the step should take here

    def to_dict(self) -> dict:
        d: dict = {"name": self.name, "ok": self.ok}
        if self.planned:
            d["planned"] = True
        if self.resumed:
            d["resumed"] = True
        if self.seconds is not None:
            d["seconds"] = self.seconds
        if self.estimate_seconds is not None:
            d["estimate_seconds"] = self.estimate_seconds
        d["summary"] = self.summary
        if self.changed is not None:
            d["changed"] = self.changed
        if self.checksums:
            d["checksums"] = self.checksums
        return d


@dataclass(frozen=True)
class Advice:
    """One thing the operator does next. ``kind`` says what it is about, so that a caller
    (the demo) can pick advice without reading its prose."""
    kind: str
    text: str

    # the kinds
    CONTINUE = "continue"            # fix the problem, run the same command again
    ROLLBACK = "rollback"            # how to go back to the backup
    RUN = "run"                      # the command that runs what was planned
    BEFORE_RUN = "before-run"        # what to settle before running it (components the path removes)
    FIX_CHECKS = "fix-checks"        # a preflight check failed
    INSTALL = "install"              # install the target release with the migrated harbor.yml
    RESCAN = "rescan"                # Clair's reports are gone: scan with Trivy
    REMOVED_LATER = "removed-later"  # components a later release removes
    ENGINE_CLEANUP = "engine-cleanup"    # the old PostgreSQL cluster is kept until cleanup
    ENGINE_SERVER = "engine-server"      # the new major is not the one Harbor's harbor-db image runs
    KEEP_BACKUP = "keep-backup"
    START_HARBOR = "start-harbor"
    HARBOR_DOWN = "harbor-down"      # a Compose stack left down by the run
    SAMPLE = "sample"                # the demo's own explanation


@dataclass(frozen=True)
class RunCommand:
    """The ``run`` that carries out a plan, as values; the CLI writes it as a command line."""
    harbor_yml: str
    backup_dir: str | None
    dsn: str | None = None                  # without its password
    to: str | None = None                   # the target release line, when one was asked for
    engine_bindir: str | None = None
    engine_mode: str = "copy"
    engine_old_bindir: str | None = None
    stop_harbor: bool = False
    drop_chartmuseum: bool = False


@dataclass
class RunReport:
    """The report of plan, run, verify, rollback and demo."""
    command: str
    ok: bool
    steps: list[StepResult]
    next: list[Advice] = field(default_factory=list)
    target: str | None = None
    installation: dict | None = None
    hops: list[str] | None = None
    backup_dir: str | None = None
    checks: list[CheckResult] | None = None
    journal: str | None = None
    verify: dict | None = None
    error: HarborUpgradeError | None = None
    extra: dict = field(default_factory=dict)   # a command's own sections (plan: harbor_path, removed; demo)
    run_command: RunCommand | None = None       # plan: the run it advises (the CLI puts it first in next)

    def advice(self, *kinds: str) -> list[Advice]:
        return [a for a in self.next if a.kind in kinds]

    @property
    def exit_code(self) -> ExitStatus:
        if self.ok:
            return ExitStatus.OK
        if self.error is not None:
            return self.error.exit_code
        return ExitStatus.CHANGES_NEEDED if self.command == "verify" else ExitStatus.UNSAFE_STATE

    def to_dict(self) -> dict:
        d: dict = {"ok": self.ok, "command": self.command}
        for name in ("target", "installation", "hops", "backup_dir"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        d.update(self.extra)
        if self.checks is not None:
            d["checks"] = [c.to_dict() for c in self.checks]
        d["steps"] = [s.to_dict() for s in self.steps]
        if self.journal is not None:
            d["journal"] = self.journal
        if self.verify is not None:
            d["verify"] = self.verify
        if self.error is not None:
            d["error"] = {"reference": self.error.reference, "message": self.error.message,
                          "hint": self.error.hint, "exit_code": int(self.error.exit_code)}
        d["next"] = [a.text for a in self.next]
        return d
