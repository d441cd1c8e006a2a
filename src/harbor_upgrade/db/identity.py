"""Which PostgreSQL server a DSN reaches: its cluster's system identifier, its listen
settings and major, and whether it answers at all. The engine step compares the first
with the data folder's control data, keeps the second for the new server and checks the
third after the switch."""
from __future__ import annotations

import psycopg

from ..errors import ExternalFailure, HarborUpgradeError
from .connection import connect, one

# What a client's DSN depends on: a new cluster is served with the old server's values.
LISTEN_SETTINGS = ("port", "listen_addresses", "unix_socket_directories")


def served_cluster(dsn: str) -> tuple[str, dict[str, str]]:
    """The system identifier of the cluster the DSN reaches, and its listen settings."""
    with connect(dsn) as conn:
        try:
            sysid = str(one(conn.execute("SELECT system_identifier FROM pg_control_system()"))[0])
            listen = {n: str(one(conn.execute(f"SHOW {n}"))[0]) for n in LISTEN_SETTINGS}
        except psycopg.Error as e:
            raise ExternalFailure(f"cannot read the system identifier of the --dsn server: {e}".strip(),
                                  hint="the engine step needs a superuser DSN (e.g. postgres)",
                                  reference="postgres-failed") from None
    return sysid, listen


def server_major(dsn: str) -> int:
    with connect(dsn) as conn:
        return conn.info.server_version // 10000


def answers(dsn: str) -> bool:
    try:
        connect(dsn).close()
    except HarborUpgradeError:
        return False
    return True
