"""Config releases describe themselves: one module per release, found by scanning the package."""
from __future__ import annotations

import pytest

from harbor_upgrade import versions
from harbor_upgrade.config import steps
from harbor_upgrade.config.model import Delta, Section, model_of
from harbor_upgrade.config.runner import check_target


def test_config_chain_and_versions_releases_agree():
    """The whole upgrade's chain (versions.RELEASES) is the config chain, up to the newest
    release the database steps know as well; past that, only config steps may exist."""
    assert steps.RELEASES[:len(versions.RELEASES)] == versions.RELEASES
    assert steps.RELEASES[0] == versions.RELEASES[0] == "1.9.0"


def test_every_release_module_declares_version_apply_and_model():
    for module in steps.CHAIN:
        assert isinstance(module.VERSION, str) and callable(module.apply)
        assert isinstance(module.MODEL, Delta), module.__name__
        assert module.__name__.rsplit(".", 1)[1] == "v" + module.VERSION.replace(".", "_")


def test_chain_is_in_release_order_and_the_default_target_is_the_newest():
    keys = [versions.Version.parse(v) for v in steps.RELEASES]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert steps.TARGET == steps.RELEASES[-1]
    assert list(steps.CONFIG_STEPS) == list(steps.RELEASES[1:])


@pytest.mark.parametrize("target", steps.RELEASES[1:])
def test_every_target_has_a_model_and_is_accepted(target):
    model = model_of(target)
    assert isinstance(model, Section) and "hostname" in model.fields and "_version" in model.fields
    assert check_target(target) == target


def test_models_follow_the_deltas():
    """What a release removes is gone from its model on; what it adds is there."""
    assert "clair" in model_of("2.1.0").fields and "clair" not in model_of("2.2.0").fields
    assert "port" in model_of("2.0.0").fields["external_redis"][0].fields
    assert "port" not in model_of("2.1.0").fields["external_redis"][0].fields
    assert "trace" not in model_of("2.3.0").fields and "trace" in model_of("2.4.0").fields


@pytest.mark.parametrize("start", [v for v in steps.RELEASES[:-1]] + ["1.10.3", "2.5.6", "2.9.5", "2.14.4"])
def test_every_start_reaches_every_later_release(tmp_path, start):
    """A file of any release (patch versions too) goes to every later release: the steps
    are the releases in between, and the result is valid at that target."""
    from harbor_upgrade.config import plan_migration
    from harbor_upgrade.versions import Version
    p = tmp_path / "harbor.yml"
    p.write_text(f"hostname: reg.test.internal\n_version: {start}\n")
    line = Version.parse(start).line
    for target in steps.RELEASES[steps.RELEASES.index(line) + 1:]:
        result = plan_migration(p, target=target)
        assert result.steps == list(steps.RELEASES[steps.RELEASES.index(line) + 1:steps.RELEASES.index(target) + 1])
        assert f"_version: {target}" in result.output_text


def test_zero_durations_are_go_durations(tmp_path):
    from harbor_upgrade.config import plan_migration
    p = tmp_path / "harbor.yml"
    p.write_text("hostname: h.test\n_version: 2.10.0\ndatabase:\n  password: pw-1\n  conn_max_lifetime: 0\n")
    assert "conn_max_lifetime: 0\n" in plan_migration(p, target="2.11.0").output_text
