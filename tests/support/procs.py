"""Every process's command line, read from /proc: what other local users see in `ps`. The tests
and bench/chaos.py watch it for secrets, docker-proxy addresses and leftover servers."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def process_argvs() -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every process that can be read now; a process gone meanwhile is skipped.
    argv is /proc/PID/cmdline split at its NULs (decoded, undecodable bytes replaced)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        yield int(entry), [a.decode(errors="replace") for a in raw.split(b"\0")]
