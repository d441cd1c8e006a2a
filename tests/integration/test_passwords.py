"""A password never has to be on a command line: PGPASSWORD, PGPASSFILE (~/.pgpass),
--password-file and a prompt, against a real server that asks for one (scram-sha-256)."""
from __future__ import annotations

import os

import pytest

from harbor_upgrade.cli.console import Console
from harbor_upgrade.postgres.cluster import LocalCluster

PASSWORD = "Scram-pw-4412-x"


@pytest.fixture(scope="module")
def server():
    """A cluster whose TCP connections need the password (the local socket stays trusted for setup)."""
    c = LocalCluster.create(fast=True)
    c.start()
    try:
        c.psql(f"ALTER ROLE {c.superuser} PASSWORD '{PASSWORD}'")
        (c.datadir / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        c.psql("SELECT pg_reload_conf()")
        yield c
    finally:
        c.stop()


@pytest.fixture
def dsn(server, monkeypatch):
    for var in ("PGPASSWORD", "PGPASSFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")        # no ~/.pgpass of the machine
    return server.dsn("postgres")                    # postgresql://postgres@127.0.0.1:PORT/postgres: no password


def test_without_a_password_the_server_refuses_and_nothing_leaks(dsn, run_cli):
    code, out, err = run_cli("db", "status", "--dsn", dsn)
    assert code == 5 and err.startswith("error [db-unreachable]") and "no password supplied" in err


def test_pgpassword_is_honoured(dsn, run_cli, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    code, out, err = run_cli("db", "status", "--dsn", dsn)
    assert code == 0 and "schema version" in out and PASSWORD not in out + err


def test_a_pgpass_file_is_honoured(dsn, server, run_cli, monkeypatch, tmp_path):
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{server.port}:*:{server.superuser}:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    code, out, err = run_cli("db", "status", "--dsn", dsn)
    assert code == 0 and "schema version" in out


def test_password_file_option(dsn, run_cli, tmp_path):
    pw = tmp_path / "db-password"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    code, out, err = run_cli("--password-file", pw, "db", "status", "--dsn", dsn)
    assert code == 0 and "schema version" in out and PASSWORD not in out + err
    assert "PGPASSWORD" not in os.environ             # not left behind for the next command of this process
    pw.chmod(0o644)
    code, out, err = run_cli("--password-file", pw, "db", "status", "--dsn", dsn)
    assert code == 2 and err.startswith("error [password-file-invalid]") and "chmod 600" in err
    code, out, err = run_cli("--password-file", tmp_path / "absent", "db", "status", "--dsn", dsn)
    assert code == 2 and "password-file-invalid" in err


def test_a_terminal_is_asked_once_when_the_server_wants_a_password(dsn, run_cli, monkeypatch):
    asked = []
    monkeypatch.setattr(Console, "ask_password", lambda self, who: asked.append(who) or PASSWORD)
    code, out, err = run_cli("db", "status", "--dsn", dsn)
    assert asked == ["postgres@127.0.0.1"] and code == 0 and PASSWORD not in out + err
    # a wrong answer is the server's refusal, masked
    monkeypatch.setattr(Console, "ask_password", lambda self, who: "Wrong-answer-99")
    code, out, err = run_cli("db", "status", "--dsn", dsn)
    assert code == 5 and "password authentication failed" in err and "Wrong-answer-99" not in out + err


def test_a_password_in_the_dsn_is_masked_in_every_output(server, run_cli, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    wrong = server.dsn("postgres").replace("postgres@", "postgres:Not%40the-pw@")
    code, out, err = run_cli("db", "status", "--dsn", wrong)
    assert code == 5 and "Not%40the-pw" not in out + err and "Not@the-pw" not in out + err and "the-pw" not in err
