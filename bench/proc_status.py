"""A field of /proc/<pid>/status, for the benchmarks' memory figures.

wait4's ru_maxrss is no good for a child started by fork and exec: Linux carries the peak of
the forking parent (a benchmark holding its generated data) across the exec."""
from __future__ import annotations


def status_kib(pid: int, field: str) -> int | None:
    """The value in KiB of a field such as VmRSS or VmHWM; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
