"""The config step: harbor.yml migrated to the target next to the original."""
from __future__ import annotations

from ...config import migrate_file
from ...journal import sha256_file
from ...versions import TARGET
from ..context import Context


def step_config(ctx: Context) -> dict:
    out = ctx.opts.output_config(ctx.inst)
    result = migrate_file(ctx.inst.harbor_yml, str(out), target=TARGET)
    changes = getattr(result, "changes", None)
    return {"summary": f"{ctx.inst.config_version} → {TARGET}: {out}"
                       + (f" ({len(changes)} changes)" if changes is not None else ""),
            "changed": {"written": str(out)},
            "checksums": {"input": sha256_file(ctx.inst.harbor_yml), "output": sha256_file(out)}}
