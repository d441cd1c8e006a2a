"""Pure parts of backup and the engine upgrade: manifests, file checks, layouts, evidence."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harbor_upgrade.backup import BackupManifest, FileEntry, StoredFile, file_problems, harbor_version_of
from harbor_upgrade.errors import InvalidInput, UnsafeState
from harbor_upgrade.postgres.layout import check_siblings, harbor_cluster, harbor_clusters, harbor_home, read_pg_version
from harbor_upgrade.postgres.tools import canonical_lines
from harbor_upgrade.postgres.upgrade import ClusterSettings, Evidence, _undo_link_mode, compare_evidence


def _manifest(**over) -> BackupManifest:
    m = BackupManifest(created="2026-01-01T00:00:00+00:00", tool_version="0", harbor_version="2.3.0",
                       schema_version=61, dirty=False, data_version=30, pg_version="15.18", pg_major=15,
                       pg_dump_version="pg_dump 15", database="registry", dump_sql_sha256="ab",
                       table_counts={"project": 3}, roots={"harbor": "/h"}, skipped=[],
                       files=[FileEntry("harbor", "harbor.yml", "file", 0, 0, 0o600, 1, 3, "cd")],
                       stored=[StoredFile("database/toc.dat", 10, "ef")])
    for k, v in over.items():
        setattr(m, k, v)
    return m


def test_manifest_round_trips_through_json():
    m = _manifest()
    back = BackupManifest.from_json(m.to_json())
    assert back == m
    assert back.files[0].stored == "files/harbor/harbor.yml"


def test_manifest_of_another_format_is_refused():
    text = _manifest(format=99).to_json()
    with pytest.raises(InvalidInput) as e:
        BackupManifest.from_json(text)
    assert e.value.reference == "backup-format"


def test_canonical_lines_drop_only_tool_versions_and_restrict_keys():
    dump = [b"-- Dumped from database version 15.18\n", b"-- Dumped by pg_dump version 16.2\n",
            b"\\restrict abc123\n", b"CREATE TABLE public.t (a integer);\n", b"-- Name: t; Type: TABLE\n",
            b"\\unrestrict abc123\n"]
    assert list(canonical_lines(dump)) == [b"CREATE TABLE public.t (a integer);\n", b"-- Name: t; Type: TABLE\n"]


def test_file_problems_name_content_owner_mode_and_type(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    os.chmod(tmp_path / "a", 0o640)
    st = (tmp_path / "a").stat()
    import hashlib
    good = FileEntry("harbor", "a", "file", st.st_uid, st.st_gid, 0o640, 0, 3, hashlib.sha256(b"abc").hexdigest())
    assert file_problems(tmp_path, [good]) == []
    (tmp_path / "a").write_bytes(b"abd")
    os.chmod(tmp_path / "a", 0o600)
    problems = file_problems(tmp_path, [good])
    assert any("content differs" in p for p in problems) and any("mode 0o600" in p for p in problems)
    wrong_owner = FileEntry("harbor", "a", "file", st.st_uid + 1, st.st_gid, 0o600, 0, 3, None)
    assert any("owner" in p for p in file_problems(tmp_path, [wrong_owner]))
    assert file_problems(tmp_path, [FileEntry("harbor", "a", "dir", st.st_uid, st.st_gid, 0o700, 0)]) == \
        ["harbor/a: is a file, was a dir"]
    assert file_problems(tmp_path, [FileEntry("harbor", "gone", "file", 0, 0, 0o600, 0)]) == ["harbor/gone: missing"]


def test_harbor_version_comes_from_underscore_version(tmp_path):
    (tmp_path / "harbor.yml").write_text("hostname: reg.example\n_version: 2.2.0\n")
    assert harbor_version_of(tmp_path) == "2.2.0"
    assert harbor_version_of(tmp_path / "nowhere") is None


def _cluster_dir(path: Path, version: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "PG_VERSION").write_text(version + "\n")
    return path


def test_harbor_layouts_96_at_top_and_pgNN_below(tmp_path):
    old = _cluster_dir(tmp_path / "a" / "database", "9.6")
    assert harbor_cluster(old).path == old and harbor_cluster(old).major == 9
    new = tmp_path / "b" / "database"
    _cluster_dir(new / "pg13", "13")
    (new / "pg_hba.conf.bak").write_text("")
    c = harbor_cluster(new)
    assert (c.path, c.pg_version, c.major) == (new / "pg13", "13", 13)
    assert harbor_home(new, 13) == new / "pg13" and harbor_home(old, 9) == old


def test_two_clusters_in_one_harbor_folder_are_refused(tmp_path):
    # Harbor issue 15383: an empty pg13 initialised beside the real 9.6 data.
    db = _cluster_dir(tmp_path / "database", "9.6")
    _cluster_dir(db / "pg13", "13")
    assert len(harbor_clusters(db)) == 2
    with pytest.raises(UnsafeState) as e:
        harbor_cluster(db)
    assert e.value.reference == "datadir-ambiguous"


def test_empty_harbor_folder_is_refused(tmp_path):
    (tmp_path / "database").mkdir()
    with pytest.raises(UnsafeState) as e:
        harbor_cluster(tmp_path / "database")
    assert e.value.reference == "datadir-empty"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_unreadable_folder_is_an_error_not_empty(tmp_path):
    db = _cluster_dir(tmp_path / "database", "9.6")
    os.chmod(tmp_path, 0o755)
    os.chmod(db, 0o700)  # owned by root: user nobody cannot list it
    os.seteuid(65534)
    try:
        with pytest.raises(UnsafeState) as e:
            read_pg_version(db)
        with pytest.raises(UnsafeState) as e2:
            harbor_clusters(db)
    finally:
        os.seteuid(0)
    assert e.value.reference == e2.value.reference == "datadir-unreadable"
    assert "NOT treated as empty" in e.value.message


def test_new_cluster_never_inside_the_old(tmp_path):
    check_siblings(tmp_path / "database", tmp_path / "database-pg16")
    for old, new in ((tmp_path / "database", tmp_path / "database" / "pg13"),
                     (tmp_path / "database" / "pg13", tmp_path / "database"),
                     (tmp_path / "database", tmp_path / "database")):
        with pytest.raises(InvalidInput) as e:
            check_siblings(old, new)
        assert e.value.reference == "datadir-nested"


def test_compare_evidence_reports_rows_sequences_and_databases():
    old = Evidence({"registry": {"project": 3, "tag": 5}}, {"registry": {"project_id_seq": [3, True]}})
    same = Evidence({"registry": {"project": 3, "tag": 5}}, {"registry": {"project_id_seq": [3, True]}})
    assert compare_evidence(old, same) == []
    lost = Evidence({"registry": {"project": 3, "tag": 0}}, {"registry": {"project_id_seq": [1, False]}})
    assert compare_evidence(old, lost) == ["registry.tag: rows old 5, new 0",
                                           "registry.project_id_seq: sequence old [3, True], new [1, False]"]
    assert compare_evidence(old, Evidence({}, {})) == ["database registry is missing from the new cluster"] * 2


def test_initdb_args_follow_the_old_cluster():
    s = ClusterSettings("postgres", "UTF8", "en_US.UTF-8", "en_US.UTF-8", "c", None, False, 16)
    assert s.initdb_args(16) == ["--lc-collate=en_US.UTF-8", "--lc-ctype=en_US.UTF-8"]
    assert s.initdb_args(18)[-1] == "--no-data-checksums"
    k = ClusterSettings("harbor", "UTF8", "C", "C", "i", "und", True, 64)
    assert k.initdb_args(17) == ["--lc-collate=C", "--lc-ctype=C", "--locale-provider=icu", "--icu-locale=und",
                                 "--data-checksums", "--wal-segsize=64"]


def test_link_mode_undo_puts_pg_control_back(tmp_path):
    g = tmp_path / "global"
    g.mkdir()
    (g / "pg_control.old").write_bytes(b"x")
    assert _undo_link_mode(tmp_path) is True
    assert (g / "pg_control").read_bytes() == b"x" and not (g / "pg_control.old").exists()
    assert _undo_link_mode(tmp_path) is False


def test_sql_digest_filters_like_canonical_lines_across_chunks(tmp_path):
    import hashlib
    import random

    from harbor_upgrade.postgres.tools import sql_digest
    rng = random.Random(5)
    lines = [b"-- Dumped from database version 15.18\n", b"\\restrict k3y\n"]
    for i in range(120_000):  # ~9 MiB: several 4 MiB reads, volatile lines across their edges
        lines.append(b"x" * rng.randint(0, 150) + b"\t%d\n" % i)
        if i % 9_973 == 0:
            lines.append(b"\\unrestrict k3y\n")
    lines.append(b"last line without newline")
    f = tmp_path / "dump.sql"
    f.write_bytes(b"".join(lines))
    want = hashlib.sha256(b"".join(canonical_lines(lines))).hexdigest()
    assert sql_digest(["cat", str(f)]) == want


def test_rollback_of_a_backup_without_a_harbor_root_asks_for_harbor_dir(tmp_path):
    # a manifest need not list roots.harbor (entry_problems checks the roots it lists); without --harbor-dir
    # rollback refuses first, by name, instead of handing None on as the harbor folder
    from harbor_upgrade.upgrade import rollback
    (tmp_path / "manifest.json").write_text(_manifest(roots={}).to_json())
    with pytest.raises(InvalidInput) as e:
        rollback(str(tmp_path), dsn="postgresql://postgres@127.0.0.1:1/registry", yes=True)
    assert "--harbor-dir" in e.value.message


def _datadir_manifest(*extra: FileEntry) -> BackupManifest:
    d = [FileEntry("datadir", ".", "dir", 999, 999, 0o700, 1), FileEntry("datadir", "PG_VERSION", "file", 999, 999,
                                                                        0o600, 1, 3, "ab" * 32),
         FileEntry("datadir", "pg_tblspc", "dir", 999, 999, 0o700, 1), *extra]
    return _manifest(kind="datadir", stored=[], roots={"harbor": "/h", "datadir": "/d/pg15"},
                     files=[FileEntry("harbor", ".", "dir", 0, 0, 0o755, 1), *d])


def test_a_data_folder_copy_holds_folders_and_files_only_and_its_kind_is_checked():
    from harbor_upgrade.backup.manifest import entry_problems
    assert entry_problems(_datadir_manifest()) == []
    assert BackupManifest.from_json(_datadir_manifest().to_json()).kind == "datadir"
    link = FileEntry("datadir", "pg_tblspc/16400", "symlink", 0, 0, 0o777, 1, target="/etc")
    assert entry_problems(_datadir_manifest(link)) == [
        "datadir/pg_tblspc/16400: a symlink in a data folder copy (only folders and regular files are taken)"]
    no_version = _datadir_manifest()
    no_version.files = [f for f in no_version.files if f.path != "PG_VERSION"]
    assert any("without its data folder" in p for p in entry_problems(no_version))
    dump_with_datadir = _datadir_manifest()
    dump_with_datadir.kind = "dump"
    assert entry_problems(dump_with_datadir) == ["datadir entries in a backup of kind dump"]
    assert "kind 'tarball' is not one of dump, datadir" in entry_problems(_manifest(kind="tarball"))


def test_only_wal_segments_past_the_shutdown_checkpoint_are_left_out():
    from harbor_upgrade.backup.datadir import recycled_wal
    names = ["000000010000000000000045", "000000010000000000000046", "000000010000000000000047",
             "0000000100000001000000A0", "000000020000000000000050", "00000001000000000000004Z", "archive_status"]
    entries = [FileEntry("datadir", f"pg_wal/{n}", "file", 0, 0, 0o600, 1) for n in names]
    entries.append(FileEntry("datadir", "base/1/000000010000000000000099", "file", 0, 0, 0o600, 1))
    redo = {"Latest checkpoint's REDO WAL file": "000000010000000000000046"}
    assert [e.path for e in recycled_wal(entries, redo)] == ["pg_wal/000000010000000000000047",
                                                            "pg_wal/0000000100000001000000A0"]
    assert recycled_wal(entries, {}) == []


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


@pytest.mark.parametrize("twin_kept", [True, False])
def test_sync_tree_makes_an_earlier_copy_and_its_twin_equal_to_a_fresh_copy(tmp_path, twin_kept):
    from harbor_upgrade.backup.files import copy_tree, scan_tree, sync_tree, tree_problems
    from tests.support.backups import snapshot
    src = tmp_path / "src"
    mib = 1 << 20
    _tree(src, {"PG_VERSION": b"15\n", "base/1/100": b"a" * 5000, "base/1/101": b"same size 1",
                "base/1/102": b"unchanged", "base/2/200": b"gone with its folder", "global/pg_control": b"c" * 64,
                "pg_wal/000000010000000000000001": b"w" * (2 * mib + 3000), "base/1/big": b"B" * (3 * mib),
                "base/1/shrinks": b"s" * (2 * mib), "base/1/cut": b"c" * (2 * mib)})
    entries, _ = scan_tree(src, "datadir")
    parts: dict[str, list[str]] = {}
    copied = copy_tree(entries, src, tmp_path / "copy", 2, durable=False, also=tmp_path / "twin", parts=parts)
    assert len(parts["base/1/100"]) == 1 and len(parts["pg_wal/000000010000000000000001"]) == 3
    assert tree_problems(tmp_path / "twin", {e.path: e.size for e in copied if e.type == "file"}) == []
    # what the server does meanwhile: same-size rewrite, growth, new files and folders, removals, a chmod
    (src / "base/1/101").write_bytes(b"same size 2")
    (src / "base/1/100").write_bytes(b"b" * 7000)
    _tree(src, {"base/3/300": b"new folder", "base/1/103": b"new file"})
    (src / "base/2/200").unlink()
    (src / "base/2").rmdir()
    (src / "pg_wal/000000010000000000000001").unlink()
    (src / "global/pg_control").chmod(0o600)
    with open(src / "base/1/big", "r+b") as f:   # one page changed in the second MiB of three
        f.seek(mib + 8192)
        f.write(b"page")
    (src / "base/1/shrinks").write_bytes(b"s" * (mib + 10))
    os.truncate(src / "base/1/cut", mib)   # what is left equals the record's first part
    twin = tmp_path / "twin"
    if not twin_kept:   # the twin on another file system: written again whole
        import shutil
        shutil.rmtree(twin)
        twin.mkdir()
    entries, _ = scan_tree(src, "datadir")
    recorded = {e.path: (e.size, e.sha256, parts[e.path]) for e in copied if e.type == "file"}
    synced, stats = sync_tree(entries, src, tmp_path / "copy", twin, recorded, 2, also_complete=twin_kept)
    fresh = copy_tree(entries, src, tmp_path / "fresh", 1, durable=False)
    assert snapshot(tmp_path / "copy") == snapshot(src) == snapshot(twin) == snapshot(tmp_path / "fresh")
    assert synced == fresh   # sizes, sha256, modes, times
    # written again: 101 and 100 (their one part), 103 and 300 (new), big's second MiB, shrinks' second part
    assert (stats.files, stats.copied, stats.removed) == (10, 6, 2), stats
    assert stats.bytes_copied == 11 + 7000 + 8 + 10 + mib + 10, stats
    assert not list(tmp_path.rglob("*.harbor-upgrade-sync"))


def test_tree_problems_name_links_extras_and_sizes(tmp_path):
    from harbor_upgrade.backup.files import tree_problems
    _tree(tmp_path / "t", {"a": b"12", "b": b"1", "extra": b""})
    os.symlink("/etc/passwd", tmp_path / "t/link")
    os.link(tmp_path / "t/a", tmp_path / "hard")
    problems = tree_problems(tmp_path / "t", {"a": 2, "b": 2, "c": 0})
    assert problems == ["a: has 2 links", "b: size 1, recorded 2", "extra: not in the record",
                        "link: not a regular file or folder", "c: missing"], problems
