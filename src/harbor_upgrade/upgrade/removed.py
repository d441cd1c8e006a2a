"""Components a release removes (declared by the database step modules: ``removes``), what
the operator loses when the upgrade crosses that release, and what to do before.

ChartMuseum (gone in 2.8) is the one that holds data of its own: its charts stop being
served. ``plan`` counts them per project; ``run`` refuses to cross 2.8 while the chart
storage holds any unless the operator confirms with ``--drop-chartmuseum``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import versions
from ..errors import ChartsInChartmuseum
from ..installation import Installation
from ..registry import parse_s3_spec
from ..registry.charts import ChartCount, count_folder, count_s3
from ..versions import Version

COMPONENT_NAMES = {"clair": "Clair", "chartmuseum": "ChartMuseum", "notary": "Notary"}

# component -> (what the operator loses, what to do before the hop)
LOSSES: dict[str, tuple[str, str]] = {
    "clair": ("Clair and its scan reports (the run removes its registration; Trivy becomes the default scanner)",
              "nothing to do; scan every artifact with Trivy once Harbor is up"),
    "chartmuseum": ("ChartMuseum: the Helm charts it serves (helm repo .../chartrepo/<project>, the charts tab), "
                    "the chart permissions of roles, chart events of webhook policies and chart filters of "
                    "replication rules (those rules are disabled)",
                    "push every chart as an OCI artifact (helm push CHART.tgz oci://HOST/PROJECT) and point the "
                    "helm clients at oci://; the run refuses to cross this release while ChartMuseum's storage "
                    "holds charts unless --drop-chartmuseum is given"),
    "notary": ("Notary: content-trust signatures are no longer served or enforced, and the notary databases are "
               "no longer made (the enable_content_trust project settings stay, unused)",
               "sign the images with cosign (or notation) and turn on cosign enforcement in the projects that "
               "enforced content trust"),
}


def _removals(after: str, upto: str | None) -> dict[str, str]:
    """component -> the release that removes it, for the releases after ``after`` up to ``upto``."""
    out = {}
    for release, components in versions.REMOVED_COMPONENTS.items():
        v = Version.parse(release)
        if v > Version.parse(after) and (upto is None or v <= Version.parse(upto)):
            out.update({c: release for c in components})
    return out


def removed_between(start: str | None, target: str) -> dict[str, str]:
    """The components the upgrade from start to target crosses the removal of."""
    return _removals(start, target) if start else {}


def removed_after(target: str) -> dict[str, str]:
    """The components a release after target removes (still there at target)."""
    return _removals(target, None)


def count_charts(inst: Installation) -> ChartCount:
    """The chart packages in ChartMuseum's storage (read only)."""
    if inst.storage_kind == "filesystem":
        return count_folder(Path(inst.data_volume) / "chart_storage")
    if inst.storage_kind == "s3":
        bucket, root = parse_s3_spec(inst.storage)
        keys = inst.s3_keys
        return count_s3(bucket, root, endpoint_url=inst.s3_endpoint, region=inst.s3_region,
                        access_key=keys[0] if keys else None, secret_key=keys[1] if keys else None)
    return ChartCount(f"the {inst.storage_kind} storage", False,
                      problem=f"ChartMuseum's {inst.storage_kind} storage is not read by this tool")


@dataclass
class Removal:
    component: str
    release: str
    in_use: bool
    lost: str
    before: str
    charts: ChartCount | None = None

    def to_dict(self) -> dict:
        return {"component": COMPONENT_NAMES[self.component], "release": self.release, "in_use": self.in_use,
                "lost": self.lost, "before": self.before,
                "charts": self.charts.to_dict() if self.charts else None}

    def text(self) -> str:
        head = (f"{COMPONENT_NAMES[self.component]} is removed in {self.release}"
                + ("" if self.in_use else " (not in use here)"))
        charts = f" [{self.charts.summary()}]" if self.charts else ""
        return f"{head}: lost: {self.lost}{charts}. Before: {self.before}."


def removals(inst: Installation, start: str | None, target: str, charts: ChartCount | None = None) -> list[Removal]:
    """What the upgrade from start to target removes, with ChartMuseum's charts counted."""
    out = []
    for component, release in sorted(removed_between(start, target).items(), key=lambda kv: Version.parse(kv[1])):
        lost, before = LOSSES[component]
        count = None
        if component == "chartmuseum":
            count = charts if charts is not None else count_charts(inst)
        in_use = bool(inst.components.get(component)) or bool(count and count.total)
        out.append(Removal(component, release, in_use, lost, before, count))
    return out


def refuse_dropping_charts(removal_list: list[Removal], confirmed: bool) -> None:
    """ChartsInChartmuseum when the upgrade crosses ChartMuseum's removal while its storage
    holds charts (or cannot be read while ChartMuseum is in use), unless confirmed."""
    if confirmed:
        return
    for r in removal_list:
        if r.component != "chartmuseum" or r.charts is None:
            continue
        if r.charts.total or (not r.charts.counted and r.in_use):
            what = r.charts.summary()
            raise ChartsInChartmuseum(
                f"the upgrade crosses {r.release}, which removes ChartMuseum, and {what}: they would no longer be "
                "served; nothing was changed",
                hint="push them as OCI artifacts first (helm push CHART.tgz oci://HOST/PROJECT), or run again with "
                     "--drop-chartmuseum to leave them behind (the files stay in storage), or stop before with "
                     "--to " + previous_release(r.release))


def previous_release(release: str) -> str:
    chain = versions.RELEASES
    i = chain.index(release) if release in chain else len(chain)
    return chain[i - 1].rsplit(".", 1)[0]
