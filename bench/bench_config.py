"""Benchmark of `harbor-upgrade migrate` (harbor.yml): time, and how often the file is parsed.

Cases:
  * a real-sized file (examples/harbor-1.10.yml, ~1.5 KB), 1.10.0 -> the newest config release
    (2.15.0: 16 steps);
  * the largest file we accept (just under 128 KiB: a harbor.yml plus an unknown mapping
    of ~2 100 entries), 1.10.0 -> the newest config release;
  * a 5 MB file: refused up front with a clear message.

Baseline: Harbor's own migrate re-parses the file at every step with PyYAML's pure-Python
loader; specs/config-migration.md §6.18 measured about 50 s for ONE step on 4.8 MB, i.e.
~10.4 s per MB per step. The baseline for a case is that rate x size x steps. Run:
    python bench/bench_config.py
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from harbor_upgrade.config import migrate_file
from harbor_upgrade.config.runner import MAX_BYTES
from harbor_upgrade.config.steps import TARGET
from harbor_upgrade.errors import InvalidInput

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "harbor-1.10.yml"
HARBOR_S_PER_MB_STEP = 50.0 / 4.8

_loads = 0
_real_load = YAML.load


def _counting_load(self, stream):
    global _loads
    _loads += 1
    return _real_load(self, stream)


YAML.load = _counting_load


def big_file(folder: Path, target_bytes: int) -> Path:
    p = folder / "harbor.yml"
    with p.open("w") as fh:
        fh.write(EXAMPLE.read_text())
        fh.write("site_inventory:\n")
        i = 0
        while fh.tell() < target_bytes:
            fh.write(f"  host_{i:06d}: rack {i % 40} slot {i % 12} owner platform\n")
            i += 1
    return p


def run(path: Path, out: Path, repeat: int) -> tuple[float, int, int]:
    global _loads
    times = []
    for _ in range(repeat):
        _loads = 0
        t0 = time.perf_counter()
        result = migrate_file(path, out, target=TARGET)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), _loads, len(result.steps)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small_t, small_loads, steps = run(EXAMPLE, folder / "out-small.yml", 20)
        size = EXAMPLE.stat().st_size / 1e6
        base = HARBOR_S_PER_MB_STEP * size * steps
        print(f"real-sized file   {EXAMPLE.stat().st_size:>9} B  {steps} steps  {small_t * 1000:8.1f} ms  "
              f"parsed {small_loads}x  baseline {base * 1000:8.1f} ms  ratio {base / small_t:6.1f}x")

        big = big_file(folder, MAX_BYTES - 4096)
        big_t, big_loads, steps = run(big, folder / "out-big.yml", 1)
        size = big.stat().st_size / 1e6
        base = HARBOR_S_PER_MB_STEP * size * steps
        print(f"largest accepted  {big.stat().st_size:>9} B  {steps} steps  {big_t:8.2f} s   "
              f"parsed {big_loads}x  baseline {base:8.1f} s   ratio {base / big_t:6.1f}x")

        huge_dir = folder / "huge"
        huge_dir.mkdir()
        huge = big_file(huge_dir, 5 * 1024 * 1024)
        t0 = time.perf_counter()
        try:
            migrate_file(huge)
        except InvalidInput as err:
            refused, message = time.perf_counter() - t0, err.message
        else:
            print("the 5 MB file was accepted, not refused")
            return 1
        base = HARBOR_S_PER_MB_STEP * huge.stat().st_size / 1e6 * 5
        print(f"5 MB file         {huge.stat().st_size:>9} B  refused in {refused * 1000:.1f} ms "
              f"(baseline ~{base:.0f} s for 5 steps): {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
