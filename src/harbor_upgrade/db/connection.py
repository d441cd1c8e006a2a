"""Connecting to the Harbor database (psycopg 3) and small catalog helpers."""
from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..errors import ExternalFailure, InvalidInput
from ..secrets import dsn_shape_problem, mask_dsn, mask_text, register, register_dsn

APPLICATION_NAME = "harbor-upgrade"
DSN_HINT = ("a DSN is postgresql://USER@HOST:PORT/DBNAME or 'host=HOST port=PORT user=USER dbname=DBNAME'; "
            "leave the password out of it: libpq reads PGPASSWORD or ~/.pgpass (PGPASSFILE), or pass "
            "harbor-upgrade --password-file FILE")


def check_dsn(dsn: str) -> dict[str, Any]:
    """The DSN's settings as libpq reads them; a DSN that cannot be read as meant is bad input
    (exit 2, invalid-dsn), in every command, before any connection is tried."""
    register_dsn(dsn)
    problem = dsn_shape_problem(dsn)
    if problem is None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            problem = mask_text(str(exc).strip()) or "libpq cannot read it"
        else:
            ports = [p for p in str(params.get("port") or "").split(",") if p]
            if any(not p.strip().isdigit() or not 0 < int(p) < 65536 for p in ports):
                problem = f"port {params['port']!r} is not a port number"
            else:
                return params
    raise InvalidInput(f"cannot use the DSN {mask_dsn(dsn)}: {problem}", hint=DSN_HINT, reference="invalid-dsn")


# Set by the CLI on a terminal: asks for the password when the server wants one that neither the
# DSN, PGPASSWORD, the password file nor ~/.pgpass gave. Takes "user@host", returns the password.
password_prompt: Callable[[str], str | None] | None = None


def ask_password(exc: Exception, params: dict[str, Any]) -> bool:
    """After a refused connection: if the server asked for a password nobody gave, ask the operator
    (once per process: the answer goes to PGPASSWORD, for libpq and the pg_dump/psql children)."""
    if password_prompt is None or "password" in params or os.environ.get("PGPASSWORD"):
        return False
    if "no password supplied" not in str(exc):
        return False
    user = params.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    answer = password_prompt(f"{user}@{params.get('host') or os.environ.get('PGHOST') or 'the local socket'}")
    if not answer:
        return False
    register(answer)
    os.environ["PGPASSWORD"] = answer
    return True


def connect(dsn: str, application_name: str = APPLICATION_NAME, hint: str | None = None) -> psycopg.Connection:
    """An autocommit connection; every write happens in an explicit transaction. The DSN's
    password is registered as a secret, and a failure names the DSN without it. A DSN needs no
    password: libpq takes it from PGPASSWORD or ~/.pgpass (PGPASSFILE), or the operator is asked."""
    params = check_dsn(dsn)
    try:
        try:
            return psycopg.connect(dsn, autocommit=True, application_name=application_name, connect_timeout=10)
        except psycopg.OperationalError as exc:
            if not ask_password(exc, params):
                raise
            return psycopg.connect(dsn, autocommit=True, application_name=application_name, connect_timeout=10)
    except psycopg.Error as exc:
        raise ExternalFailure(f"cannot connect to the Harbor database {mask_dsn(dsn)}: "
                              f"{str(exc).strip()}", reference="db-unreachable",
                              hint=hint or "check --dsn (host, port, user, database name) and that "
                                           "PostgreSQL is running") from None


def one(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    """The row of a query that always returns one (an aggregate, SHOW, a function, a one-row table)."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the database returned no row to a query that always returns one")
    return row


def table_exists(conn: psycopg.Connection, table: str) -> bool:
    return one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)))[0]


def columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute("""SELECT column_name FROM information_schema.columns
                           WHERE table_schema = 'public' AND table_name = %s""", (table,)).fetchall()
    return {r[0] for r in rows}


def index_exists(conn: psycopg.Connection, name: str) -> bool:
    """Indexes are relations too: to_regclass finds them by name."""
    return table_exists(conn, name)
