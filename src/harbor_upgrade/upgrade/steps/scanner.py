"""The scanner step: Clair out, Trivy in (db.scanner does it, in one transaction)."""
from __future__ import annotations

from ...db.scanner import replace_clair_with_trivy
from ..context import Context, StepOutcome


def step_scanner(ctx: Context) -> StepOutcome:
    change = replace_clair_with_trivy(ctx.dsn)
    parts = [f"Clair removed with {change.clair_reports_removed} reports" if change.clair_removed
             else "no Clair registration left"]
    parts.append("Trivy registered" if change.trivy_registered else "Trivy already registered")
    parts.append(f"default scanner: {change.default}")
    return StepOutcome("; ".join(parts), changed=change.changed())
