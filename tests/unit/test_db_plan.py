"""Pure parts of the database upgrade: the chain of steps, version checks, lint helpers."""
from __future__ import annotations

import pytest

from harbor_upgrade import versions
from harbor_upgrade.db import checks as db_lint
from harbor_upgrade.db.ledger import LedgerState
from harbor_upgrade.db.runner import check_version, plan_steps, step_name, target_version
from harbor_upgrade.db.steps import APPLIED, STEPS, v2_1_0
from harbor_upgrade.errors import UnsafeState, UnsupportedVersion
from harbor_upgrade.versions import SCHEMA_VERSION

DSN = "postgresql://harbor:s3cret-pw@127.0.0.1:5432/registry"


def names(version: int, to: str = "2.4.0") -> list[str]:
    return [step_name(s, f) for s, f in plan_steps(version, to)]


def test_steps_cover_every_upstream_file_in_order():
    versions = [f.version for s in STEPS for f in s.files]
    assert versions[:11] == [30, 31, 40, 41, 50, 51, 52, 53, 60, 61, 70]
    assert versions == sorted(set(versions))
    assert [s.release for s in APPLIED][:5] == ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0"]
    assert STEPS[0].release == "1.10.0" and STEPS[0].version == 15 and not STEPS[0].files
    assert all(s.version == SCHEMA_VERSION[s.release] for s in STEPS)


@pytest.mark.parametrize("version,expected", [
    (15, ["2.0.0 (0030+0031)", "2.1.0 (0040+0041)", "2.2.0 (0050+0051+0052+0053)",
          "2.3.0 (0060+0061)", "2.4.0 (0070)"]),
    (30, ["2.0.0 (0031)", "2.1.0 (0040+0041)", "2.2.0 (0050+0051+0052+0053)",
          "2.3.0 (0060+0061)", "2.4.0 (0070)"]),
    (41, ["2.2.0 (0050+0051+0052+0053)", "2.3.0 (0060+0061)", "2.4.0 (0070)"]),
    (51, ["2.2.0 (0052+0053)", "2.3.0 (0060+0061)", "2.4.0 (0070)"]),
    (60, ["2.3.0 (0061)", "2.4.0 (0070)"]),
    (70, []),
    (71, []),
])
def test_plan_applies_only_the_files_above_the_current_version(version, expected):
    assert names(version) == expected


def test_2_4_0_ends_at_70_and_0071_comes_on_the_way_further():
    assert names(60, "2.4.0") == ["2.3.0 (0061)", "2.4.0 (0070)"]
    assert names(70, "2.5.0") == ["2.4.0 (0071)", "2.5.0 (0080+0081+0082)"]
    assert names(71, "2.6.0") == ["2.5.0 (0080+0081+0082)", "2.6.0 (0090+0091)"]
    assert names(81, "2.15.0")[0] == "2.5.0 (0082)"
    assert names(15, "2.15.0")[-3:] == ["2.13.0 (0160)", "2.14.0 (0170+0171)", "2.15.0 (0180)"]


def test_plan_stops_at_an_intermediate_release():
    assert names(15, "2.1.0") == ["2.0.0 (0030+0031)", "2.1.0 (0040+0041)"]
    assert names(40, "2.1.0") == ["2.1.0 (0041)"]


def test_plan_refuses_to_go_down():
    with pytest.raises(UnsupportedVersion):
        plan_steps(53, "2.1.0")


def test_target_accepts_patch_versions_and_refuses_others():
    assert target_version("2.1.4") == ("2.1.0", 41)
    assert target_version("2.4.0") == ("2.4.0", 70)
    assert target_version("2.4.3") == ("2.4.0", 70)
    assert target_version("2.5.6") == ("2.5.0", 82)
    assert target_version("2.15.2") == ("2.15.0", 180)
    major, minor, _ = versions.TARGET.split(".")
    past_the_newest = f"{major}.{int(minor) + 1}.0"  # adding a release must not need this test edited
    for bad in ("1.10.0", past_the_newest, "v2.4.0", "2.4"):
        with pytest.raises(UnsupportedVersion):
            target_version(bad)


def test_below_1_10_is_refused_with_upgrade_to_1_10_first():
    with pytest.raises(UnsupportedVersion, match="upgrade to 1.10 first"):
        check_version(LedgerState(12, False, None), DSN)


def test_dirty_state_names_the_repair_command_without_the_password():
    with pytest.raises(UnsafeState) as err:
        check_version(LedgerState(50, True, None), DSN)
    assert err.value.reference == "dirty-schema"
    assert "harbor-upgrade db repair --dsn" in err.value.hint
    assert "s3cret-pw" not in err.value.hint


@pytest.mark.parametrize("version", [16, 42, 54, 72, 83, 181])
def test_unknown_versions_are_explained(version):
    with pytest.raises(UnsafeState) as err:
        check_version(LedgerState(version, False, None), DSN)
    assert err.value.reference == "unknown-schema-version"


def test_no_version_is_not_a_harbor_database():
    with pytest.raises(UnsafeState) as err:
        check_version(LedgerState(None, False, None), DSN)
    assert err.value.reference == "not-a-harbor-db"


def test_json_and_integer_probes():
    assert db_lint.not_json("{bad") and not db_lint.not_json('{"a": 1}') and not db_lint.not_json(None)
    assert db_lint.not_integer("12a") and not db_lint.not_integer(" 43200 ")
    assert v2_1_0._bad_job_id('{"trigger": {"references": {"job_id": "x"}}}')
    assert not v2_1_0._bad_job_id('{"trigger": {"references": {"job_id": "12"}}}')
    assert not v2_1_0._bad_job_id('{"trigger": {"references": {}}}')


def test_every_lint_check_guards_files_of_its_own_step_and_names_a_fix():
    for step in STEPS:
        for check in step.checks:
            assert check.fix and check.problem
            assert any(f.version >= check.before or check.before == 999 for f in step.files), step.release


def test_every_schema_changing_file_has_repair_probes():
    from harbor_upgrade.db.repair import markers
    probed = [v for v, probes in markers() if probes]
    assert probed[:4] == [15, 30, 40, 50]
    assert all(v in probed for v in (51, 52, 53, 60, 70, 80, 81, 90, 91, 100, 110, 111, 120, 130, 140, 150,
                                     160, 170, 180))
    assert not any(v in probed for v in (31, 41, 61, 71, 82, 171))    # data-only files
