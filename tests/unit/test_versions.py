import pytest

from harbor_upgrade.errors import UnsupportedVersion
from harbor_upgrade.versions import Version, path_between, release_line, release_of_schema


@pytest.mark.parametrize("text,line", [("1.10.3", "1.10.0"), ("2.1.1", "2.1.0"), ("2.4.0", "2.4.0"),
                                       ("1.9.0", "1.9.0")])
def test_patch_versions_belong_to_their_line(text, line):
    assert release_line(text) == line


@pytest.mark.parametrize("bad", ["v2.3.0", "2.3", 2.3, None, "1.8.0", "2.5.0", "abc"])
def test_bad_versions_are_refused(bad):
    with pytest.raises(UnsupportedVersion):
        release_line(bad)


def test_older_than_1_9_says_upgrade_to_1_10_first():
    with pytest.raises(UnsupportedVersion) as e:
        release_line("1.8.0")
    assert "1.10" in e.value.hint


def test_path_and_downgrade():
    assert path_between("1.10.0", "2.1.0") == ["2.0.0", "2.1.0"]
    assert path_between("2.4.0", "2.4.0") == []
    with pytest.raises(UnsupportedVersion):
        path_between("2.3.0", "2.2.0")


def test_schema_versions():
    assert release_of_schema(15) == "1.10.0"
    assert release_of_schema(52) == "2.2.0"
    assert release_of_schema(14) is None
    assert Version.parse("2.10.0") > Version.parse("2.9.9")
