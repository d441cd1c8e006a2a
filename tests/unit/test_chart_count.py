"""ChartMuseum's chart packages counted per project (registry.charts): filesystem layout,
nothing followed out of the folder, names escaped in summaries."""
import os

from harbor_upgrade.registry.charts import count_folder


def make(root, files):
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_counts_chart_packages_per_project(tmp_path):
    make(tmp_path, ["library/nginx-1.0.0.tgz", "library/nginx-1.1.0.tgz", "library/index-cache.yaml",
                    "team/app-0.1.0.tgz", "team/app-0.1.0.tgz.prov", "empty/readme.txt"])
    c = count_folder(tmp_path)
    assert c.counted and c.total == 3 and c.projects == {"library": 2, "team": 1}
    assert c.summary().startswith("3 chart packages in 2 projects in ") and "library (2), team (1)" in c.summary()


def test_missing_folder_is_zero_and_symlinks_are_not_followed(tmp_path):
    assert count_folder(tmp_path / "nope").counted and count_folder(tmp_path / "nope").total == 0
    outside = tmp_path / "outside"
    make(outside, ["p/a-1.tgz"])
    charts = tmp_path / "charts"
    charts.mkdir()
    os.symlink(outside / "p", charts / "linked")
    os.symlink(outside / "p" / "a-1.tgz", (charts / "real").mkdir() or charts / "real" / "b-1.tgz")
    c = count_folder(charts)
    assert c.total == 0 and "no chart packages" in c.summary()
    link = tmp_path / "link"
    os.symlink(charts, link)
    assert not count_folder(link).counted


def test_project_names_are_escaped(tmp_path):
    make(tmp_path, ["evil\x1b[31m/x-1.tgz"])
    s = count_folder(tmp_path).summary()
    assert "\x1b" not in s and "\\x1b" in s
