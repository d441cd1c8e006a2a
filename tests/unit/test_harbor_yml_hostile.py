"""Hostile harbor.yml files through every command that reads one (migrate, plan, run, artifacts):
one clear error naming the file (exit 2), never a traceback, a hang, or memory blown by a
file that lies about its size."""
from __future__ import annotations

import os
import signal
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harbor_upgrade.config import read_harbor_yml
from harbor_upgrade.config.reader import MAX_YAML_DEPTH
from harbor_upgrade.errors import InvalidInput
from harbor_upgrade.report import render_text

VALID = """\
hostname: reg.test.internal
harbor_admin_password: admin-pw-x7
database:
  password: db-pw-hostile-1
data_volume: {dv}
storage_service:
  filesystem:
    rootdirectory: /storage
external_redis:
  host: redis:6379
  registry_db_index: 1
_version: 2.0.0
"""

LAUGHS = "".join(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else '"lol"'] * 9) + "]\n" for i in range(10))
UNREACHABLE_DSN = "postgresql://harbor@127.0.0.1:1/registry"


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so the CLI's last resort cannot swallow it."""


@pytest.fixture(autouse=True)
def no_hang():
    def ring(*_):
        raise Hang("the command hung")
    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def hostile_files(d: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, words the error must say)."""
    files: dict[str, tuple[Path, str]] = {}

    def text(name: str, content: str | bytes, words: str) -> None:
        p = d / f"{name}.yml"
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        files[name] = (p, words)
    text("billion-laughs", LAUGHS + "_version: 2.0.0\n", "billion laughs")
    text("deep", "hostname: x\nx: " + "[" * 5000 + "]" * 5000 + "\n_version: 2.0.0\n",
         f"more than {MAX_YAML_DEPTH} levels")
    text("deep-block", "hostname: x\n" + "".join(" " * i + f"k{i}:\n" for i in range(200)) + "_version: 2.0.0\n",
         "levels deep")
    text("huge-version", "hostname: x\n_version: " + "7" * 5000 + "\n", "line 2: _version: a number of 5,000 digits")
    text("storage-banana", "hostname: x\nstorage_service: banana\n_version: 2.0.0\n",
         "line 2: storage_service: must be a mapping of settings, not text ('banana')")
    text("driver-list", "hostname: x\nstorage_service:\n  s3: [a, b]\n_version: 2.0.0\n",
         "line 3: storage_service.s3: must be a mapping")
    text("port-banana", "hostname: x\nexternal_database:\n  harbor:\n    host: db\n    port: banana\n"
         "_version: 2.0.0\n", "line 5: external_database.harbor.port: must be a port number")
    text("data-volume-map", "hostname: x\ndata_volume:\n  a: b\n_version: 2.0.0\n",
         "line 2: data_volume: must be a single value, not a mapping")
    text("bad-utf8", b"hostname: caf\xe9\n_version: 2.0.0\n", "line 1: not UTF-8")
    text("utf16-bom", "hostname: x\n_version: 2.0.0\n".encode("utf-16"), "UTF-16 text")
    text("utf16-no-bom", "hostname: x\n_version: 2.0.0\n".encode("utf-16-le"), "looks like UTF-16")
    text("too-large", "hostname: x\n_version: 2.0.0\n" + "# padding\n" * 20_000, "far too large")
    text("not-a-mapping", "- a\n- b\n", "not a mapping")
    text("bad-yaml", "hostname: [oops\n_version: 2.0.0\n", "not valid YAML")
    zero = d / "zero.yml"
    zero.symlink_to("/dev/zero")
    files["symlink-to-dev-zero"] = (zero, "character device")
    fifo = d / "fifo.yml"
    os.mkfifo(fifo)
    files["fifo"] = (fifo, "FIFO")
    folder = d / "folder.yml"
    folder.mkdir()
    files["folder"] = (folder, "is a directory")     # click's own check of the option, exit 2 too
    return files


COMMANDS = {
    "migrate": lambda f, tmp: ["migrate", "-i", f, "--check"],
    "plan": lambda f, tmp: ["plan", "--harbor-yml", f],
    "run": lambda f, tmp: ["run", "--harbor-yml", f, "--backup-dir", tmp / "B[/x]", "--yes"],
    "run --dry-run": lambda f, tmp: ["run", "--harbor-yml", f, "--backup-dir", tmp / "B[/x]", "--dry-run"],
    "artifacts": lambda f, tmp: ["artifacts", "--dsn", UNREACHABLE_DSN, "--harbor-yml", f],
}


@pytest.mark.parametrize("command", ["artifacts", "migrate", "plan", "run"])
def test_every_hostile_file_is_one_clear_error_in_every_command(tmp_path, run_cli, command):
    (tmp_path / "in").mkdir()
    files = hostile_files(tmp_path / "in")
    failures = []
    for name, (path, words) in files.items():
        before = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        code, out, err = run_cli(*COMMANDS[command](path, tmp_path))
        refused = err.startswith("error [harbor-yml-invalid]") or (name == "folder" and "Usage:" in err)
        if command == "migrate" and err.startswith("error [validation-failed]"):
            # migrate validates the whole result with its model first: the key and line are named there
            refused, words = True, words.split(": must")[0].split(".")[-1]
        if not (code == 2 and refused and str(path) in err and words in err and "Traceback" not in out + err):
            failures.append((name, code, err[:300]))
        if before is not None:
            assert path.read_bytes() == before
    assert failures == []
    assert not (tmp_path / "B[").exists()       # run refused before its backup folder was made


def test_a_valid_file_still_reads_with_types_and_secrets(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text(VALID.format(dv=tmp_path / "data"))
    cfg = read_harbor_yml(p)
    assert cfg.release == "2.0.0" and cfg.storage_spec == (str(tmp_path / "data" / "registry"), "filesystem",
                                                            None, None)


def test_installation_semantics_of_the_storage_root_are_kept(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text("hostname: x\ndata_volume: /d\nstorage_service:\n  filesystem:\n    rootdirectory: /storage/sub\n"
                 "_version: 2.3.0\n")
    assert read_harbor_yml(p).registry_storage_path == Path("/d/registry/sub")
    p.write_text("hostname: x\n_version: 2.3.0\n")
    cfg = read_harbor_yml(p)
    assert cfg.registry_storage_path == Path("/data/registry") and cfg.components.chartmuseum is None


def test_an_unsupported_release_is_a_finding_for_the_installation_not_an_error(tmp_path):
    p = tmp_path / "harbor.yml"
    p.write_text("hostname: x\n_version: 9.9.9\n")
    cfg = read_harbor_yml(p, require_release=False)
    assert cfg.version == "9.9.9" and cfg.release is None and "newer than" in cfg.release_error
    with pytest.raises(InvalidInput, match="line 1: hostname: must be a single value"):
        p.write_text("hostname: [a]\n_version: 9.9.9\n")
        read_harbor_yml(p, require_release=False)


def test_nothing_user_supplied_is_read_as_markup():
    out = render_text({"ok": False, "journal": "B[/x]/journal.jsonl", "next": ["rerun with --backup-dir 'B[/x]'"],
                       "error": {"reference": "dirty-schema", "message": "schema [bold]70[/bold] is dirty"}})
    assert "error [dirty-schema]: schema [bold]70[/bold] is dirty" in out
    assert "Journal: B[/x]/journal.jsonl" in out and "'B[/x]'" in out


def test_plan_of_a_path_with_brackets_renders(tmp_path, run_cli):
    d = tmp_path / "B[" / "x]"
    d.mkdir(parents=True)
    (d / "harbor.yml").write_text(VALID.format(dv=tmp_path / "data"))
    code, out, err = run_cli("plan", "--harbor-yml", d / "harbor.yml")
    assert "Traceback" not in out + err and "internal-error" not in err and code != 70
    assert f"Installation: {d / 'harbor.yml'}" in out


YAML_VALUES = st.one_of(
    st.sampled_from(["banana", "[1, 2]", "{a: b}", "null", "-1", "99999999", "'/storage/../x'", "*nope", "&a x",
                     "!!binary aGk=", "|\n  block", "1e400", "0x" + "f" * 50, "'\\x00'", "[[[[[]]]]]", "~", "yes"]),
    st.text(alphabet=string.printable, max_size=30),
)
KEYS = ["hostname", "data_volume", "storage_service", "  filesystem", "    rootdirectory", "database",
        "  password", "external_redis", "  host", "  registry_db_index", "_version"]


# 25 examples (was 40): the 19 hand-made hostile files above go through every command already; this
# test adds random damage to a valid file.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=YAML_VALUES, extra=st.binary(max_size=12), at=st.integers(0, 400))
def test_fuzzed_files_never_crash_migrate_plan_run_or_artifacts(tmp_path, run_cli, key, value, extra, at):
    base = VALID.format(dv=tmp_path / "data")
    lines = [f"{key}: {value}" if line.startswith(key + ":") or line.startswith(key.strip() + ":") else line
             for line in base.splitlines()]
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    raw = raw[:at] + extra + raw[at:]
    p = tmp_path / "fuzz.yml"
    p.write_bytes(raw)
    for command in ("migrate", "plan", "run --dry-run", "artifacts"):
        code, out, err = run_cli(*COMMANDS[command](p, tmp_path))
        assert code in (0, 1, 2, 3, 4, 5), (command, code, err)
        assert "Traceback" not in out + err and "internal-error" not in err, (command, err)
        if code == 2:
            assert err.startswith("error [") and str(p) in err or "DSN" in err or "storage" in err, (command, err)
