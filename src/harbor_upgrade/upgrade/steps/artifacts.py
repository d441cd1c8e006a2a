"""The artifacts step: every manifest in registry storage read into artifact metadata."""
from __future__ import annotations

from collections import Counter

from ...artifacts import backfill
from ...terminal import printable
from ..context import Context, StepOutcome, open_installation_storage


def step_artifacts(ctx: Context) -> StepOutcome:
    storage = open_installation_storage(ctx.inst)
    try:
        # resume=True continues a backfill this run started and was cut short; else it starts afresh
        report = backfill(ctx.dsn, storage, jobs=ctx.opts.jobs, resume=True,
                          progress=ctx.progress.task("artifacts"))
    finally:
        storage.close()
    # names from storage: printable, never terminal control
    problems = [printable(f"{p.repository}@{p.digest[:19]}: {p.reason}") for p in report.problems]
    reasons = Counter(p.reason for p in report.problems)
    summary = (f"{report.artifacts_done:,} artifacts written, {report.children_created:,} index children and "
               f"{report.references_created:,} references created, {report.untagged_found:,} untagged manifests "
               f"left out, {len(report.ignored_tags)} dangling tags ignored")
    if problems:
        summary += ("; not abstracted: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common())
                    + f" (e.g. {'; '.join(problems[:3])}); verify tells which were so before")
    return StepOutcome(summary,
                       changed={"artifacts_done": report.artifacts_done, "children_created": report.children_created,
                                "references_created": report.references_created, "problems": len(problems),
                                "data_version_set": report.data_version_set})
