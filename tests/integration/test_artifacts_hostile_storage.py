"""`harbor-upgrade artifacts` on hostile storage trees made here (hostile_trees): every case
ends with exit 1 and "completed with N problems" naming the repository, digest and reason of
each hostile object, every row of the good repository exactly as from a clean tree, no
traceback, no terminal control in the output, nothing read outside the storage root, the
process's peak memory bounded, and no hang (each run has a timeout)."""
from __future__ import annotations

import pytest

from tests.support.artifacts import register
from tests.support.hostile_trees import (
    CASES,
    build,
    freeze_atimes,
    good_rows,
    judge,
    read_since_frozen,
    run_artifacts,
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_storage_is_reported_never_fatal(case, harbor24, tmp_path, clean_rows):  # noqa: F811 - fixture
    tree, expected = build(case, tmp_path / "storage", tmp_path / "outside")
    register(harbor24.dsn, tree.db_rows)
    frozen = freeze_atimes(tree.outside)
    result = run_artifacts(harbor24.dsn, tree.root, tmp_path / "report.json")
    assert judge(result, expected, good_rows(harbor24.dsn), clean_rows[0], read_since_frozen(frozen)) == [], \
        f"clean run peaked at {clean_rows[1] >> 20} MB"


def test_the_outside_read_detector_sees_a_read_and_a_listing(tmp_path):
    """The access-time check that proves nothing outside the root was read can fail."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"canary")
    frozen = freeze_atimes(tmp_path)
    assert read_since_frozen(frozen) == []
    (tmp_path / "d" / "f").read_bytes()
    list((tmp_path / "d").iterdir())
    assert sorted(read_since_frozen(frozen)) == [str(tmp_path / "d"), str(tmp_path / "d" / "f")]
