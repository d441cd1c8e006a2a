"""Schema probes: what a schema file leaves behind, to recognise the version a database
really has (``db repair``). Each release step declares the probes of its files."""
from __future__ import annotations

from collections.abc import Callable

import psycopg

from .connection import columns, index_exists, table_exists

Probe = Callable[[psycopg.Connection], bool]


def has_column(table: str, col: str) -> Probe:
    return lambda c: table_exists(c, table) and col in columns(c, table)


def no_column(table: str, col: str) -> Probe:
    return lambda c: not has_column(table, col)(c)


def has_table(t: str) -> Probe:
    return lambda c: table_exists(c, t)


def no_table(t: str) -> Probe:
    return lambda c: not table_exists(c, t)


def has_index(name: str) -> Probe:
    return lambda c: index_exists(c, name)


def column_type(table: str, col: str, data_type: str) -> Probe:
    """The column exists with this information_schema data_type ('bigint', 'timestamp without time zone')."""
    def probe(c: psycopg.Connection) -> bool:
        row = c.execute("""SELECT data_type FROM information_schema.columns
                           WHERE table_schema = 'public' AND table_name = %s AND column_name = %s""",
                        (table, col)).fetchone()
        return row is not None and row[0] == data_type
    return probe
