"""The bookkeeping Harbor keeps about its schema, and our guards around it.

golang-migrate keeps exactly one row ``schema_migrations(version, dirty)``: before a
file it writes (v, dirty=true), after it (v, false). A file that fails leaves
(v, true) with the file rolled back. The data version (has the artifact abstraction
run?) lives in ``schema_migrations.data_version`` on 2.0 and in ``data_migrations``
from 2.1 on: 0 = not yet, 30 = done.

We apply a whole release step in one transaction that ends by writing (v, false), so
a failure or a kill leaves the previous release's (version, false): never dirty.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from .connection import columns, one, table_exists

# pg_advisory_lock key: "harbor-upgrade db" folded into a bigint, fixed for all versions.
LOCK_KEY = 0x68617262_6F727570
# The data version once the artifact abstraction has run (harbor-core walks while below it).
DATA_VERSION_ABSTRACTED = 30


@dataclass(frozen=True)
class LedgerState:
    """The one definition of the bookkeeping: ``version`` is the highest recorded schema
    version; ``dirty`` is its flag, or true when there are several rows (golang-migrate
    always leaves one); ``data_version`` is what harbor-core reads (see read_data_version)."""
    version: int | None      # None: no schema_migrations row (not a Harbor database)
    dirty: bool
    data_version: int | None

    @property
    def abstracted(self) -> bool:
        """Has the artifact abstraction run (harbor-core will not walk the registry)?"""
        return self.data_version is not None and self.data_version >= DATA_VERSION_ABSTRACTED


def read_state(conn: psycopg.Connection) -> LedgerState:
    """The schema and data versions of the database (read-only; any connection)."""
    if not table_exists(conn, "schema_migrations"):
        return LedgerState(None, False, None)
    rows = conn.execute("SELECT version, dirty FROM schema_migrations ORDER BY version DESC").fetchall()
    if not rows:
        return LedgerState(None, False, None)
    version, dirty = rows[0]
    return LedgerState(int(version), bool(dirty) or len(rows) > 1, read_data_version(conn))


def read_data_version(conn: psycopg.Connection) -> int | None:
    """What harbor-core reads to decide whether to run the artifact abstraction: the first
    data_migrations row by id (2.1+; no row or NULL reads as 0), on 2.0 the
    schema_migrations.data_version column; None before 2.0."""
    if table_exists(conn, "data_migrations"):
        row = conn.execute("SELECT version FROM data_migrations ORDER BY id LIMIT 1").fetchone()
        return 0 if row is None or row[0] is None else int(row[0])
    if "data_version" in columns(conn, "schema_migrations"):
        row = one(conn.execute("SELECT max(data_version) FROM schema_migrations"))
        return None if row[0] is None else int(row[0])
    return None


def write_version(conn: psycopg.Connection, version: int) -> None:
    """Exactly what golang-migrate leaves after a successful file: one row (v, false).
    Truncating also clears 2.0's data_version column, as golang-migrate does."""
    conn.execute("TRUNCATE schema_migrations")
    conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, false)", (version,))


def mark_abstracted(conn: psycopg.Connection) -> bool:
    """What harbor-core runs after its walk, so it does not walk again. Like harbor-core it
    stores nothing when data_migrations has no row (then core walks at its next start)."""
    cur = conn.execute("UPDATE data_migrations SET version = %s, update_time = now()",
                       (DATA_VERSION_ABSTRACTED,))
    return cur.rowcount > 0


def try_lock(conn: psycopg.Connection) -> bool:
    return bool(one(conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)))[0])


def unlock(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def lock_holder(conn: psycopg.Connection) -> str | None:
    row = conn.execute("""
        SELECT a.pid, a.application_name, a.client_addr
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND ((l.classid::bigint << 32) | l.objid::bigint) = %s""", (LOCK_KEY,)).fetchone()
    if row is None:
        return None
    return f"pid {row[0]} ({row[1] or 'no application name'}, {row[2] or 'local socket'})"


CLIENTS_SETTLE_S = 2.0


def other_clients(conn: psycopg.Connection, settle: float = CLIENTS_SETTLE_S) -> list[str]:
    """Other sessions on this database (a running harbor-core, a psql...). A session closed a
    moment ago (a psql or `db status` just before this command) is still listed until its
    server process has exited, which a loaded machine may take a while to schedule: sessions
    found are asked again for up to ``settle`` seconds, and only those still there are returned."""
    def sessions() -> list[tuple]:
        conn.execute("SELECT pg_stat_clear_snapshot()")   # a transaction reads a snapshot otherwise
        return conn.execute("""
            SELECT pid, usename, application_name, client_addr, state
            FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND backend_type = 'client backend'
            ORDER BY pid""").fetchall()
    rows = sessions()
    deadline = time.monotonic() + settle
    while rows and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = sessions()
    return [f"pid {pid} user {user} application {app or '-'} from {addr or 'local socket'} ({state})"
            for pid, user, app, addr, state in rows]


def set_clean_version(conn: psycopg.Connection, version: int) -> None:
    """Record (version, false) keeping the row's other columns (2.0's data_version):
    used by repair, which must not lose what harbor-core wrote."""
    n = one(conn.execute("SELECT count(*) FROM schema_migrations"))[0]
    if n == 1:
        conn.execute("UPDATE schema_migrations SET version = %s, dirty = false", (version,))
    else:
        write_version(conn, version)
