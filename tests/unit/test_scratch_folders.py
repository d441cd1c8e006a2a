"""Scratch clusters are removed record last, so that a removal cut short is finished by the
next command's sweep instead of being taken for a folder still being set up."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from harbor_upgrade.postgres import scratch


def test_a_removal_cut_short_leaves_the_record_for_the_next_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(scratch.tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    folder = scratch.scratch_root() / "abc"
    (folder / "data" / "base").mkdir(parents=True)
    (folder / "data" / "base" / "1").write_bytes(b"x" * 100)
    (folder / scratch.OWNER).write_text(json.dumps({"pid": 2**22 + 1, "start": "0"}))  # no such process

    real = shutil.rmtree

    def killed(path, *a, **k):
        if os.path.basename(path) == "data":
            raise KeyboardInterrupt  # the process dies while the copy of the database goes
        return real(path, *a, **k)

    monkeypatch.setattr(scratch.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        scratch._remove(folder)
    assert (folder / scratch.OWNER).exists()
    monkeypatch.setattr(scratch.shutil, "rmtree", real)
    assert scratch.sweep() == [folder]
    assert not folder.exists()
