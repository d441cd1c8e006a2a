"""Locks of a run: one run per backup folder (a file lock), and one run per installation (an
advisory lock held in the installation's PostgreSQL cluster itself, so that two runs with
different backup folders — or from two machines — exclude each other).

The advisory lock is held by a session on the cluster's maintenance database (``postgres``),
not on the registry database: a session there would count as a connected client to the
checks that Harbor is stopped. Its key is derived from the registry database's name. A
session ends with its process, so a killed run never leaves the lock behind; a server
stopped under it (the engine step) drops it, and ``ensure`` takes it again on the new one.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import psycopg

from ..errors import UnsafeState
from ..postgres.tools import Conn
from ..private import open_private, private_dir

LOCK_FILE = "journal.lock"
APPLICATION = "harbor-upgrade run"


class RunLock:
    """One run per backup folder at a time."""

    def __init__(self, backup_dir: Path):
        private_dir(backup_dir)
        self.path = backup_dir / LOCK_FILE
        self.fd = open_private(self.path)

    def __enter__(self) -> RunLock:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise UnsafeState(f"another harbor-upgrade run is using {self.path}", reference="run-locked",
                              hint="wait for it to finish") from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def lock_key(dbname: str) -> int:
    return int.from_bytes(hashlib.sha256(b"harbor-upgrade run:" + dbname.encode()).digest()[:8], "big", signed=True)


class InstallationLock:
    """pg_try_advisory_lock on the installation's cluster for as long as the run works on it."""

    def __init__(self, dsn: str, what: str):
        self.conn = Conn.parse(dsn)
        self.key = lock_key(self.conn.dbname)
        self.what = what
        self.session: psycopg.Connection | None = None
        self.where: str | None = None

    def _connect(self) -> psycopg.Connection | None:
        for db in ("postgres", "template1"):
            try:   # psycopg leaves out a parameter that is None (no password: libpq's own sources)
                return psycopg.connect(self.conn.with_db(db).conninfo, autocommit=True, connect_timeout=10,
                                       application_name=APPLICATION, password=self.conn.password)
            except psycopg.Error:
                continue
        return None

    def ensure(self) -> bool:
        """Hold the lock (again, after a server restart); False when the cluster's maintenance
        database cannot be reached (the lock is then not held; the backup folder's lock still is)."""
        if self.session is not None and not self.session.closed:
            try:
                self.session.execute("select 1")
                return True
            except psycopg.Error:
                self.session.close()
        self.session = self._connect()
        if self.session is None:
            return False
        row = self.session.execute("select pg_try_advisory_lock(%s)", [self.key]).fetchone()
        assert row is not None  # a select of one expression without FROM returns one row
        got = row[0]
        if not got:
            holder = self.session.execute(
                "select a.pid, a.client_addr::text, a.backend_start from pg_locks l join pg_stat_activity a "
                "on a.pid = l.pid where l.locktype = 'advisory' and l.granted and l.database = "
                "(select oid from pg_database where datname = current_database()) "
                "and ((l.classid::bigint << 32) | l.objid::bigint) = %s", [self.key]).fetchone()
            self.session.close()
            self.session = None
            who = (f"session pid {holder[0]} from {holder[1] or 'a local socket'} since {holder[2]:%Y-%m-%d %H:%M}"
                   if holder else "another session")
            raise UnsafeState(f"another harbor-upgrade run is working on database {self.conn.dbname} ({who}); "
                              f"{self.what} was not started", reference="run-locked",
                              hint="wait for that run to finish; one installation takes one run at a time, "
                                   "whatever its --backup-dir")
        return True

    def __enter__(self) -> InstallationLock:
        self.ensure()
        return self

    def __exit__(self, *exc) -> None:
        if self.session is not None and not self.session.closed:
            self.session.close()   # ending the session releases the lock
