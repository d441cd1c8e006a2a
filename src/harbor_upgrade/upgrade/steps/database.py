"""The database step: the release steps, one transaction each."""
from __future__ import annotations

from ... import db
from ..context import Context, StepOutcome


def step_database(ctx: Context) -> StepOutcome:
    seen: set[str] = set()

    def one_line_per_release(step: str, _what: str) -> None:
        if step not in seen:
            seen.add(step)
            ctx.progress.note(f"  release step {step}")
    report = db.migrate(ctx.dsn, to=ctx.opts.target, progress=one_line_per_release)
    names = [s.name for s in report.steps]
    lost = [f"{loss.rows:,} rows of {loss.what} ({loss.release})" for loss in report.lost if loss.rows]
    left_to_core = list(dict.fromkeys(note for s in report.steps for note in s.left_to_core))
    return StepOutcome(f"schema {report.from_version} → {report.to_version}"
                       + (f": {', '.join(names)}" if names else " (nothing to do)")
                       + (f"; dropped by design: {'; '.join(lost)}" if lost else "")
                       + (f"; left to harbor-core at its first start: {'; '.join(left_to_core)}"
                          if left_to_core else ""),
                       changed={"from_version": report.from_version, "to_version": report.to_version,
                                "rows": sum(s.rows for s in report.steps), "lost": lost,
                                "release_seconds": {s.release: s.seconds for s in report.steps},
                                "left_to_core": left_to_core})
