"""Harbor's own installs from any start to any target (installers.harbor_path): the
window of Harbor's upgrade guides, the harbor-db engine moves along the way."""
import pytest

from harbor_upgrade import versions
from harbor_upgrade.installers import covers_from, harbor_path, line_text
from harbor_upgrade.versions import Version

# Harbor's guides: 2.4 covers 1.10+, then each release the two minors before it.
FROM_1_10 = ["2.4.0", "2.6.0", "2.8.0", "2.10.0", "2.12.0", "2.14.0", "2.15.0"]


def upto_target(path: list[str]) -> list[str]:
    """The part of a path the tool knows today (the chain may stop before 2.15)."""
    known = [r for r in path if Version.parse(r) < Version.parse(versions.TARGET)]
    return known + [versions.TARGET]


def test_from_1_10_to_the_latest_takes_harbors_seven_installs():
    path = harbor_path("1.10.3", versions.TARGET)
    assert [i.release for i in path.installs] == upto_target(FROM_1_10)
    assert path.stops == tuple(upto_target(FROM_1_10)[:-1])
    if versions.TARGET == "2.15.0":
        assert path.to_dict()["path"] == "1.10 → 2.4 → 2.6 → 2.8 → 2.10 → 2.12 → 2.14 → 2.15"


def test_each_install_is_covered_by_its_guide():
    releases = versions.RELEASES
    for start in releases[1:-1]:
        path = harbor_path(start, versions.TARGET)
        current = start
        for install in path.installs:
            assert Version.parse(covers_from(install.release, releases)) <= Version.parse(current), (start, install)
            current = install.release
        assert current == versions.TARGET


def test_the_guides_window():
    releases = versions.RELEASES
    assert covers_from("2.4.0", releases) == "1.10.0"
    assert covers_from("2.0.0", releases) == "1.10.0"
    if "2.6.0" in releases:
        assert covers_from("2.5.0", releases) == "2.3.0"
        assert covers_from("2.6.0", releases) == "2.4.0"
    if "2.15.0" in releases:
        assert covers_from("2.15.0", releases) == "2.13.0"


@pytest.mark.parametrize("start,target,installs", [
    ("2.3.0", "2.4.0", ["2.4.0"]),
    ("1.10.0", "2.1.0", ["2.1.0"]),
    ("2.4.0", "2.4.0", []),
    ("2.13.2", "2.15.0", ["2.15.0"]),
    ("2.12.0", "2.15.0", ["2.14.0", "2.15.0"]),
    ("2.5.6", "2.9.0", ["2.7.0", "2.9.0"]),
    ("2.4.0", "2.10.0", ["2.6.0", "2.8.0", "2.10.0"]),
])
def test_paths_between_releases(start, target, installs):
    if target not in versions.RELEASES or line_text(start) + ".0" not in versions.RELEASES:
        pytest.skip(f"the tool knows releases up to {versions.TARGET} only")
    assert [i.release for i in harbor_path(start, target).installs] == installs


def test_engine_moves_follow_the_harbor_db_images():
    path = harbor_path("1.10.0", versions.TARGET)
    moves = [(m.release, m.old, m.new) for m in path.engine_moves]
    expected = [("2.4.0", 9, 13), ("2.10.0", 13, 14), ("2.12.0", 14, 15), ("2.15.0", 15, 18)]
    assert moves == [m for m in expected if Version.parse(m[0]) <= Version.parse(versions.TARGET)]
    assert not any(m.refused for m in path.engine_moves)
    assert "PostgreSQL 9.6 → 13 at 2.4" in path.to_dict()["engine_moves"]


def test_a_data_folder_of_another_major_is_refused_by_harbor_db():
    """A 1.10 installation already moved to PostgreSQL 15 by hand: 2.4's harbor-db only
    upgrades 9.6, so Harbor's way would start an empty cluster: said, not hidden."""
    path = harbor_path("1.10.0", "2.4.0", start_major=15)
    (move,) = path.engine_moves
    assert (move.old, move.new, move.refused) == (15, 13, True)
    assert "empty cluster" in str(move)


def test_downgrades_and_unknown_releases_are_refused():
    from harbor_upgrade.errors import UnsupportedVersion
    with pytest.raises(UnsupportedVersion):
        harbor_path("2.4.0", "2.3.0")
    with pytest.raises(UnsupportedVersion):
        harbor_path("1.8.0", "2.4.0")
