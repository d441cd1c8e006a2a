"""The migrated harbor.yml means what Harbor's own migrate produces, fixture by fixture.

For every fixture and every target of ../shared/fixtures/harbor-yml/manifest.json the
parsed output (read the way Harbor reads it: YAML 1.1) equals Harbor's ``expected``
output, or ``expected-fixed`` where Harbor crashed or wrote invalid YAML. At the paths
of known-deviations.json, where Harbor loses an operator's value, we must keep it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harbor_upgrade.config import migrate_file, plan_migration
from harbor_upgrade.config.steps import TARGET
from harbor_upgrade.versions import Version
from tests.support.shared_tools import shared_dir

ABSENT = "<absent>"


def harbor_reads(text: str) -> object:
    y = YAML(typ="safe", pure=True)
    y.version = (1, 1)
    return y.load(text)


def _cases(targets: tuple[str, ...] | None = None, newest: bool = False) -> list[tuple[str, str]]:
    """(fixture, target) of the manifest: every one, those whose target is in ``targets``, or
    each fixture's newest target."""
    d = shared_dir()
    if d is None:  # one placeholder case: the `shared` fixture then skips it (or fails it under CI)
        return [("-", "-")]
    manifest = json.loads((d / "fixtures/harbor-yml/manifest.json").read_text())
    if newest:
        return [(name, max(fx["targets"], key=Version.parse)) for name, fx in sorted(manifest["fixtures"].items())]
    return [(name, target) for name, fx in sorted(manifest["fixtures"].items()) for target in fx["targets"]
            if targets is None or target in targets]


# Stops after which a later step must take over what this one wrote (the 2.1 pool sizes
# the 2.3 step rewrites, the 2.4 trace settings, 2.9's strong_ssl_ciphers that 2.10 moves):
# stopping there and going on to the newest must give the straight result.
HALFWAY = ("2.1.0", "2.4.0", "2.9.0")


@pytest.fixture(scope="module")
def corpus(shared: Path):
    root = shared / "fixtures/harbor-yml"
    return (root, json.loads((root / "manifest.json").read_text()),
            [dev for name in ("known-deviations.json", "known-deviations-targets.json")
             for dev in json.loads((root / name).read_text())["deviations"]])


def _get(data: object, path: list[str]) -> object:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return ABSENT
        data = data[key]
    return data


def _drop(data: object, path: list[str]) -> None:
    for key in path[:-1]:
        if not isinstance(data, dict) or key not in data:
            return
        data = data[key]
    if isinstance(data, dict):
        data.pop(path[-1], None)


def _kept_from_input(ours: object, expected: object, given: object, path: tuple = ()) -> list[list[str]]:
    """Keys Harbor's step left out although the input has them, and we kept as written:
    unknown keys, and keys a later release of Harbor has but the target's step does not
    carry (e.g. a 2.7 file's database.conn_max_lifetime through the 2.8 ... 2.10 steps,
    external_redis.chartmuseum_db_index on 2.5 ... 2.7, where ChartMuseum still reads it)."""
    found: list[list[str]] = []
    if not (isinstance(ours, dict) and isinstance(expected, dict)):
        return found
    for key, value in ours.items():
        if key not in expected:
            if _get(given, [*path, key]) == value:
                found.append([*path, key])
        else:
            found += _kept_from_input(value, expected[key], given, (*path, key))
    return found


def _expected_file(run: dict) -> str:
    if run["status"] in ("ok", "noop"):
        return run["expected"]
    return run["fixed_expected"]


@pytest.mark.conformance
@pytest.mark.parametrize("fixture,target", _cases())
def test_same_meaning_as_harbor(corpus, fixture, target):
    root, manifest, deviations = corpus
    fx = manifest["fixtures"][fixture]
    run = fx["targets"][target]
    result = plan_migration(root / fx["fixture"], target=target)
    ours = harbor_reads(result.output_text)
    expected = harbor_reads((root / _expected_file(run)).read_text())

    for dev in deviations:
        if dev["fixture"] == fixture and target in dev["targets"]:
            assert _get(ours, dev["path"]) == dev["corrected"], (
                f"{'.'.join(dev['path'])}: the operator's value must be kept ({dev['why']})")
            _drop(ours, dev["path"])
            _drop(expected, dev["path"])
    for path in _kept_from_input(ours, expected, harbor_reads((root / fx["fixture"]).read_text())):
        _drop(ours, path)
    assert ours == expected
    if run["status"] == "noop":
        assert not result.steps and not result.changed


@pytest.mark.conformance
@pytest.mark.parametrize("fixture,target", _cases(newest=True))
def test_written_file_is_the_planned_one(corpus, fixture, target, tmp_path):
    """-o writes exactly what the plan showed, the input untouched, no stray files."""
    root, manifest, _ = corpus
    src = root / manifest["fixtures"][fixture]["fixture"]
    work = tmp_path / "in.yml"
    work.write_bytes(src.read_bytes())
    out = tmp_path / "out" / "harbor.yml"
    out.parent.mkdir()
    result = migrate_file(work, out, target=target)
    assert out.read_text() == plan_migration(work, target=target).output_text
    assert work.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["harbor.yml", "in.yml", "out"]
    assert result.output_path == out


COMMENT = re.compile(r"#(.*)$")


def _comments(text: str) -> list[str]:
    """The text of every comment line and end-of-line comment (ignoring leading #s)."""
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
        elif " #" in line:
            body = line.split(" #", 1)[1].lstrip("#").strip()
        else:
            continue
        if body:
            found.append(body)
    return found


@pytest.mark.conformance
@pytest.mark.parametrize("fixture", sorted({c[0] for c in _cases()}))
def test_every_comment_survives(corpus, fixture):
    root, manifest, _ = corpus
    src = (root / manifest["fixtures"][fixture]["fixture"])
    before = _comments(src.read_text())
    after = _comments(plan_migration(src, target=TARGET).output_text)
    # multiset: each comment of the input is still there, as often as it was
    missing = list(before)
    for body in after:
        for i, want in enumerate(missing):
            if want in body:
                del missing[i]
                break
    assert missing == [], f"{len(missing)} of {len(before)} comments lost: {missing[:5]}"
    assert len(before) > 0


@pytest.mark.conformance
def test_release_files_at_their_own_release_are_left_byte_identical(corpus, tmp_path):
    root, manifest, _ = corpus
    releases = [fx["input_version"] for name, fx in manifest["fixtures"].items()
                if name.startswith("tmpl-") and fx["input_version"] in fx["targets"]]
    assert len(releases) >= 15
    for release in releases:
        src = root / release / "harbor.yml"
        out = tmp_path / f"{release}.yml"
        result = migrate_file(src, out, target=release)
        assert out.read_bytes() == src.read_bytes(), release
        assert not result.changed and result.steps == [] and result.warnings == [], release


@pytest.mark.conformance
@pytest.mark.parametrize("fixture,target", _cases(HALFWAY))
def test_stopping_halfway_then_finishing_gives_the_same_result(corpus, fixture, target, tmp_path):
    """-t X then -t <newest> means the same as going straight to the newest release."""
    root, manifest, _ = corpus
    src = root / manifest["fixtures"][fixture]["fixture"]
    half = tmp_path / "half.yml"
    migrate_file(src, half, target=target)
    assert harbor_reads(plan_migration(half, target=TARGET).output_text) == \
        harbor_reads(plan_migration(src, target=TARGET).output_text)
