"""`harbor-upgrade artifacts` on hostile storage trees made here (hostile_trees): every case
ends with exit 1 and "completed with N problems" naming the repository, digest and reason of
each hostile object, every row of the good repository exactly as from a clean tree, no
traceback, no terminal control in the output, nothing read outside the storage root, the
process's peak memory bounded, and no hang (each run has a timeout)."""
from __future__ import annotations

import pytest

from tests.support.hostile_trees import CASES, freeze_atimes, read_since_frozen, run_case


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_storage_is_reported_never_fatal(case, harbor24, tmp_path, clean_rows):  # noqa: F811 - fixture
    _result, wrong = run_case(case, harbor24.dsn, tmp_path, clean_rows[0])
    assert wrong == [], f"clean run peaked at {clean_rows[1] >> 20} MB"


def test_the_outside_read_detector_sees_a_read_and_a_listing(tmp_path):
    """The access-time check that proves nothing outside the root was read can fail."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"canary")
    frozen = freeze_atimes(tmp_path)
    assert read_since_frozen(frozen) == []
    (tmp_path / "d" / "f").read_bytes()
    list((tmp_path / "d").iterdir())
    assert sorted(read_since_frozen(frozen)) == [str(tmp_path / "d"), str(tmp_path / "d" / "f")]
