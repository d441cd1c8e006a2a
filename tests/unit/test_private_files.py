"""One atomic writer (private.py) for the installation's private files and the migrated harbor.yml."""
from __future__ import annotations

import os
import stat

import pytest

from harbor_upgrade.config.runner import write_atomically
from harbor_upgrade.errors import InvalidInput
from harbor_upgrade.private import NoTempFile, replace_atomically, write_private


def test_a_private_file_is_replaced_whole_and_0600(tmp_path):
    f = tmp_path / "journal.json"
    f.write_text("old")
    f.chmod(0o644)
    write_private(f, "new")
    assert f.read_text() == "new" and stat.S_IMODE(f.stat().st_mode) == 0o600
    replace_atomically(tmp_path / "harbor.yml", b"x: 1\n", 0o640)
    assert stat.S_IMODE((tmp_path / "harbor.yml").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["harbor.yml", "journal.json"]   # no temp file left


def test_a_failed_write_leaves_the_target_and_no_temp_file(tmp_path):
    with pytest.raises(NoTempFile):
        write_private(tmp_path / "absent" / "f", "x")
    target = tmp_path / "f"
    target.write_text("kept")
    os.mkdir(tmp_path / "d")
    with pytest.raises(IsADirectoryError):
        replace_atomically(tmp_path / "d", b"x")      # the rename over a folder fails after the write
    assert target.read_text() == "kept" and sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]


def test_the_config_writer_says_which_step_failed(tmp_path):
    with pytest.raises(InvalidInput, match=r"cannot write in .*absent: No such file or directory; nothing was"):
        write_atomically(tmp_path / "absent" / "harbor.yml", b"x", 0o600)
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidInput, match=r"d: cannot write: Is a directory; the file was not changed"):
        write_atomically(tmp_path / "d", b"x", 0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
