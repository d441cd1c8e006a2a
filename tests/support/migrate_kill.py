"""A `harbor-upgrade db migrate` subprocess killed with SIGKILL while it is inside a given step:
shared by the integration and conformance tests (a test module never imports another)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

# A table only the given step writes (and lint does not read): holding an exclusive
# lock on it stops the migration inside that step.
STEP_BLOCKER = {"2.0.0": "notification_policy", "2.1.0": "registry", "2.2.0": "robot",
                "2.3.0": "harbor_user", "2.4.0": "project_member"}


def kill_during_step(dsn: str, step: str, table: str | None = None) -> int:
    """Run `harbor-upgrade db migrate` in a subprocess, SIGKILL it while it is inside
    `step` (waiting for `table`, by default the step's STEP_BLOCKER), and return the pid
    of its (now orphaned) server backend."""
    with psycopg.connect(dsn) as blocker:
        blocker.execute(f"LOCK TABLE {table or STEP_BLOCKER[step]} IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen([sys.executable, "-m", "harbor_upgrade", "db", "migrate", "--dsn", dsn,
                                 "--force-connected"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with psycopg.connect(dsn, autocommit=True) as watch:
            backend = None
            for _ in range(600):
                row = watch.execute("""SELECT pid FROM pg_stat_activity WHERE application_name =
                                       'harbor-upgrade' AND wait_event_type = 'Lock'""").fetchone()
                if row:
                    backend = row[0]
                    break
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            assert backend, "the migration never reached the blocked step"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
        blocker.rollback()
    with psycopg.connect(dsn, autocommit=True) as watch:
        for _ in range(600):
            if not watch.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone():
                break
            time.sleep(0.05)
    return backend
