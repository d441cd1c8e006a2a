"""tests.support.procs reads every process's command line as `ps` shows it."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support.procs import process_argvs


def test_a_child_process_is_seen_with_its_arguments():
    code = "import time; time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code, "argv-marker 7", ""])
    try:
        seen = dict(process_argvs())
        assert seen[child.pid][1:] == ["-c", code, "argv-marker 7", "", ""]   # cmdline ends with a NUL
        assert os.getpid() in seen and all(isinstance(pid, int) for pid in seen)
    finally:
        child.kill()
        child.wait()
