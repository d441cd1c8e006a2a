"""`harbor-upgrade artifacts` against a real PostgreSQL at the 2.4.0 schema and storage trees
written here: rows, children, references, problems, exit codes, data version, resume after
SIGKILL. Runs without ../shared (the fresh 1.10 schema ships with the package)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from harbor_upgrade import db
from harbor_upgrade.artifacts import backfill
from harbor_upgrade.registry import manifest as m
from harbor_upgrade.registry.layout import LayoutWriter
from harbor_upgrade.registry.storage import FilesystemStorage
from tests.support.artifacts import fresh_schema, image, index, register, rows

CONFIG = "application/vnd.oci.image.config.v1+json"


@pytest.fixture(params=["filesystem", "s3"])
def storage_of(request):
    """The CLI's storage arguments for a tree written in a folder: the folder itself, or the
    tree uploaded to the S3 server (SeaweedFS) under a rootdirectory."""
    def args(root) -> list[str]:
        if request.param == "filesystem":
            return ["--storage", str(root)]
        endpoint = request.getfixturevalue("s3_server")
        bucket, rootdirectory = request.getfixturevalue("s3_upload")(root, rootdirectory="/harbor/registry")
        return ["--storage", f"s3://{bucket}{rootdirectory}", "--s3-endpoint", endpoint, "--s3-region", "us-east-1"]
    return args


def test_fill_children_references_problems_and_data_version(harbor24, tmp_path, run_cli, storage_of):
    w = LayoutWriter(tmp_path)
    amd, arm = image(w, "lib/app", "amd64"), image(w, "lib/app", "arm64", tags=("arm",))
    idx = index(w, "lib/app", [(amd, "amd64"), (arm, "arm64")], tags=("v1",))
    loose = image(w, "lib/app", "s390x")                   # pushed by digest, unknown to the database
    broken = image(w, "lib/broken", "amd64", tags=("x",))
    alg, hex_ = broken.split(":")
    (tmp_path / f"docker/registry/v2/blobs/{alg}/{hex_[:2]}/{hex_}/data").write_bytes(b'{"schemaVersion":')
    register(harbor24.dsn, [("lib/app", idx, ("v1",)), ("lib/app", arm, ("arm",)), ("lib/broken", broken, ("x",)),
                            ("lib/gone", "sha256:" + "1" * 64, ("old",))])
    report_file = tmp_path.parent / f"{tmp_path.name}-report.json"
    storage = storage_of(tmp_path)
    code, out, err = run_cli("artifacts", "--dsn", harbor24.dsn, *storage, "--report", report_file)
    assert code == 1, out + err
    assert "completed with 2 problems" in out
    report = json.loads(report_file.read_text())
    assert {(p["repository"], p["digest"], p["reason"]) for p in report["problems"]} == {
        ("lib/broken", broken, "manifest-invalid"), ("lib/gone", "sha256:" + "1" * 64, "manifest-unknown")}
    assert (report["artifacts_done"], report["children_created"], report["references_created"],
            report["untagged_found"]) == (3, 1, 2, 1)
    by_digest = {r["digest"]: r for r in rows(harbor24.dsn)}
    parent, child = by_digest[idx], by_digest[amd]
    assert (parent["type"], parent["media_type"], parent["manifest_media_type"]) == ("IMAGE", m.OCI_INDEX, m.OCI_INDEX)
    assert parent["size"] == by_digest[amd]["size"] + by_digest[arm]["size"] + \
        len((tmp_path / f"docker/registry/v2/blobs/sha256/{idx[7:9]}/{idx[7:]}/data").read_bytes())
    assert [(r["child_digest"], r["child_id"], r["platform"]) for r in parent["references"]] == [
        (amd, child["id"], '{"architecture":"amd64","os":"linux"}'),
        (arm, by_digest[arm]["id"], '{"architecture":"arm64","os":"linux"}')]
    assert child["tags"] == [] and child["repository_id"] == parent["repository_id"]
    assert json.loads(child["extra_attrs"])["architecture"] == "amd64"
    assert by_digest[broken]["media_type"] == "UNKNOWN"           # left as it was
    assert loose not in by_digest
    assert harbor24.scalar("SELECT version FROM data_migrations") == "30"
    assert harbor24.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'harbor_upgrade_artifacts'") == "0"
    # A second run changes nothing and creates nothing.
    before = rows(harbor24.dsn)
    code, out, _ = run_cli("artifacts", "--dsn", harbor24.dsn, *storage)
    assert code == 1 and rows(harbor24.dsn) == before


def test_import_untagged_creates_repository_artifacts_and_tags(harbor24, tmp_path):
    w = LayoutWriter(tmp_path)
    known = image(w, "lib/app", "amd64", tags=("1",))
    loose = image(w, "lib/app", "arm64")
    only = image(w, "lib/only-untagged", "ppc64le")
    unknown_tagged = image(w, "lib/app", "s390x", tags=("new",))
    register(harbor24.dsn, [("lib/app", known, ("1",))])
    report = backfill(harbor24.dsn, FilesystemStorage(tmp_path), import_untagged=True, jobs=2)
    assert report.ok, report.problems
    assert (report.untagged_found, report.untagged_imported) == (3, 3)
    got = {(r["repository_name"], r["digest"]): r for r in rows(harbor24.dsn)}
    assert set(got) == {("lib/app", known), ("lib/app", loose), ("lib/only-untagged", only),
                        ("lib/app", unknown_tagged)}
    assert got[("lib/app", unknown_tagged)]["tags"] == ["new"]
    assert got[("lib/only-untagged", only)]["repository_id"] == int(
        harbor24.scalar("SELECT repository_id FROM repository WHERE name = 'lib/only-untagged'"))


def test_a_database_at_a_later_release_gets_artifact_type_from_the_media_type(database, tmp_path, run_cli):
    """2.11 added artifact.artifact_type (0140 copies media_type): rows the backfill fills or
    creates at 2.15's schema carry the media type there too, as Harbor's path gives."""
    database.load(fresh_schema())
    db.migrate(database.dsn, to="2.15.0")
    w = LayoutWriter(tmp_path)
    amd, arm = image(w, "lib/app", "amd64"), image(w, "lib/app", "arm64")
    idx = index(w, "lib/app", [(amd, "amd64"), (arm, "arm64")], tags=("v1",))
    register(database.dsn, [("lib/app", idx, ("v1",))])
    code, out, err = run_cli("artifacts", "--dsn", database.dsn, "--storage", tmp_path)
    assert code == 0, out + err
    got = {r["digest"]: r for r in rows(database.dsn)}
    assert set(got) == {idx, amd, arm}
    assert got[amd]["media_type"] == CONFIG and got[idx]["media_type"] == m.OCI_INDEX
    assert all(r["artifact_type"] == r["media_type"] for r in got.values())
    assert db.status(database.dsn).data_version == 30


def test_refuses_a_database_older_than_2_4_0(database, tmp_path, run_cli):
    database.load(fresh_schema())
    LayoutWriter(tmp_path)
    code, _, err = run_cli("artifacts", "--dsn", database.dsn, "--storage", tmp_path)
    assert code == 4 and "schema-not-target" in err and "db migrate" in err


def big_tree(root, repos: int) -> list[tuple[str, str, tuple[str, ...]]]:
    w = LayoutWriter(root)
    registered = []
    for i in range(repos):
        repo = f"proj{i % 3}/repo{i:04d}"
        a, b = image(w, repo, "amd64"), image(w, repo, "arm64")
        registered.append((repo, index(w, repo, [(a, "amd64"), (b, "arm64")], tags=("v1",)), ("v1",)))
        registered.append((repo, image(w, repo, "386", tags=("i386",)), ("i386",)))
    return registered


def comparable(rows_: list[dict], started: set) -> list[dict]:
    """Rows with the creation time of created rows (the run's start) blanked out."""
    return [dict(r, push_time="<run start>") if r["push_time"] in started else r for r in rows_]


def children(pid: int) -> list[int]:
    """The processes pid started (reader processes, multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_killed_run_resumes_to_identical_rows(harbor24_copy, tmp_path):
    registered = big_tree(tmp_path, 150)
    dsns = [harbor24_copy().dsn for _ in range(2)]
    for dsn in dsns:
        register(dsn, registered)
    uninterrupted, interrupted = dsns
    assert backfill(uninterrupted, FilesystemStorage(tmp_path), jobs=2).ok
    cmd = [sys.executable, "-m", "harbor_upgrade", "artifacts", "--dsn", interrupted, "--storage", str(tmp_path),
           "--jobs", "2", "--batch", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with psycopg.connect(interrupted, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if conn.execute("SELECT to_regclass('harbor_upgrade_artifacts.repository')").fetchone()[0] and \
                    conn.execute("SELECT count(*) FROM harbor_upgrade_artifacts.repository").fetchone()[0] >= 20:
                break
            time.sleep(0.005)
    readers = children(proc.pid)
    if len(os.sched_getaffinity(0)) > 1:
        assert readers, "on a filesystem the readers are processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while [p for p in readers if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in readers if alive(p)], "readers of a killed run must not outlive it"
    with psycopg.connect(interrupted, autocommit=True) as conn:
        done = conn.execute("SELECT count(*) FROM harbor_upgrade_artifacts.repository").fetchone()[0]
        assert 20 <= done < 150, "the kill must land in the middle of the run"
        assert conn.execute("SELECT version FROM data_migrations").fetchone()[0] == 0
    resumed = subprocess.run(cmd[:-2] + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    a, b = rows(uninterrupted), rows(interrupted)
    started = lambda rs: {r["push_time"] for r in rs if not r["tags"]}  # noqa: E731 created rows are untagged
    assert len(started(a)) == len(started(b)) == 1
    assert comparable(a, started(a)) == comparable(b, started(b))
    assert sum(len(r["references"]) for r in b) == 300


def test_storage_from_harbor_yml(harbor24, tmp_path, run_cli):
    """--harbor-yml: the filesystem driver's storage is <data_volume>/registry."""
    digest = image(LayoutWriter(tmp_path / "data" / "registry"), "lib/app", "amd64", tags=("1",))
    register(harbor24.dsn, [("lib/app", digest, ("1",))])
    harbor_yml = tmp_path / "harbor.yml"
    harbor_yml.write_text(f"hostname: reg.example.com\ndata_volume: {tmp_path / 'data'}\n"
                          "storage_service:\n  filesystem:\n    maxthreads: 100\n")
    code, out, err = run_cli("artifacts", "--dsn", harbor24.dsn, "--harbor-yml", harbor_yml)
    assert code == 0, out + err
    assert f"storage: {tmp_path / 'data' / 'registry'}" in out and "completed in" in out
    assert rows(harbor24.dsn)[0]["type"] == "IMAGE"


def test_a_second_run_waits_for_the_first(harbor24, tmp_path, run_cli):
    LayoutWriter(tmp_path)
    from harbor_upgrade.artifacts.store import BACKFILL_LOCK_KEY as LOCK_KEY
    with psycopg.connect(harbor24.dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        code, _, err = run_cli("artifacts", "--dsn", harbor24.dsn, "--storage", tmp_path)
    assert code == 4 and "artifacts-locked" in err


def test_s3_storage_and_keys_from_harbor_yml(harbor24, tmp_path, run_cli, weed, s3_upload, monkeypatch):
    s3_server = weed.endpoint
    tree = tmp_path / "tree"
    digest = image(LayoutWriter(tree), "lib/app", "amd64", tags=("1",))
    register(harbor24.dsn, [("lib/app", digest, ("1",))])
    bucket, root = s3_upload(tree, rootdirectory="/harbor/registry")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the server checks keys: harbor.yml's must be used
        monkeypatch.delenv(name)
    harbor_yml = tmp_path / "harbor.yml"
    harbor_yml.write_text(f"hostname: reg.example.com\ndata_volume: {tmp_path / 'data'}\nstorage_service:\n"
                          f"  s3:\n    region: us-east-1\n    bucket: {bucket}\n    rootdirectory: {root}\n"
                          f"    regionendpoint: {s3_server}\n    accesskey: {weed.access_key}\n"
                          f"    secretkey: {weed.secret_key}\n")
    code, out, err = run_cli("artifacts", "--dsn", harbor24.dsn, "--harbor-yml", harbor_yml)
    assert code == 0, out + err
    assert f"s3://{bucket}{root}" in out and weed.secret_key not in out + err
    assert rows(harbor24.dsn)[0]["type"] == "IMAGE"
