"""Rules several release steps share; each step module says which ones it applies.

Every rule is tolerant: a section of the wrong type is left alone (validation reports
it afterwards), a section that is present keeps what the operator wrote, and only what
a release really needs is added — each addition with a note of ours in the file.
"""
from __future__ import annotations

from dataclasses import dataclass

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..document import Document


def add_if_absent(doc: Document, path: tuple, key: str, value: object, note: str, **kw) -> None:
    parent = doc.section(*path)
    if parent is not None and key not in parent and (*path, key) not in doc.gone:
        doc.add(path, key, value, note, **kw)


@dataclass(frozen=True)
class Default:
    """A key a release's harbor.yml always has: added where the file lacks it.

    ``path`` is its section (() for a top-level section); a key inside a section is only
    added when the section is there (sections Harbor leaves out stay out). ``after``: the
    key it follows in Harbor's file, when the operator's file has that one.
    """
    path: tuple
    key: str
    value: object
    note: str
    after: str | None = None


@dataclass(frozen=True)
class Keep:
    """A setting Harbor's own steps from some release on lose, and we keep: said in a note."""
    path: tuple
    key: str
    note: str


def keep(doc: Document, keeps: list[Keep]) -> None:
    for k in keeps:
        parent = doc.section(*k.path)
        if parent is not None and parent.get(k.key) not in (None, ""):
            doc.keep(k.path, k.key, k.note)


def renames(doc: Document, renames: list[tuple[str, tuple, str]]) -> None:
    """Keys a release renamed ((release, path, new name)), given their new name."""
    for release, path, new in renames:
        parent = doc.section(*path[:-1])
        if parent is None or path[-1] not in parent:
            continue
        if new in parent:
            doc.remove(path[:-1], path[-1], f"Harbor {release[:-2]} reads '{new}', which this file has too")
        else:
            doc.rename(path[:-1], path[-1], new, f"Harbor {release[:-2]}'s spelling")


def fill(doc: Document, defaults: list[Default]) -> None:
    for d in defaults:
        parent = doc.section(*d.path)
        # (an empty section is left to Harbor's defaults: https: with every setting commented out)
        if parent is None or (d.path and not parent) or d.key in parent or (*d.path, d.key) in doc.gone:
            continue
        if d.path:
            after = d.after if d.after in parent else list(parent.keys())[-1] if parent else ""
        else:   # a new section: after the one named, else where Harbor's file has it (document.py)
            after = d.after if d.after in parent else None
        doc.add(d.path, d.key, d.value, d.note, after=after)


def usual_defaults(doc: Document, database: tuple[int, int]) -> None:
    """What every step writes when the operator's file has no such section."""
    add_if_absent(doc, (), "harbor_admin_password", "Harbor12345",
                  "initial admin password, used only by a first install")
    add_if_absent(doc, (), "database",
                  {"password": "root123", "max_idle_conns": database[0], "max_open_conns": database[1]},
                  "settings of Harbor's own PostgreSQL, at this release's defaults")
    pool_defaults(doc, database)
    add_if_absent(doc, (), "data_volume", "/data", "where Harbor keeps its data on the host")
    add_if_absent(doc, (), "jobservice", {"max_job_workers": 10}, "job service workers, default")
    add_if_absent(doc, (), "notification", {"webhook_job_max_retry": 10}, "webhook retries, default")
    chart_absolute_url(doc)
    log_defaults(doc)


def in_order(doc: Document, path: tuple, order: tuple[str, ...], defaults: dict, note: str) -> None:
    """Add the ``defaults`` a section lacks, each after the key before it in ``order``."""
    section = doc.section(*path)
    if section is None:
        return
    for i, key in enumerate(order):
        if key in defaults and key not in section:
            before = [k for k in order[:i] if k in section]
            doc.add(path, key, defaults.get(key), note, after=before[-1] if before else "")


def pool_defaults(doc: Document, database: tuple[int, int]) -> None:
    """A database section without its pool sizes gets this release's defaults for them
    (a missing password is not invented: validation reports it)."""
    in_order(doc, ("database",), ("password", "max_idle_conns", "max_open_conns"),
             {"max_idle_conns": database[0], "max_open_conns": database[1]}, "this release's default")


def chart_absolute_url(doc: Document) -> None:
    """Harbor turns absolute chart URLs on only for the exact word 'enabled'."""
    if ("chart",) in doc.gone:
        return
    if not doc.has("chart"):
        doc.add((), "chart", {"absolute_url": "disabled"}, "chart URLs stay relative, the default")
        return
    chart = doc.section("chart")
    if chart is None:
        return
    if "absolute_url" not in chart:
        doc.add(("chart",), "absolute_url", "disabled", "the default")
    elif chart["absolute_url"] not in ("enabled", "disabled"):
        doc.change(("chart",), "absolute_url", "disabled",
                   "Harbor reads anything but 'enabled' as disabled")


LOCAL_LOG = {"rotate_count": 50, "rotate_size": "200M", "location": "/var/log/harbor"}   # Harbor's defaults


def log_defaults(doc: Document) -> None:
    if not doc.has("log"):
        doc.add((), "log", {"level": "info", "local": dict(LOCAL_LOG)}, "log settings, at Harbor's defaults")
        return
    log = doc.section("log")
    if log is None:
        return
    if "level" not in log:
        doc.add(("log",), "level", "info", "the default", after=None)
    if "local" not in log:
        flat = [key for key in LOCAL_LOG if key in log]     # Harbor 1.8's layout: log.location ...
        if not flat:
            doc.add(("log",), "local", dict(LOCAL_LOG), "log rotation on this host, at Harbor's defaults")
            return
        doc.add(("log",), "local", {**LOCAL_LOG, **{key: log[key] for key in flat}},
                "the 1.8 layout's settings, where Harbor 1.9 and later read them")
        for key in flat:
            doc.remove(("log",), key, "moved into log.local")
        doc.warn(f"log.{', log.'.join(flat)} (Harbor 1.8's layout) carried into log.local, "
                 "the only place Harbor 1.9 and later read them")
    # a local section with some settings left out: Harbor's prepare takes its defaults for them
    in_order(doc, ("log", "local"), tuple(LOCAL_LOG), LOCAL_LOG, "the default")


def default_proxy(doc: Document, components: list[str]) -> None:
    """A file without a proxy section gets an empty one, as Harbor's own file has; a proxy
    section names all three proxy settings (empty ones stay empty)."""
    if not doc.has("proxy"):
        doc.add((), "proxy", {"http_proxy": None, "https_proxy": None, "no_proxy": None,
                              "components": list(components)},
                "no proxy configured; components that would use one")
    in_order(doc, ("proxy",), ("http_proxy", "https_proxy", "no_proxy"),
             {"http_proxy": None, "https_proxy": None, "no_proxy": None}, "not set")


def proxy_components(doc: Document) -> CommentedSeq | None:
    proxy = doc.section("proxy")
    if proxy is None or not isinstance(proxy.get("components"), list):
        return None
    return proxy["components"]


def pool_size(section: CommentedMap, key: str) -> int | None:
    value = section.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def trivy_flags(doc: Document) -> None:
    """A trivy section has three switches; an empty one means all three off."""
    if doc.has("trivy") and doc.data["trivy"] is None:
        doc.change((), "trivy", CommentedMap(), "an empty trivy section, filled with the defaults below")
    trivy = doc.section("trivy")
    if trivy is None:
        return
    for flag in ("ignore_unfixed", "skip_update", "insecure"):
        add_if_absent(doc, ("trivy",), flag, False, "default")


def redis_host_port(doc: Document) -> None:
    """Since 2.0, external Redis is one 'host:port' (several for Sentinel), no 'port' key."""
    redis = doc.section("external_redis")
    if redis is None or "port" not in redis:
        return
    host, port = redis.get("host"), redis["port"]
    if isinstance(host, str) and host and port is not None and ":" not in host:
        doc.change(("external_redis",), "host", f"{host}:{port}", "the port moved into host")
        doc.remove(("external_redis",), "port", "host carries the port now")
    elif isinstance(host, str) and ":" in host:
        doc.remove(("external_redis",), "port", "host already names the port")


def redis_indexes(doc: Document, *, clair: bool) -> None:
    """The Redis databases of the components of this release (operator's values kept)."""
    if doc.section("external_redis") is None:
        return
    if clair:
        add_if_absent(doc, ("external_redis",), "clair_db_index", 4, "Redis database of Clair")
    add_if_absent(doc, ("external_redis",), "trivy_db_index", 5, "Redis database of Trivy")
    add_if_absent(doc, ("external_redis",), "idle_timeout_seconds", 30, "idle Redis connections close after this")


def clair_section(doc: Document) -> None:
    """Releases before 2.2 always carry Clair's settings."""
    add_if_absent(doc, (), "clair", {"updaters_interval": 12}, "Clair's update interval in hours (the default)")


def proxy_without_clair(doc: Document, why: str) -> None:
    """From 2.2 on no component is called clair; the steps after it filter it out too."""
    components = proxy_components(doc)
    if components is not None and "clair" in components:
        doc.remove_items(("proxy",), "components", "clair", f"'clair' left this list, {why}")


def since_2_4(doc: Document) -> None:
    """What every step from 2.4 on fills in and filters, as Harbor's templates since 2.4 do."""
    usual_defaults(doc, database=(100, 900))
    trivy_flags(doc)
    trivy = doc.section("trivy")
    if trivy is not None and "timeout" not in trivy:
        after = "ignore_unfixed" if "ignore_unfixed" in trivy else None
        doc.add(("trivy",), "timeout", "5m0s", "how long one scan may take, Harbor 2.4's default", after=after)
    redis_host_port(doc)
    redis_indexes(doc, clair=False)
    proxy_without_clair(doc, "Harbor has had no Clair since 2.2")
    default_proxy(doc, ["core", "jobservice", "trivy"])
