"""The benchmark tree's database: a 2.4.0-schema Harbor database as the SQL upgrade leaves a 1.10 one.

What 1.10 knew is one artifact row per tag, only for tagged manifests (children of manifest
lists and digest-only pushes were never recorded). The 0030..0070 SQL turns that into
(specs/db-migration.md §3.1): artifact rows with ``type='IMAGE'``, ``manifest_media_type`` =
the 1.10 blob content type, ``media_type`` from the 0030 CASE (docker v2 -> the docker config
type, manifest list -> itself, anything else — OCI manifests included — the schema1 type),
``size`` = the sum of the 1.10 blob sizes, ``extra_attrs``/``annotations``/``icon`` NULL; one
``tag`` row per tag; ``data_migrations.version = 0``. No ``artifact_reference`` rows.
Blob bookkeeping (``blob``, ``artifact_blob``, ``project_blob``) is not needed by the
abstraction and is left empty.
"""
from __future__ import annotations

from pathlib import Path

import psycopg

from artifacts_tree import MT_DOCKER_CONFIG, MT_DOCKER_LIST, MT_DOCKER_MANIFEST, read_rows

SCHEMA = Path(__file__).resolve().parent / "harbor-2.4.0-schema.sql"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
PUSH_TIME = "2020-06-01 12:00:00"


def sql_media_type(manifest_media_type: str) -> str:
    """0030's CASE on the 1.10 blob content type."""
    if manifest_media_type == MT_DOCKER_MANIFEST:
        return MT_DOCKER_CONFIG
    if manifest_media_type == MT_DOCKER_LIST:
        return MT_DOCKER_LIST
    return SCHEMA1


def numbered_rows(tree: Path, repos: set[str] | None):
    """The tag rows with the ids the database gives them: (id, project, project_id, repository_id, row).

    Every tag of the generated tree has its own digest, so artifact id = tag id."""
    projects: dict[str, int] = {}
    repositories: dict[str, int] = {}
    n = 0
    for row in read_rows(tree):
        repo = row[0]
        if repos is not None and repo not in repos:
            continue
        n += 1
        project = repo.split("/", 1)[0]
        yield (n, project, projects.setdefault(project, len(projects) + 1),
               repositories.setdefault(repo, len(repositories) + 1), row)


def load_template(cluster, dbname: str, tree: Path, repos: set[str] | None = None) -> dict:
    """Create dbname with the 2.4.0 schema and the tree's post-SQL-upgrade rows (of the given
    repositories only, when a set is given); returns counts."""
    cluster.createdb(dbname)
    cluster.psql(dbname=dbname, file=SCHEMA)
    projects: dict[str, int] = {}
    repositories: dict[str, tuple[int, int]] = {}
    n = 0
    with psycopg.connect(cluster.dsn(dbname)) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO harbor_user (user_id, username, email, password, realname, sysadmin_flag) "
                    "VALUES (1, 'admin', 'admin@example.com', '', 'system admin', true)")
        cur.execute("INSERT INTO schema_migrations VALUES (70, false)")
        cur.execute("INSERT INTO data_migrations (version) VALUES (0)")
        with cur.copy("COPY artifact (id, project_id, repository_name, digest, type, push_time, repository_id, "
                      "media_type, manifest_media_type, size) FROM STDIN") as cp:
            for n, project, project_id, repository_id, (repo, _tag, digest, media_type, size) in \
                    numbered_rows(tree, repos):
                projects[project] = project_id
                repositories[repo] = (repository_id, project_id)
                cp.write_row((n, project_id, repo, digest, "IMAGE", PUSH_TIME, repository_id,
                              sql_media_type(media_type), media_type, size))
        with cur.copy("COPY tag (id, repository_id, artifact_id, name, push_time) FROM STDIN") as cp:
            for tag_id, _, _, repository_id, (_repo, tag, *_rest) in numbered_rows(tree, repos):
                cp.write_row((tag_id, repository_id, tag_id, tag, PUSH_TIME))
        with cur.copy("COPY project (project_id, owner_id, name) FROM STDIN") as cp:
            for name, pid in projects.items():
                cp.write_row((pid, 1, name))
        with cur.copy("COPY repository (repository_id, name, project_id) FROM STDIN") as cp:
            for name, (rid, pid) in repositories.items():
                cp.write_row((rid, name, pid))
        for seq, table, col in (("artifact_id_seq", "artifact", "id"), ("tag_id_seq", "tag", "id"),
                                ("project_project_id_seq", "project", "project_id"),
                                ("repository_repository_id_seq", "repository", "repository_id"),
                                ("harbor_user_user_id_seq", "harbor_user", "user_id")):
            cur.execute(f"SELECT setval('{seq}', (SELECT max({col}) FROM {table}))")
        cur.execute("ANALYZE")
    return {"projects": len(projects), "repositories": len(repositories), "artifact_rows": n}


def clone(cluster, template: str, name: str) -> str:
    """A fresh copy of the template database; returns its DSN."""
    cluster.dropdb(name)
    cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return cluster.dsn(name)
