"""The artifacts step: every manifest in registry storage read into artifact metadata."""
from __future__ import annotations

from collections import Counter

from ...artifacts import backfill
from ...artifacts.prefetch import Prefetch, PrefetchIgnored
from ...registry import Storage
from ...terminal import printable
from ..context import Context, StepOutcome, open_installation_storage


def open_prefetch(ctx: Context, storage: Storage) -> Prefetch | None:
    """The prefetch run --prepare left in the backup folder, when it can be used (else why not, said)."""
    try:
        prefetch = Prefetch.open(ctx.backup_dir, storage)
    except PrefetchIgnored as e:
        ctx.progress.note(f"  the prefetch is not used: {e}; every repository is read from storage")
        return None
    if prefetch is not None:
        made = prefetch.header.get("created")
        ctx.progress.note(f"  prefetch of {len(prefetch):,} repositories (run --prepare, {made}): only repositories"
                          " whose listing changed since, or new ones, are read from storage")
    return prefetch


def step_artifacts(ctx: Context) -> StepOutcome:
    storage = open_installation_storage(ctx.inst)
    prefetch = None
    try:
        prefetch = open_prefetch(ctx, storage)
        # resume=True continues a backfill this run started and was cut short; else it starts afresh
        report = backfill(ctx.dsn, storage, jobs=ctx.opts.jobs, resume=True,
                          progress=ctx.progress.task("artifacts"), prefetch=prefetch)
    finally:
        if prefetch is not None:
            prefetch.close()
        storage.close()
    # names from storage: printable, never terminal control
    problems = [printable(f"{p.repository}@{p.digest[:19]}: {p.reason}") for p in report.problems]
    reasons = Counter(p.reason for p in report.problems)
    summary = (f"{report.artifacts_done:,} artifacts written, {report.children_created:,} index children and "
               f"{report.references_created:,} references created, {report.untagged_found:,} untagged manifests "
               f"left out, {len(report.ignored_tags)} dangling tags ignored")
    if prefetch is not None:
        ctx.outcome["prepare_seconds"] = prefetch.seconds
        summary += (f"; {report.prefetched:,} repositories from the prefetch, {report.reread:,} read again (changed "
                    "since run --prepare)" + (f", {prefetch.rejected} records refused" if prefetch.rejected else ""))
    if problems:
        summary += ("; not abstracted: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common())
                    + f" (e.g. {'; '.join(problems[:3])}); verify tells which were so before")
    return StepOutcome(summary,
                       changed={"artifacts_done": report.artifacts_done, "children_created": report.children_created,
                                "references_created": report.references_created, "problems": len(problems),
                                "data_version_set": report.data_version_set,
                                "prefetched": report.prefetched, "reread": report.reread})
