"""Property test: generated harbor.yml files of every release, good and odd.

Whatever the file, `migrate` never raises anything but an operator error, never
modifies its input, leaves no stray file, and when it succeeds writes valid YAML that
passes the target's validation, keeps every comment and unknown key, and is a fixed point.
Files of every release 1.9 ... 2.14 (patch versions too), to targets from 2.4.0 to the newest.
"""
from __future__ import annotations

import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from harbor_upgrade.config import migrate_file, plan_migration
from harbor_upgrade.config.steps import TARGET
from harbor_upgrade.errors import HarborUpgradeError
from harbor_upgrade.versions import Version

VERSIONS = ["1.9.0", "1.10.0", "1.10.3", "2.0.0", "2.1.0", "2.1.1", "2.2.0", "2.3.0", "2.3.4", "2.4.0",
            "2.5.2", "2.6.0", "2.7.4", "2.8.0", "2.9.1", "2.10.0", "2.11.2", "2.12.0", "2.13.5", "2.14.0"]
TARGETS = ["2.4.0", "2.7.0", "2.8.0", "2.9.0", "2.10.0", TARGET]

text = st.one_of(
    st.sampled_from(["plain", "has space", "@at", "pg pass #7", "yes", "20210615", "a: b", "[x", "%p", "", "null"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)
port = st.one_of(st.integers(1, 65535), st.sampled_from([0, 70000, "abc", None]))
maybe = st.booleans()


@st.composite
def sections(draw):
    d: dict = {}
    if draw(st.integers(0, 9)):
        d["hostname"] = draw(st.sampled_from(["reg.example.test", "10.0.0.5"]))
    if draw(maybe):
        d["http"] = {"port": draw(port)}
    if draw(maybe):
        d["https"] = {"port": draw(port), "certificate": "/c.crt", "private_key": "/c.key"}
        if draw(maybe):
            d["https"]["strong_ssl_ciphers"] = draw(maybe)
    if draw(maybe):
        d["internal_tls"] = {"enabled": draw(maybe), "dir": "/etc/harbor/tls/internal"}
        if draw(maybe):
            d["internal_tls"]["strong_ssl_ciphers"] = draw(maybe)
    if draw(maybe):
        d["upload_purging"] = {"enabled": draw(maybe), "age": "72h"} if draw(maybe) else \
            {"enabled": draw(maybe), "age": "72h", "interval": "12h", "dryrun": draw(maybe)}
    if draw(maybe):
        d["cache"] = {"enabled": draw(maybe), "expire_hours": draw(st.integers(1, 48))}
    if draw(maybe):
        d["harbor_admin_password"] = draw(text)
    if draw(maybe):
        db = {"password": draw(text)}
        for key in ("max_idle_conns", "max_open_conns"):
            if draw(maybe):
                db[key] = draw(st.sampled_from([0, 30, 50, 100, 300, 900, 1000, 2000]))
        d["database"] = db
    if draw(maybe):
        d["data_volume"] = draw(st.sampled_from(["/data", "/srv/harbor", "relative/dir"]))
    if draw(maybe):
        driver = draw(st.sampled_from(["filesystem", "s3", "gcs", "weird"]))
        d["storage_service"] = {driver: {"rootdirectory": "/storage", "opt": draw(text)},
                                "redirect": {draw(st.sampled_from(["disabled", "disable"])): draw(maybe)}}
    if draw(maybe):
        d["clair"] = {"updaters_interval": draw(st.integers(0, 48))}
    trivy = draw(st.sampled_from(["absent", "null", "partial", "full"]))
    if trivy == "null":
        d["trivy"] = None
    elif trivy != "absent":
        d["trivy"] = {"ignore_unfixed": draw(maybe)} if trivy == "partial" else \
            {"ignore_unfixed": draw(maybe), "skip_update": draw(maybe), "insecure": draw(maybe),
             "github_token": draw(text)}
    if draw(maybe):
        d["chart"] = {"absolute_url": draw(st.sampled_from(["enabled", "disabled", "Enabled", True]))}
    if draw(maybe):
        d["log"] = {"level": draw(st.sampled_from(["info", "debug", "loud"])),
                    "local": {"rotate_count": 50, "rotate_size": "200M", "location": "/var/log/harbor"}}
    if draw(maybe):
        redis = {"host": draw(st.sampled_from(["redis", "redis:6379", "s1:26379,s2:26379"])),
                 "password": draw(st.one_of(st.none(), text)),
                 "registry_db_index": 1, "jobservice_db_index": 2, "chartmuseum_db_index": 3}
        if draw(maybe):
            redis["port"] = 6379
        if draw(maybe):
            redis["sentinel_master_set"] = "mymaster"
        d["external_redis"] = redis
    if draw(maybe):
        comps = draw(st.one_of(st.none(), st.lists(st.sampled_from(["core", "jobservice", "clair", "trivy"]),
                                                   unique=True)))
        d["proxy"] = {"http_proxy": None, "https_proxy": None, "no_proxy": None, "components": comps}
    if draw(maybe):
        d["x_ours"] = {"note": draw(text), "n": draw(st.integers())}
    # now and then a section, or a setting inside one, of a type no release expects
    for _ in range(draw(st.integers(0, 2))):
        keys = sorted(k for k in d if k != "x_ours")
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        odd = draw(st.sampled_from([None, [], "text", 5, {}, [1, 2], {"x": None}, True]))
        if isinstance(d[key], dict) and d[key] and draw(maybe):
            d[key][draw(st.sampled_from(sorted(d[key])))] = odd
        else:
            d[key] = odd
    return d


@st.composite
def harbor_files(draw):
    data = CommentedMap(draw(sections()))
    data["_version"] = draw(st.sampled_from(VERSIONS))
    target = draw(st.sampled_from(TARGETS))
    if Version.parse(data["_version"]) > Version.parse(target):
        target = TARGET
    order = draw(st.permutations(list(data.keys())))
    doc = CommentedMap((k, data[k]) for k in order)
    comments = []
    for i, key in enumerate(doc.keys()):
        if draw(st.integers(0, 2)) == 0:
            comments.append(f"before {key} {i}")
            doc.yaml_set_comment_before_after_key(key, before=comments[-1])
        if isinstance(doc[key], dict) and doc[key]:
            doc[key] = section = CommentedMap(doc[key])
            for j, sub in enumerate(section):
                if draw(st.integers(0, 2)) == 0:
                    comments.append(f"on {key}.{sub} {j}")
                    section.yaml_add_eol_comment(comments[-1], sub)
    buf = io.StringIO()
    y = YAML(typ="rt")
    y.indent(mapping=2, sequence=4, offset=2)
    y.dump(doc, buf)
    return buf.getvalue(), comments, target


# 60 examples (was 120): the fixed corpora cover the files of each release exactly -- the 450 manifest
# cases of tests/conformance/test_config_conformance.py (every fixture to every target) and the
# hand-made hostile files of test_harbor_yml_hostile.py -- so this test is left the odd combinations.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(case=harbor_files())
def test_migrate_never_crashes_and_output_is_valid(tmp_path_factory, case):
    content, comments, target = case
    folder: Path = tmp_path_factory.mktemp("prop")
    src = folder / "harbor.yml"
    src.write_text(content)
    out = folder / "out.yml"
    try:
        result = migrate_file(src, out, target=target)
    except HarborUpgradeError as err:
        assert err.message and str(src) in err.message
        assert not out.exists()
    else:
        text = out.read_text()
        data = YAML(typ="safe", pure=True).load(text)
        assert isinstance(data, dict) and data["_version"] in (target, source_version(content))
        again = plan_migration(out, target=target)        # valid, and already at the target
        assert again.steps == [] and not again.changed
        for comment in comments:
            assert comment in text
        source = YAML(typ="safe", pure=True).load(content)
        if "x_ours" in source:
            assert data["x_ours"] == source["x_ours"]
        assert result.output_path == out
    assert src.read_text() == content
    assert sorted(p.name for p in folder.iterdir()) in (["harbor.yml"], ["harbor.yml", "out.yml"])


def source_version(content: str) -> str:
    return str(YAML(typ="safe", pure=True).load(content)["_version"])
