"""The config step: harbor.yml migrated to the target next to the original."""
from __future__ import annotations

from ...config import migrate_file
from ...journal import sha256_file
from ...secrets import mask_text
from ..context import Context, StepOutcome


def step_config(ctx: Context) -> StepOutcome:
    out = ctx.opts.output_config(ctx.inst)
    target = ctx.opts.target
    result = migrate_file(ctx.inst.harbor_yml, str(out), target=target)
    # what the migration assumed or kept against Harbor's own steps: the operator reads it here
    warnings = [mask_text(w) for w in result.warnings]
    return StepOutcome(f"{ctx.inst.config_version} → {target}: {out} ({len(result.changes)} changes)"
                       + (f"; {len(warnings)} warnings: " + "; ".join(warnings) if warnings else ""),
                       changed={"written": str(out), "warnings": warnings},
                       checksums={"input": sha256_file(ctx.inst.harbor_yml), "output": sha256_file(out)})
