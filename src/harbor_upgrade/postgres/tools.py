"""Client-side PostgreSQL helpers shared by backup and the engine upgrade.

pg_dump, pg_restore and psql must be at least as new as the server they talk to; a
DSN's password travels in the environment (PGPASSWORD), never on a command line where
``ps`` would show it. Row counts and sequence values are the evidence we compare before
and after a restore or an engine upgrade.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..db.connection import ask_password, check_dsn, one
from ..errors import ExternalFailure
from ..secrets import mask_dsn, mask_text
from .cluster import PgBinaries, candidate_bindirs, major_of
from .server import runnable_bindir


@dataclass(frozen=True)
class Conn:
    """A DSN split into what a libpq client needs: a password-free conninfo and its env."""
    conninfo: str
    password: str | None
    dbname: str

    @classmethod
    def parse(cls, dsn: str) -> Conn:
        params = check_dsn(dsn)
        password = params.pop("password", None)
        dbname = params.get("dbname") or params.get("user") or os.environ.get("PGDATABASE", "postgres")
        return cls(make_conninfo("", **params), password, dbname)

    def with_db(self, dbname: str) -> Conn:
        params = conninfo_to_dict(self.conninfo)
        params["dbname"] = dbname
        return Conn(make_conninfo("", **params), self.password, dbname)

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e.setdefault("PGCONNECT_TIMEOUT", "10")
        if self.password is not None:
            e["PGPASSWORD"] = self.password
        return e

    def connect(self) -> psycopg.Connection:
        kw: dict[str, Any] = {"password": self.password} if self.password is not None else {}
        try:
            try:
                return psycopg.connect(self.conninfo, autocommit=True, **kw)
            except psycopg.OperationalError as e:
                if not ask_password(e, conninfo_to_dict(self.conninfo) | kw):
                    raise
                return psycopg.connect(self.conninfo, autocommit=True, **kw)
        except psycopg.OperationalError as e:
            raise ExternalFailure(f"cannot connect to {mask_dsn(self.conninfo)}: {mask_text(str(e)).strip()}",
                                  hint="check the DSN and that PostgreSQL is running",
                                  reference="db-unreachable") from None


def server_version(conn: psycopg.Connection) -> tuple[str, int]:
    """('15.18', 15) — the human version and the major."""
    num = int(one(conn.execute("show server_version_num"))[0])
    text = one(conn.execute("show server_version"))[0].split()[0]
    return text, num // 10000  # 90624 -> 9 (9.6, as PG_VERSION and the bin folder say), 150018 -> 15


def client_binaries(server_major: int) -> PgBinaries:
    """Client tools for a server: the same major if installed, else the oldest newer one."""
    found = sorted({major_of(b): b for b in reversed(candidate_bindirs())}.items())
    for major, bindir in found:
        if major == server_major:
            return PgBinaries(runnable_bindir(bindir), major)
    for major, bindir in found:
        if major > server_major:
            return PgBinaries(runnable_bindir(bindir), major)
    raise ExternalFailure(f"no PostgreSQL client tools of version {server_major} or newer found",
                          hint="install postgresql-client of the server's major version, or set PG_BIN",
                          reference="postgres-missing")


def run_tool(args: list[str], conn: Conn | None = None, what: str = "", **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, env=conn.env() if conn else None, **kw)
    if r.returncode != 0:
        name = os.path.basename(args[0])
        raise ExternalFailure(mask_text(f"{name} failed{' ' + what if what else ''} (exit {r.returncode}): "
                                        f"{(r.stderr or r.stdout).strip()[-3000:]}"),
                              reference="postgres-failed")
    return r


# Lines of a plain dump that differ between two dumps of the same data: the versions of
# the tools and, since 15.14/16.10/17.6/18.0, the random key of \restrict.
_VOLATILE_PREFIXES = (b"-- Dumped from database version", b"-- Dumped by pg_dump version",
                      b"\\restrict ", b"\\unrestrict ")
_VOLATILE_RE = re.compile(b"(?m)^(?:" + b"|".join(re.escape(p) for p in _VOLATILE_PREFIXES) + b").*\n")


def canonical_lines(lines: Iterable[bytes]) -> Iterator[bytes]:
    return (line for line in lines if not line.startswith(_VOLATILE_PREFIXES))


@contextmanager
def _dump_stdout(args: list[str], conn: Conn | None) -> Iterator[IO[bytes]]:
    """The stdout of a pg_dump/pg_restore command to read through; its failure, after, as an
    ExternalFailure quoting its stderr."""
    with tempfile.TemporaryFile() as err, subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=err, env=conn.env() if conn else None) as p:
        assert p.stdout is not None  # stdout=PIPE
        yield p.stdout
        p.stdout.read()   # whatever the reader left, so the command can finish
        p.wait()
        err.seek(0)
        if p.returncode != 0:
            raise ExternalFailure(mask_text(f"{os.path.basename(args[0])} failed (exit {p.returncode}): "
                                            f"{err.read().decode(errors='replace')[-3000:]}"),
                                  reference="postgres-failed")


def sql_digest(args: list[str], conn: Conn | None = None) -> str:
    """sha256 of the canonical plain-SQL text a pg_dump/pg_restore command writes to stdout
    (the same bytes as canonical_lines keeps, filtered a few MiB at a time)."""
    h = hashlib.sha256()
    with _dump_stdout(args, conn) as stdout:
        rest = b""
        while chunk := stdout.read(4 << 20):
            whole, sep, rest = (rest + chunk).rpartition(b"\n")
            if sep:
                h.update(_VOLATILE_RE.sub(b"", whole + sep))
        if rest and not rest.startswith(_VOLATILE_PREFIXES):
            h.update(rest)
    return h.hexdigest()


def data_fingerprint(args: list[str], conn: Conn | None = None) -> dict[str, str]:
    """sha256 of the rows of every table (keyed by its COPY line) and of the sequence values,
    as a plain data-only dump written to stdout by a pg_dump/pg_restore command. The rows are
    the server's own text output, the same on any major; the rest of a dump is not."""
    out: dict[str, str] = {}
    setvals: list[bytes] = []
    with _dump_stdout(args, conn) as stdout:
        key, h = None, hashlib.sha256()
        for line in stdout:
            if key is None:
                if line.startswith(b"COPY "):
                    key, h = line.decode("utf-8", "replace").strip(), hashlib.sha256()
                elif line.startswith(b"SELECT pg_catalog.setval("):
                    setvals.append(line)
            elif line == b"\\.\n":
                out[key] = h.hexdigest()
                key = None
            else:
                h.update(line)
    out["sequences"] = hashlib.sha256(b"".join(sorted(setvals))).hexdigest()
    return out


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every user table (partitions too); public tables by their bare name."""
    rows = conn.execute(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') "
        "and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%' order by 1, 2").fetchall()
    out = {}
    for schema, table in rows:
        n = one(conn.execute(sql.SQL("select count(*) from {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table))))[0]
        out[table if schema == "public" else f"{schema}.{table}"] = n
    return out


def sequence_values(conn: psycopg.Connection) -> dict[str, list]:
    """[last_value, is_called] of every user sequence (read from each sequence: works on 9.6 too)."""
    rows = conn.execute(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.relkind = 'S' and n.nspname not in ('pg_catalog', 'information_schema') order by 1, 2"
    ).fetchall()
    out = {}
    for schema, seq in rows:
        last, called = one(conn.execute(sql.SQL("select last_value, is_called from {}.{}").format(
            sql.Identifier(schema), sql.Identifier(seq))))
        out[seq if schema == "public" else f"{schema}.{seq}"] = [int(last), bool(called)]
    return out
