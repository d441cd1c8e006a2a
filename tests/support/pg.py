"""Old PostgreSQL clusters for the engine-upgrade tests: a small Harbor-like database, the
binaries of a major (skipping when it is not installed), and the facts an upgrade must keep."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harbor_upgrade.errors import ExternalFailure
from harbor_upgrade.postgres.cluster import LocalCluster, find_binaries

MINI_HARBOR_SQL = """
create table schema_migrations (version bigint not null primary key, dirty boolean not null);
insert into schema_migrations values (15, false);
create table project (project_id serial primary key, name varchar(255) unique not null,
                      deleted boolean default false, creation_time timestamp default '2019-03-04');
create table repository (repository_id serial primary key, name varchar(255) not null,
                         project_id int references project, description text);
create table artifact (id serial primary key, repo varchar(255), tag varchar(255), digest varchar(255),
                       extra jsonb);
create table properties (id serial primary key, k varchar(64) unique, v text);
create index artifact_digest on artifact (digest);
insert into project (name) select 'project-' || g from generate_series(1, 20) g;
insert into project (name, deleted) values ('gelöscht#21', true), ('ünïcode ☃', false);
insert into repository (name, project_id, description)
    select 'project-' || (g % 20 + 1) || '/repo-' || g, g % 20 + 1, repeat('d', g % 7) from generate_series(1, 150) g;
insert into artifact (repo, tag, digest, extra)
    select 'project-' || (g % 20 + 1) || '/repo-' || (g % 150), 'v' || g,
           'sha256:' || md5(g::text) || md5((g * 7)::text), jsonb_build_object('n', g, 'q', 'a"b\\c')
    from generate_series(1, 900) g;
insert into properties (k, v) values ('auth_mode', 'db_auth'), ('email_password', 'not-a-real-secret');
create sequence access_log_log_id_seq;
select setval('access_log_log_id_seq', 4242);
"""


def binaries(major: int):
    try:
        return find_binaries(major=major)
    except ExternalFailure:
        pytest.skip(f"PostgreSQL {major} binaries are not installed")


def make_old_cluster(datadir: Path, major: int, sql: str | None = None, sql_file: Path | None = None) -> LocalCluster:
    if not datadir.parent.exists():  # like data_volume/database: the server user's folder
        datadir.parent.mkdir()
        shutil.copystat(datadir.parent.parent, datadir.parent)
        os.chown(datadir.parent, datadir.parent.parent.stat().st_uid, datadir.parent.parent.stat().st_gid)
    c = LocalCluster.create(datadir, binaries=binaries(major), fast=True, superuser="harbor")
    with c:
        c.createdb("registry")
        if sql_file:
            c.psql(dbname="registry", file=sql_file)
        else:
            c.psql(sql or MINI_HARBOR_SQL, dbname="registry")
        # A second role with a password and a grant: roles live outside the database dump.
        c.psql("create role harbor_reader login password 'reader-pw-test'", dbname="registry")
        c.psql("grant select on all tables in schema public to harbor_reader", dbname="registry")
    return c


def facts(datadir: Path, major: int) -> dict:
    """What must survive: counts, a few rows, sequence values, the superuser, the encoding."""
    with LocalCluster(datadir, binaries(major), superuser="harbor") as c:
        q = lambda s: c.psql(s, dbname="registry").strip()  # noqa: E731
        return {"projects": q("select string_agg(name, ',' order by project_id) from project"),
                "artifacts": q("select count(*), sum(length(extra::text)) from artifact"),
                "seq": q("select last_value from access_log_log_id_seq"),
                "super": q("select rolname from pg_roles where oid = 10"),
                "reader": q("select rolcanlogin, rolpassword from pg_authid where rolname = 'harbor_reader'"),
                "grant": q("select has_table_privilege('harbor_reader', 'public.project', 'select')"),
                "enc": q("select pg_encoding_to_char(encoding) from pg_database where datname = 'registry'")}


class Database:
    """A fresh database in the session cluster."""

    def __init__(self, cluster: LocalCluster, name: str):
        self.cluster, self.name = cluster, name
        self.dsn = cluster.dsn(name)

    def psql(self, sql: str) -> str:
        return self.cluster.psql(sql, dbname=self.name)

    def load(self, sql_file: str | os.PathLike) -> None:
        self.cluster.psql(dbname=self.name, file=sql_file)

    def scalar(self, sql: str) -> str:
        return self.psql(sql).strip()
