"""Reading a Compose installation's folder: services, images, harbor-db's data folder, the
project name, the password from harbor.yml; what happens without Docker."""
from __future__ import annotations

from pathlib import Path

import pytest

from harbor_upgrade import secrets
from harbor_upgrade.compose import detect_compose
from harbor_upgrade.compose.database import check_layout
from harbor_upgrade.compose.detect import default_project
from harbor_upgrade.compose.errors import ComposeFileInvalid, DatabaseLayoutMismatch, DockerUnavailable
from harbor_upgrade.compose.session import database
from tests.support import compose_stack as cs


@pytest.fixture
def no_docker(monkeypatch, tmp_path):
    """A PATH without docker: the engine cannot be asked."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def write(tmp_path: Path, external_database: bool = False) -> Path:
    d = tmp_path / "My Harbor"
    d.mkdir()
    site = cs.Site(tmp_path, d, d / "harbor.yml", tmp_path / "data", tmp_path / "log", 18080)
    cs.write_compose(site, external_database)
    return d


def test_a_compose_folder_is_described_without_docker(tmp_path, no_docker):
    d = write(tmp_path)
    ci = detect_compose(d, {"database": {"password": "s3cret:/@x"}})
    assert ci is not None and ci.docker_error and "docker" in ci.docker_error
    assert ci.project == "myharbor" and ci.release == "1.10.6" and ci.containers == []
    assert ci.db_service == "postgresql" and ci.db_image == cs.DB_IMAGE
    assert ci.db_dir == str(tmp_path / "data" / "database")
    assert ci.services["proxy"].image == f"goharbor/nginx-photon:{cs.VERSION}"
    assert ci.password == "s3cret:/@x" and secrets.mask_text("pw s3cret:/@x") == "pw ********"
    assert "s3cret" not in repr(ci) and "s3cret" not in str(ci.to_dict())
    (d / "harbor.yml").write_text("database:\n  password: s3cret:/@x\n")
    with pytest.raises(DockerUnavailable), database(d / "harbor.yml", None):
        pass


def test_external_database_has_no_harbor_db_and_gives_harbor_ymls_dsn(tmp_path, no_docker):
    d = write(tmp_path, external_database=True)
    (d / "harbor.yml").write_text("external_database:\n  harbor:\n    host: 127.0.0.1\n    port: 5433\n"
                                  "    db_name: registry\n    username: harbor\n    password: ext-pw/1\n")
    ci = detect_compose(d, {})
    assert ci is not None and ci.db_service is None and ci.db_dir is None
    with database(d / "harbor.yml", None) as dsn:
        assert dsn == "postgresql://harbor:ext-pw%2F1@127.0.0.1:5433/registry?sslmode=disable"
    with database(d / "harbor.yml", "postgresql://u@h/db") as dsn:
        assert dsn == "postgresql://u@h/db"


def test_no_compose_file_is_no_compose_installation_and_a_broken_one_is_named(tmp_path):
    assert detect_compose(tmp_path, {}) is None
    (tmp_path / "docker-compose.yml").write_text("services: [unclosed\n")
    with pytest.raises(ComposeFileInvalid, match="docker-compose.yml"):
        detect_compose(tmp_path, {})
    (tmp_path / "docker-compose.yml").write_text("version: '2.3'\n")
    with pytest.raises(ComposeFileInvalid, match="no services"):
        detect_compose(tmp_path, {})


def test_the_project_name_follows_compose(monkeypatch):
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    assert default_project(Path("/opt/Harbor.v1_10-x")) == "harborv1_10-x"
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "prod")
    assert default_project(Path("/opt/harbor")) == "prod"


def test_an_old_harbor_db_is_not_started_on_a_cluster_a_newer_one_moved(tmp_path, no_docker):
    d = write(tmp_path)
    ci = detect_compose(d, {"database": {"password": "pw"}})
    db_dir = Path(ci.db_dir)
    (db_dir / "pg13").mkdir(parents=True)
    (db_dir / "pg13" / "PG_VERSION").write_text("13\n")
    with pytest.raises(DatabaseLayoutMismatch, match="pg13"):
        check_layout(ci, db_dir)
    (db_dir / "PG_VERSION").write_text("9.6\n")
    check_layout(ci, db_dir)
