"""Connecting to the Harbor database (psycopg 3) and small catalog helpers."""
from __future__ import annotations

import psycopg

from ..errors import ExternalFailure
from ..secrets import mask_dsn, register_dsn

APPLICATION_NAME = "harbor-upgrade"


def connect(dsn: str, application_name: str = APPLICATION_NAME, hint: str | None = None) -> psycopg.Connection:
    """An autocommit connection; every write happens in an explicit transaction. The DSN's
    password is registered as a secret, and a failure names the DSN without it."""
    register_dsn(dsn)
    try:
        return psycopg.connect(dsn, autocommit=True, application_name=application_name, connect_timeout=10)
    except psycopg.Error as exc:
        raise ExternalFailure(f"cannot connect to the Harbor database {mask_dsn(dsn)}: "
                              f"{str(exc).strip()}", reference="db-unreachable",
                              hint=hint or "check --dsn (host, port, user, database name) and that "
                                           "PostgreSQL is running") from None


def table_exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()[0]


def columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute("""SELECT column_name FROM information_schema.columns
                           WHERE table_schema = 'public' AND table_name = %s""", (table,)).fetchall()
    return {r[0] for r in rows}


def index_exists(conn: psycopg.Connection, name: str) -> bool:
    """Indexes are relations too: to_regclass finds them by name."""
    return table_exists(conn, name)
