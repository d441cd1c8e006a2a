"""What crossing a release that removes a component costs (upgrade.removed): derived from the
database step modules' ``removes``; the refusal to cross ChartMuseum's removal with charts left."""
import pytest

from harbor_upgrade import versions
from harbor_upgrade.errors import ChartsInChartmuseum, ExitStatus
from harbor_upgrade.registry.charts import ChartCount
from harbor_upgrade.upgrade.removed import Removal, refuse_dropping_charts, removed_after, removed_between


def test_removals_come_from_the_release_modules():
    assert removed_between("1.10.0", "2.4.0") == {"clair": "2.2.0"}
    assert removed_between("2.2.0", "2.4.0") == {}
    assert removed_between(None, versions.TARGET) == {}
    if "2.9.0" in versions.RELEASES:
        assert removed_between("2.4.0", "2.8.0") == {"chartmuseum": "2.8.0"}
        assert removed_between("2.4.0", "2.15.0") == {"chartmuseum": "2.8.0", "notary": "2.9.0"}
        assert removed_after("2.7.0") == {"chartmuseum": "2.8.0", "notary": "2.9.0"}
        assert removed_after("2.9.0") == {}


def chartmuseum(count: ChartCount, in_use: bool = True) -> Removal:
    return Removal("chartmuseum", "2.8.0", in_use, "charts", "move them", count)


def test_charts_left_in_chartmuseum_refuse_the_run_unless_confirmed():
    full = ChartCount("/data/chart_storage", True, {"library": 2, "team": 1})
    with pytest.raises(ChartsInChartmuseum) as e:
        refuse_dropping_charts([chartmuseum(full)], confirmed=False)
    assert e.value.exit_code == ExitStatus.UNSAFE_STATE and e.value.reference == "chartmuseum-charts"
    assert "3 chart packages in 2 projects" in e.value.message and "library (2), team (1)" in e.value.message
    assert "--drop-chartmuseum" in e.value.hint
    refuse_dropping_charts([chartmuseum(full)], confirmed=True)
    refuse_dropping_charts([chartmuseum(ChartCount("/data/chart_storage", True))], confirmed=False)


def test_a_storage_that_cannot_be_counted_refuses_only_when_chartmuseum_is_in_use():
    unknown = ChartCount("the azure storage", False, problem="not read by this tool")
    with pytest.raises(ChartsInChartmuseum):
        refuse_dropping_charts([chartmuseum(unknown, in_use=True)], confirmed=False)
    refuse_dropping_charts([chartmuseum(unknown, in_use=False)], confirmed=False)
