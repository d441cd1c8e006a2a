"""tests.support.procs reads every process's command line as `ps` shows it."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.support.procs import process_argvs


def test_a_child_process_is_seen_with_its_arguments():
    code = "import time; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code, "argv-marker 7", ""])
    try:
        # Until the child has called exec, /proc shows the forked parent's command line (or none).
        deadline = time.monotonic() + 10
        seen = dict(process_argvs())
        while "argv-marker 7" not in seen.get(child.pid, []) and time.monotonic() < deadline:
            time.sleep(0.01)
            seen = dict(process_argvs())
        assert seen[child.pid][1:] == ["-c", code, "argv-marker 7", "", ""]   # cmdline ends with a NUL
        assert os.getpid() in seen and all(isinstance(pid, int) for pid in seen)
    finally:
        child.kill()
        child.wait()
