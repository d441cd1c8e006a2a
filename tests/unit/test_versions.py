import pytest

from harbor_upgrade.errors import UnsupportedVersion
from harbor_upgrade.versions import Version, path_between, release_line, release_of_schema


@pytest.mark.parametrize("text,line", [("1.10.3", "1.10.0"), ("2.1.1", "2.1.0"), ("2.4.0", "2.4.0"),
                                       ("1.9.0", "1.9.0")])
def test_patch_versions_belong_to_their_line(text, line):
    assert release_line(text) == line


@pytest.mark.parametrize("bad", ["v2.3.0", "2.3", 2.3, None, "1.8.0", "99.0.0", "abc"])
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


def test_versions_are_derived_from_the_step_modules():
    from harbor_upgrade import versions
    from harbor_upgrade.config.steps import CONFIG_STEPS
    from harbor_upgrade.db.steps import STEPS as DB_STEPS
    assert versions.RELEASES[0] == "1.9.0"
    assert set(versions.RELEASES) <= {"1.9.0", *CONFIG_STEPS}
    assert versions.RELEASES[-1] == versions.TARGET
    assert versions.TARGET in CONFIG_STEPS and versions.TARGET in {s.release for s in DB_STEPS}
    assert versions.SCHEMA_VERSION == {s.release: s.version for s in DB_STEPS}
    assert versions.SCHEMA_VERSION["1.10.0"] == 15 and versions.SCHEMA_VERSION["2.4.0"] == 70


def test_config_and_database_chains_agree():
    """The releases both chains know are the same sequence and TARGET is the newest of them
    (while a release is being added, one chain may run ahead of the other)."""
    from harbor_upgrade import versions
    db, config = versions.DB_RELEASES, versions.CONFIG_RELEASES[1:]
    both = [r for r in db if r in config]
    assert both == [r for r in config if r in db]
    assert both == list(db[:len(both)]) == list(config[:len(both)]), "a chain lacks a release in the middle"
    assert versions.TARGET == both[-1] and versions.RELEASES == ("1.9.0", *both)


def test_every_release_names_its_harbor_db_postgres_major():
    from harbor_upgrade import versions
    assert versions.HARBOR_DB_MAJOR["1.10.0"] == 9 and versions.HARBOR_DB_MAJOR["2.4.0"] == 13
