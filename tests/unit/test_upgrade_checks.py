"""Preflight checks, hop sequence, the parts of harbor.yml detection, and verify's count rules."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harbor_upgrade import upgrade as up
from harbor_upgrade import versions
from harbor_upgrade.compose.detect import read_services
from harbor_upgrade.config.view import external_dsn as dsn_of_external
from harbor_upgrade.config.view import storage_spec as storage_of
from harbor_upgrade.errors import UnsupportedVersion
from harbor_upgrade.installation import DatabaseState, Installation, components_of
from harbor_upgrade.results import FAIL, PASS, WARN
from harbor_upgrade.secrets import mask_text
from harbor_upgrade.upgrade.preflight import certificate_has_san
from harbor_upgrade.verify import before_counts, manifest_paths, rule_holds


def inst(tmp_path: Path, release="1.10.0", schema=15, dirty=False, clients=(), components=None, **kw) -> Installation:
    db = None if schema is None else DatabaseState(schema, dirty, None, {15: "1.10.0", 41: "2.1.0", 10: None,
                                                                          70: "2.4.0"}.get(schema),
                                                   "15.1", 1 << 20, list(clients), [])
    base = dict(harbor_yml=str(tmp_path / "harbor.yml"), harbor_dir=str(tmp_path), config_version=release,
                release=release, release_error=None, hostname="h", data_volume=str(tmp_path / "data"),
                storage=str(tmp_path / "data" / "registry"), storage_kind="filesystem", s3_endpoint=None,
                s3_region=None, dsn="postgresql://x@127.0.0.1/registry", dsn_masked="postgresql://x@127.0.0.1/registry",
                components=components or {}, database=db)
    base.update(kw)
    return Installation(**base)


def test_hops_start_at_the_database_release(tmp_path):
    assert up.hops(inst(tmp_path), "2.4.0") == ["1.10.0", "2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0"]
    assert up.hops(inst(tmp_path, release="1.10.0", schema=41), "2.4.0") == ["2.1.0", "2.2.0", "2.3.0", "2.4.0"]
    assert up.hops(inst(tmp_path, release="2.3.0", schema=None), "2.4.0") == ["2.3.0", "2.4.0"]
    assert up.hops(inst(tmp_path), "2.1.0") == ["1.10.0", "2.0.0", "2.1.0"]


def test_to_names_a_release_line():
    assert up.Options("h").target == versions.TARGET
    assert up.Options("h", to="2.1").target == "2.1.0" and up.Options("h", to="2.1.1").target == "2.1.0"
    for bad in ("2.99", "v2.1.0", "latest", "1.8"):
        with pytest.raises(UnsupportedVersion):
            _ = up.Options("h", to=bad).target


@pytest.mark.parametrize("kw, status, words", [
    ({}, PASS, "1.10.0 → 2.4.0"),
    ({"release": "1.9.0", "schema": None}, FAIL, "older than 1.10"),
    ({"schema": 10}, FAIL, "older than 1.10"),
    ({"release": None, "release_error": "version 1.8.0 is older than 1.9.0"}, FAIL, "1.8.0"),
    ({"release": "2.4.0", "schema": 70}, PASS, "already at 2.4.0"),
    ({"release": "2.4.0", "schema": 70, "target": "2.1.0"}, FAIL, "newer than the target 2.1.0"),
])
def test_supported_start(tmp_path, kw, status, words):
    target = kw.pop("target", "2.4.0")
    c = up.check_start(inst(tmp_path, **kw), target)
    assert c.status == status and words in c.detail
    if status == FAIL and "1.10" in words:
        assert "1.10 first" in c.hint


def test_versions_disagree_is_a_warning(tmp_path):
    c = up.check_versions_agree(inst(tmp_path, release="2.3.0", schema=41))
    assert c.status == WARN and "2.1.0" in c.detail


def test_dirty_schema_fails_except_when_resuming_our_own_run(tmp_path):
    assert up.check_dirty(inst(tmp_path, dirty=True), resuming=False).status == FAIL
    assert up.check_dirty(inst(tmp_path, dirty=True), resuming=True).status == WARN
    assert up.check_dirty(inst(tmp_path), resuming=False).status == PASS


def test_harbor_running_fails(tmp_path):
    c = up.check_stopped(inst(tmp_path, clients=["harbor-core from 172.18.0.5"]))
    assert c.status == FAIL and c.samples == ["harbor-core from 172.18.0.5"] and "docker compose down" in c.hint
    assert up.check_stopped(inst(tmp_path)).status == PASS
    assert up.check_stopped(inst(tmp_path, schema=None)).status == FAIL
    assert up.check_stopped(inst(tmp_path, schema=None), need_db=False).status == WARN  # plan without --dsn


def test_disk_check_compares_free_space_with_the_database_size(tmp_path):
    i = inst(tmp_path)
    assert up.check_disk(i, tmp_path / "new" / "backup").status == PASS
    i.database.size_bytes = 1 << 60
    c = up.check_disk(i, tmp_path)
    assert c.status == FAIL and "MiB needed" in c.detail


def test_owner_and_mode_of_the_data_folders(tmp_path):
    dv = tmp_path / "data"
    (dv / "database").mkdir(parents=True)
    (dv / "registry").mkdir()
    (dv / "database").chmod(0o755)
    c = up.check_owners(inst(tmp_path))
    if os.geteuid() == 0:
        os.chown(dv / "registry", up.HARBOR_UID, up.HARBOR_UID)
        os.chown(dv / "database", up.DB_UID, up.DB_UID)
        c = up.check_owners(inst(tmp_path))
        assert c.status == WARN and c.samples == [f"{dv / 'database'} has mode 0755, PostgreSQL needs 0700"]
        (dv / "database").chmod(0o700)
        assert up.check_owners(inst(tmp_path)).status == PASS
    else:
        assert c.status == WARN


def make_cert(path: Path, san: bool) -> None:
    args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(path.with_suffix(".key")),
            "-out", str(path), "-days", "2", "-subj", "/CN=core"]
    if san:
        args += ["-addext", "subjectAltName=DNS:core"]
    subprocess.run(args, check=True, capture_output=True)


def test_internal_tls_certificates_without_san_fail(tmp_path):
    d = tmp_path / "tls"
    d.mkdir()
    make_cert(d / "core.crt", san=True)
    i = inst(tmp_path, components={"internal_tls": True}, internal_tls_dir=str(d))
    assert up.check_internal_tls(i).status == PASS
    make_cert(d / "registry.crt", san=False)
    c = up.check_internal_tls(i)
    assert c.status == FAIL and c.samples == ["registry.crt"]
    assert up.check_internal_tls(inst(tmp_path)).status == PASS


def test_certificate_has_san_reads_the_first_certificate_of_a_pem_file(tmp_path):
    def cert(name: str, *extra: str) -> Path:
        path = tmp_path / name
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(path.with_suffix(".key")), "-out", str(path), "-days", "2",
                        "-subj", "/CN=core", *extra], check=True, capture_output=True)
        return path

    with_san = cert("san.crt", "-addext", "subjectAltName=DNS:core,DNS:core.local,IP:127.0.0.1")
    critical = cert("critical.crt", "-addext", "subjectAltName=critical,DNS:core")
    without = cert("plain.crt")
    assert certificate_has_san(with_san) and certificate_has_san(critical)
    assert not certificate_has_san(without)
    chain = tmp_path / "chain.crt"
    chain.write_text("subject=CN = core\n" + without.read_text() + with_san.read_text())
    assert not certificate_has_san(chain)   # the leaf comes first; the rest is its chain
    chain.write_text(with_san.read_text() + without.read_text())
    assert certificate_has_san(chain)
    v1, csr, key = tmp_path / "v1.crt", tmp_path / "v1.csr", str(without.with_suffix(".key"))
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=core", "-out", str(csr)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-key", key, "-out", str(v1), "-days", "2"],
                   check=True, capture_output=True)   # no extensions at all
    assert not certificate_has_san(v1)
    broken = tmp_path / "broken.crt"
    for text in ("", "not a certificate\n", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"):
        broken.write_text(text)
        with pytest.raises(ValueError):
            certificate_has_san(broken)


def test_clair_in_use_is_a_warning_with_a_rescan_hint(tmp_path):
    c = up.check_clair(inst(tmp_path, components={"clair": True}))
    assert c.status == WARN and "Trivy" in c.detail and "scan" in c.hint


def test_storage_of_harbor_yml():
    assert storage_of({}, "/data") == ("/data/registry", "filesystem", None, None)
    assert storage_of({"storage_service": {"filesystem": {"rootdirectory": "/storage/x"}}}, "/d")[0] == "/d/registry/x"
    s3 = {"storage_service": {"s3": {"bucket": "b", "rootdirectory": "/harbor/reg", "regionendpoint": "http://127.0.0.1:9",
                                     "region": "us-east-1", "accesskey": "AK", "secretkey": "SK"}}}
    assert storage_of(s3, "/d") == ("s3://b/harbor/reg", "s3", "http://127.0.0.1:9", "us-east-1")


def test_external_database_dsn_is_built_and_its_password_masked():
    doc = {"external_database": {"harbor": {"host": "127.0.0.1", "port": 5433, "db_name": "registry",
                                            "username": "harbor", "password": "ext-db-pw-93", "ssl_mode": "disable"}}}
    dsn = dsn_of_external(doc)
    assert dsn == "postgresql://harbor:ext-db-pw-93@127.0.0.1:5433/registry?sslmode=disable"
    from harbor_upgrade.config.runner import register_secrets
    register_secrets(doc)
    assert "ext-db-pw-93" not in mask_text(f"connecting to {dsn}")
    assert dsn_of_external({}) is None


def test_components_from_the_compose_file(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("services:\n  core: {}\n  clair: {}\n  chartmuseum: {}\n")
    services = set(read_services(tmp_path / "docker-compose.yml"))
    c = components_of({"internal_tls": {"enabled": True}}, tmp_path, None, services)
    assert c["clair"] and c["chartmuseum"] and not c["trivy"] and not c["notary"] and c["internal_tls"]


def test_count_rules_and_the_before_side_of_a_1_10_database():
    assert rule_holds("equal", 3, 3) and not rule_holds("equal", 3, 2)
    assert rule_holds("not-fewer", 3, 4) and not rule_holds("not-fewer", 3, 2)
    assert rule_holds("not-more", 3, 2) and not rule_holds("not-more", 3, 4)
    assert rule_holds("shown", 3, 0) and rule_holds("equal", None, 7)
    b = before_counts({"project": 2, "artifact": 10, "repository": 4, "robot": 1, "retention_policy": 1,
                       "replication_policy": 2})
    assert b["projects"] == 2 and b["tags"] == 10 and b["policies"] == 3 and b["labels"] is None
    assert before_counts({"tag": 7, "artifact": 5})["tags"] == 7


def test_manifest_paths_follow_the_distribution_layout():
    link, data = manifest_paths("team/app", "sha256:" + "ab" * 32)
    assert link == f"repositories/team/app/_manifests/revisions/sha256/{'ab' * 32}/link"
    assert data == f"blobs/sha256/ab/{'ab' * 32}/data"


def test_compose_checks_running_containers_the_engine_left_to_harbor_db_and_old_docker(tmp_path):
    from harbor_upgrade.upgrade.preflight import check_compose_engine
    running = {"running": ["harbor-core", "harbor-db"], "database_dir": str(tmp_path / "data" / "database")}
    c = up.check_stopped(inst(tmp_path, schema=None, compose=running))
    assert c.status == FAIL and "harbor-core" in c.detail and "--stop-harbor" in c.hint
    assert up.check_stopped(inst(tmp_path, schema=None, compose=running), need_db=False).status == WARN
    db = tmp_path / "data" / "database"
    db.mkdir(parents=True)
    (db / "PG_VERSION").write_text("9.6\n")
    compose = {"running": [], "database_dir": str(db), "docker_version": "20.10.24+dfsg1"}
    c = check_compose_engine(inst(tmp_path, compose=compose, pg_data_dir=str(db)), "2.4.0")
    assert c.status == WARN and "9.6" in c.detail and "#15383" in c.detail
    (db / "PG_VERSION").write_text("13\n")
    assert check_compose_engine(inst(tmp_path, compose=compose, pg_data_dir=str(db), pg_major_on_disk=13),
                                "2.4.0").status == PASS
    # 2.2's harbor-db runs 9.6 and upgrades nothing: a 13 folder would be left for an empty cluster
    c = check_compose_engine(inst(tmp_path, compose=compose, pg_data_dir=str(db), pg_major_on_disk=13), "2.2.0")
    assert c.status == FAIL and "empty cluster" in c.detail
    old = {**compose, "docker_version": "19.03.12"}
    c = check_compose_engine(inst(tmp_path, compose=old, pg_data_dir=str(db), pg_major_on_disk=13))
    assert c.status == FAIL and "19.03.12" in c.detail and "20.10" in c.hint


def test_the_data_folders_major_is_found_in_any_pgNN_folder(tmp_path):
    from harbor_upgrade.installation import pg_on_disk
    db = tmp_path / "database"
    (db / "pg15").mkdir(parents=True)
    (db / "pg15" / "PG_VERSION").write_text("15\n")
    assert pg_on_disk(str(tmp_path)) == (15, str(db / "pg15"))
    (db / "pg18").mkdir()
    (db / "pg18" / "PG_VERSION").write_text("18\n")
    assert pg_on_disk(str(tmp_path))[0] == 18
    (tmp_path / "old" / "database").mkdir(parents=True)
    (tmp_path / "old" / "database" / "PG_VERSION").write_text("9.6\n")
    assert pg_on_disk(str(tmp_path / "old")) == (None, str(tmp_path / "old" / "database"))
