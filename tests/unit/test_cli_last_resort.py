"""The last resort: an unexpected exception anywhere ends as one masked line, exit 70."""
from __future__ import annotations

import psycopg
import pytest

from harbor_upgrade import db as harbor_db
from harbor_upgrade.cli import main as cli_main
from harbor_upgrade.config import runner
from harbor_upgrade.errors import ExitStatus

PASSWORD = "Db-pw-9f3kq"
HARBOR_YML = f"""\
hostname: reg.test.internal
harbor_admin_password: admin-pw-x7
database:
  password: {PASSWORD}
data_volume: /data
_version: 2.0.0
"""


def test_the_internal_error_code_is_dedicated():
    assert ExitStatus.INTERNAL_ERROR == 70
    assert ExitStatus.INTERNAL_ERROR not in {s for s in ExitStatus if s != ExitStatus.INTERNAL_ERROR}


def test_an_oserror_deep_inside_migrate_prints_one_masked_line_and_exits_70(tmp_path, monkeypatch, run_cli):
    yml = tmp_path / "harbor.yml"
    yml.write_text(HARBOR_YML)

    def broken(*args, **kwargs):
        raise OSError(5, f"I/O error while checking password {PASSWORD}")
    monkeypatch.setattr(runner, "validate", broken)
    code, out, err = run_cli("migrate", "-i", yml, "--check")
    assert code == ExitStatus.INTERNAL_ERROR == 70
    assert err.startswith("error [internal-error]: OSError: [Errno 5] I/O error while checking password ********")
    assert "--traceback" in err and "Traceback" not in err
    assert PASSWORD not in out + err


def test_a_psycopg_error_deep_inside_db_status_never_shows_the_password(monkeypatch, run_cli):
    dsn = f"postgresql://harbor:{PASSWORD}@127.0.0.1:1/registry"

    def broken(dsn_arg, *args, **kwargs):
        # psycopg quotes connection details; a second, unregistered password rides in a URL and a key=value
        raise psycopg.OperationalError(f"server closed the connection for {dsn_arg} "
                                       "(retry with postgresql://other:unregistered-pw@h/db, password='x y z')")
    monkeypatch.setattr(harbor_db, "status", broken)
    code, out, err = run_cli("db", "status", "--dsn", dsn)
    assert code == 70
    assert "error [internal-error]: psycopg.OperationalError: server closed the connection" in err
    for secret in (PASSWORD, "unregistered-pw", "x y z"):
        assert secret not in out + err


def test_traceback_flag_re_raises(tmp_path, monkeypatch):
    yml = tmp_path / "harbor.yml"
    yml.write_text(HARBOR_YML)
    monkeypatch.setattr(runner, "validate", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli_main(["--traceback", "migrate", "-i", str(yml), "--check"])
    # the flag does not stick to the next command of the same process
    assert cli_main(["migrate", "-i", str(yml), "--check"]) == 70


def test_harbor_upgrade_errors_keep_their_own_codes(tmp_path, run_cli):
    code, _, err = run_cli("migrate", "-i", tmp_path / "absent.yml", "--check")
    assert code == 2 and err.startswith("error [")
