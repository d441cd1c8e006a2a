"""A malformed DSN is bad input (exit 2, invalid-dsn) in every command, before any work, and no
part of its password is shown."""
from __future__ import annotations

import pytest

from harbor_upgrade.secrets import dsn_without_password

BAD_DSNS = {
    "not key=value": "nonsense-dsn",
    "port not a number": "host=127.0.0.1 port=abc user=harbor",
    "unencoded @ in the password": "postgresql://harbor:Pa55@rest-of-pw@127.0.0.1:5432/registry",
    "unencoded / in the password": "postgresql://harbor:Pa55/rest-of-pw@127.0.0.1:5432/registry",
    "unterminated quote": "host=127.0.0.1 password='rest-of-pw",
}


def commands(tmp_path):
    yml = tmp_path / "harbor" / "harbor.yml"
    yml.parent.mkdir()
    yml.write_text("hostname: h.test\n_version: 2.0.0\ndatabase:\n  password: pw-own-1\n")
    (tmp_path / "bk").mkdir()
    return {
        "plan": ["plan", "--harbor-yml", yml],
        "run": ["run", "--harbor-yml", yml, "--backup-dir", tmp_path / "new-backup", "--yes"],
        "verify": ["verify"],
        "db status": ["db", "status"], "db lint": ["db", "lint"], "db migrate": ["db", "migrate"],
        "db repair": ["db", "repair"],
        "artifacts": ["artifacts", "--storage", tmp_path / "no-storage"],
        "backup": ["backup", "--harbor-dir", yml.parent, "--to", tmp_path / "new-backup"],
        "restore": ["restore", "--from", tmp_path / "bk", "--yes"],
        "rollback": ["rollback", "--backup-dir", tmp_path / "bk"],
    }


@pytest.mark.parametrize("shape", sorted(BAD_DSNS))
def test_a_malformed_dsn_is_bad_input_in_every_command(tmp_path, run_cli, shape):
    dsn = BAD_DSNS[shape]
    wrong = []
    for name, args in commands(tmp_path).items():
        code, out, err = run_cli(*args, "--dsn", dsn)
        if not (code == 2 and err.startswith("error [invalid-dsn]") and "rest-of-pw" not in out + err
                and "Traceback" not in err):
            wrong.append((name, code, err[:200]))
    assert wrong == []
    assert not (tmp_path / "new-backup").exists()


def test_hints_name_the_dsn_without_its_password():
    assert dsn_without_password("postgresql://harbor:s3cret@db:5432/registry?sslmode=disable") == \
        "postgresql://harbor@db:5432/registry?sslmode=disable"
    assert dsn_without_password("postgresql://harbor:********@db/registry") == "postgresql://harbor@db/registry"
    assert dsn_without_password("postgresql://harbor@db/registry?password=x&sslmode=require") == \
        "postgresql://harbor@db/registry?sslmode=require"
    assert dsn_without_password(r"host=db password='a\' b' dbname=registry") == "host=db dbname=registry"
