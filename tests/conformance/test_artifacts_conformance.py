"""The fixture database (Harbor 1.10) migrated to 2.4.0, then `harbor-upgrade artifacts` on the
fixture storage: rows exactly as expected-artifacts.json (Harbor 2.4 push-time semantics), and
everything Harbor's own upgrade does not touch differently left as Harbor's 2.4.0 result has it."""
from __future__ import annotations

import gzip
import json
from datetime import datetime

import psycopg
import pytest

from harbor_upgrade import db
from harbor_upgrade.artifacts.store import artifact_rows

pytestmark = pytest.mark.conformance

PROJECTS = ("library", "charts", "team-a", "team-b")
ROW_FIELDS = ("type", "media_type", "manifest_media_type", "size", "icon", "extra_attrs", "annotations")
# Columns the backfill never writes for rows that exist: they stay as Harbor's SQL left them
KEPT = ("id", "project_id", "repository_id", "repository_name", "digest", "push_time", "pull_time")


@pytest.fixture
def migrated(shared, database_from):
    """Harbor's 1.10.0 dump migrated by db migrate: a copy of one database migrated once per session."""
    def build(database):
        database.load(shared / "fixtures/harbor-db/harbor-1.10.0.sql")
        db.migrate(database.dsn)
    return database_from("shared-1.10.0-migrated", build)


def expected_artifacts(shared) -> dict:
    return json.loads((shared / "fixtures/registry/expected-artifacts.json").read_text())


def harbor_result(shared) -> dict:
    with gzip.open(shared / "fixtures/harbor-db/expected/seed1/from-1.10.0.data.json.gz") as f:
        tables = json.load(f)["tables"]
    return {name: [dict(zip(t["columns"], row, strict=False)) for row in t["rows"]] for name, t in tables.items()}


def minted(v) -> bool:
    """A value the normaliser replaced: an id minted by the migration or a migration-time stamp."""
    return isinstance(v, str) and (v.startswith("#new:") or v == "<migration-time>")


def same(key: str, ours, theirs) -> bool:
    if minted(theirs):
        return True
    return same_time(ours, theirs) if key.endswith("_time") else ours == theirs


def same_time(a, b) -> bool:
    if a is None or b is None:
        return a is b
    to_dt = lambda v: v if isinstance(v, datetime) else datetime.fromisoformat(v)  # noqa: E731
    return to_dt(a) == to_dt(b)


def without_untagged(expected: list[dict]) -> list[dict]:
    """The entries that apply without --import-untagged: tagged artifacts and what their indexes reach."""
    by_digest = {(e["repository_name"], e["digest"]): e for e in expected}
    keep, stack = set(), [k for k, e in by_digest.items() if e["tags"]]
    while stack:
        key = stack.pop()
        if key not in keep:
            keep.add(key)
            stack.extend((key[0], r["child_digest"]) for r in by_digest[key]["references"])
    return [e for e in expected if (e["repository_name"], e["digest"]) in keep]


def check_rows(dsn: str, expected: list[dict]) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        got = artifact_rows(conn, PROJECTS)
    assert [(r["repository_name"], r["digest"]) for r in got] == \
        [(e["repository_name"], e["digest"]) for e in expected]
    ids = {(r["repository_name"], r["digest"]): r["id"] for r in got}
    for row, exp in zip(got, expected, strict=False):
        where = f"{exp['repository_name']}@{exp['digest']}"
        assert {k: row[k] for k in ROW_FIELDS} == {k: exp[k] for k in ROW_FIELDS}, where
        assert sorted(row["tags"]) == sorted(exp["tags"]), where
        assert [{k: r[k] for k in ("child_digest", "platform", "urls", "annotations")} for r in row["references"]] \
            == exp["references"], where
        assert [r["child_id"] for r in row["references"]] == \
            [ids[(exp["repository_name"], r["child_digest"])] for r in exp["references"]], where
    return got


def test_fixture_gives_expected_rows_and_keeps_what_harbor_keeps(shared, migrated, run_cli, tmp_path):
    expected = expected_artifacts(shared)
    report_file = tmp_path / "report.json"
    code, out, err = run_cli("artifacts", "--dsn", migrated.dsn, "--storage", shared / "fixtures/registry/storage",
                             "--report", report_file, "--jobs", "4")
    report = json.loads(report_file.read_text())
    # The only problems: rows of the projects that exist in the database alone (no storage for them).
    assert report["problems"] and code == 1 and f"completed with {len(report['problems'])} problems" in out
    assert {p["reason"] for p in report["problems"]} == {"manifest-unknown"}
    assert not [p for p in report["problems"] if p["repository"].split("/")[0] in PROJECTS]
    assert report["ignored_tags"] == expected["ignored_tags"]
    assert report["untagged_found"] == len(expected["artifacts"]) - len(without_untagged(expected["artifacts"]))
    got = check_rows(migrated.dsn, without_untagged(expected["artifacts"]))

    harbor = harbor_result(shared)
    harbor_rows = {r["id"]: r for r in harbor["artifact"]}
    ours = {r["id"]: r for r in got}
    with psycopg.connect(migrated.dsn) as conn:
        everything = artifact_rows(conn)
    for row in everything:
        theirs = harbor_rows.get(row["id"])
        if row["repository_name"].split("/")[0] not in PROJECTS:
            # Harbor's walk fails on these too (no manifest in storage) and keeps the SQL values.
            assert theirs is not None
            for k, v in theirs.items():
                assert same(k, row[k], v), (row["id"], k)
        elif theirs is not None:
            for k in KEPT:
                assert same(k, row[k], theirs[k]), (row["id"], k)
        else:
            assert row["id"] in ours and not row["tags"]    # an index child Harbor's walk never creates
    assert {r["id"] for r in harbor["artifact"]} <= {r["id"] for r in everything}
    # Tags are Harbor's, untouched.
    with psycopg.connect(migrated.dsn) as conn:
        rows = conn.execute("SELECT artifact_id, name, push_time, pull_time FROM tag")
        tags = {(a, n): (p, q) for a, n, p, q in rows}
    assert set(tags) == {(t["artifact_id"], t["name"]) for t in harbor["tag"]}
    # The data version harbor-core writes after its walk.
    assert migrated.scalar("SELECT version FROM data_migrations") == "30"
    assert migrated.scalar("SELECT count(*) FROM data_migrations") == "1"


def test_import_untagged_gives_every_expected_artifact(shared, migrated):
    from harbor_upgrade.artifacts import backfill
    from harbor_upgrade.registry import open_storage
    expected = expected_artifacts(shared)
    report = backfill(migrated.dsn, open_storage(str(shared / "fixtures/registry/storage")), import_untagged=True)
    assert report.untagged_imported == report.untagged_found == 3
    check_rows(migrated.dsn, expected["artifacts"])


def test_same_rows_from_s3(shared, migrated, run_cli, s3_server, s3_upload):
    """The fixture tree uploaded to moto under a rootdirectory, read through the S3 driver's keys."""
    bucket, root = s3_upload(shared / "fixtures/registry/storage", rootdirectory="/harbor/registry")
    code, out, err = run_cli("artifacts", "--dsn", migrated.dsn, "--storage", f"s3://{bucket}{root}",
                             "--s3-endpoint", s3_server, "--s3-region", "us-east-1", "--import-untagged")
    assert code == 1 and "completed with" in out, out + err
    check_rows(migrated.dsn, expected_artifacts(shared)["artifacts"])


def writable_copy(src, dst):
    import os
    import shutil
    shutil.copytree(src, dst, symlinks=True)
    for folder, _dirs, files in os.walk(dst):
        os.chmod(folder, 0o755)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644)
    return dst


@pytest.mark.parametrize("backend", ["filesystem", "s3"])
def test_corrupted_copy_reports_each_problem_and_fills_the_rest(shared, migrated, tmp_path, backend, request):
    from harbor_upgrade.artifacts import backfill
    from harbor_upgrade.registry.s3 import S3Storage
    from harbor_upgrade.registry.storage import FilesystemStorage
    root = writable_copy(shared / "fixtures/registry/storage", tmp_path / "storage")
    v2 = root / "docker/registry/v2"
    expected = without_untagged(expected_artifacts(shared)["artifacts"])
    by_key = {(e["repository_name"], e["digest"][:19]): e for e in expected}

    def blob(digest):
        return v2 / "blobs/sha256" / digest[7:9] / digest[7:] / "data"

    def full(repo, short):
        return by_key[(repo, short)]["digest"]

    nginx = full("library/nginx", "sha256:a454bafda545")
    blob(nginx).unlink()                                                     # missing blob
    wasm = full("team-a/wasm", "sha256:604b1025d9bc")
    blob(wasm).write_bytes(blob(wasm).read_bytes()[:40])                     # truncated manifest
    a = full("team-b/a", "sha256:a69ea958ce77")
    doc = json.loads(blob(a).read_bytes())
    doc["mediaType"] = "application/vnd.example.unknown.v1+json"
    blob(a).write_bytes(json.dumps(doc).encode())                            # unknown media type
    scratch = full("library/scratch", "sha256:0623d70b5619")
    (v2 / f"repositories/library/scratch/_manifests/revisions/sha256/{scratch[7:]}/link").write_text("sha256:nowhere")
    abc = full("team-b/a/b/c", "sha256:fd33b472b9da")
    config = json.loads(blob(abc).read_bytes())["config"]["digest"]
    (v2 / f"repositories/team-b/a/b/c/_layers/sha256/{config[7:]}/link").unlink()   # config not linked
    child = "sha256:797b2c2fac5baed493050f8591a79b430c6537e860cbc803ad5869c16bc6d323"
    blob(child).unlink()                                                     # a child of busybox:1.33
    busybox = full("library/busybox", "sha256:08544d4592d8")
    evil = v2 / "repositories/team-b/Evil..Name/_manifests/tags/x/current"   # names that try to escape
    evil.mkdir(parents=True)
    (evil / "link").write_text(busybox)
    (v2 / "repositories/team-b/outside").symlink_to(tmp_path, target_is_directory=True)

    if backend == "filesystem":
        storage = FilesystemStorage(root)
    else:   # the same copy with the S3 driver's keys (a symbolic link is no object there)
        bucket, rootdirectory = request.getfixturevalue("s3_upload")(root)
        storage = S3Storage(bucket, rootdirectory, endpoint_url=request.getfixturevalue("s3_server"))
    report = backfill(migrated.dsn, storage, jobs=3)
    storage.close()
    ours = {(p.repository, p.digest, p.reason) for p in report.problems if p.repository.split("/")[0] in PROJECTS}
    assert ours == {("library/nginx", nginx, "manifest-blob-missing"), ("team-a/wasm", wasm, "manifest-invalid"),
                    ("team-b/a", a, "manifest-invalid"), ("library/scratch", scratch, "revision-link-invalid"),
                    ("team-b/a/b/c", abc, "config-blob-missing"), ("library/busybox", child, "manifest-blob-missing"),
                    ("library/busybox", busybox, "child-not-artifact"), ("team-b/Evil..Name", "", "name-refused")}
    failed = {nginx, wasm, a, scratch, abc, child, busybox}
    with psycopg.connect(migrated.dsn) as conn:
        got = {(r["repository_name"], r["digest"]): r for r in artifact_rows(conn, PROJECTS)}
    for exp in expected:
        row = got.get((exp["repository_name"], exp["digest"]))
        if exp["digest"] in failed:
            assert row is None or row["extra_attrs"] is None, exp["digest"]   # untouched (or never created)
        else:
            assert {k: row[k] for k in ROW_FIELDS} == {k: exp[k] for k in ROW_FIELDS}, exp["digest"]
    # the other children of the failed manifest list are still created, as a push creates them first
    assert ("library/busybox", "sha256:ca951b108bd59318eede77a12dd1b38bda8e66942b45eac4243f79a546c530ad") in got
