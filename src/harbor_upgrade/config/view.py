"""A read-only view of a harbor.yml of any supported release (1.9.0 ... 2.4.x).

For the planner, the demo and the artifact backfill: where the data is, which storage
and database Harbor uses, and which optional components the file configures. Every
secret read here (passwords, tokens, keys) is registered with harbor_upgrade.secrets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runner import input_version, parse, read_source, register_secrets

# Harbor mounts <data_volume>/registry as /storage in the registry container, and
# /storage is the filesystem driver's rootdirectory unless the file sets another.
REGISTRY_CONTAINER_ROOT = "/storage"


@dataclass(frozen=True)
class StorageConfig:
    driver: str                          # 'filesystem' when the file has no storage_service
    options: dict[str, Any]              # the driver's options as written (rootdirectory, bucket, region,
                                         # regionendpoint, accesskey, secretkey, ...)
    ca_bundle: str | None = None
    redirect_disabled: bool | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    """Harbor's own database: the bundled PostgreSQL, or external_database.harbor."""
    external: bool
    host: str
    port: int
    username: str
    password: str | None
    db_name: str
    ssl_mode: str
    max_idle_conns: int | None
    max_open_conns: int | None
    others: dict[str, dict[str, Any]] = field(default_factory=dict)  # clair / notary_* of external_database


@dataclass(frozen=True)
class RedisConfig:
    host: str                            # as written: 'h:p', 'h1:p1,h2:p2' (Sentinel), or 'h' (<= 2.0)
    port: int | None                     # only 1.x / 2.0 files have a separate port
    password: str | None
    sentinel_master_set: str | None
    db_indexes: dict[str, int]           # registry_db_index, jobservice_db_index, ...


@dataclass(frozen=True)
class Components:
    """What harbor.yml configures. Notary and ChartMuseum are chosen by installer flags
    (install.sh --with-notary / --with-chartmuseum), not by harbor.yml: their fields are
    True only where the file shows a footprint of them, else None (the file cannot tell)."""
    clair: bool
    trivy: bool
    notary: bool | None
    chartmuseum: bool | None
    internal_tls: bool
    external_redis: RedisConfig | None


@dataclass(frozen=True)
class HarborConfig:
    path: Path
    version: str                         # _version as written
    release: str                         # the release line it belongs to ('2.1.1' -> '2.1.0')
    hostname: str | None
    data_volume: str
    storage: StorageConfig
    database: DatabaseConfig
    components: Components
    data: dict[str, Any]                 # the whole file as plain data (holds secrets: never print it)

    @property
    def registry_storage_path(self) -> Path | None:
        """Host folder of the registry's filesystem storage (holds docker/registry/v2), or None
        for object storage or a rootdirectory that is not Harbor's mount."""
        if self.storage.driver != "filesystem":
            return None
        root = self.storage.options.get("rootdirectory") or REGISTRY_CONTAINER_ROOT
        if str(root).rstrip("/") != REGISTRY_CONTAINER_ROOT:
            return None
        return Path(self.data_volume) / "registry"


def _plain(node: object) -> object:
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _map(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _storage(data: dict) -> StorageConfig:
    service = _map(data.get("storage_service"))
    drivers = [k for k in service if k not in ("ca_bundle", "redirect")]
    if not drivers:
        return StorageConfig("filesystem", {}, service.get("ca_bundle"), None)
    driver = drivers[0]
    redirect = _map(service.get("redirect"))
    # Harbor 2.8 spells it 'disable' (and still reads 'disabled')
    return StorageConfig(driver, dict(_map(service.get(driver))), service.get("ca_bundle"),
                         redirect.get("disabled", redirect.get("disable")))


def _database(data: dict) -> DatabaseConfig:
    external = _map(data.get("external_database"))
    own = _map(data.get("database"))
    if external.get("harbor"):
        h = _map(external["harbor"])
        return DatabaseConfig(True, str(h.get("host", "")), _port(h.get("port")), str(h.get("username", "")),
                              _text(h.get("password")), str(h.get("db_name", "registry")),
                              str(h.get("ssl_mode", "disable")), h.get("max_idle_conns"), h.get("max_open_conns"),
                              {k: dict(_map(v)) for k, v in external.items() if k != "harbor"})
    return DatabaseConfig(False, "postgresql", 5432, "postgres", _text(own.get("password")), "registry",
                          "disable", own.get("max_idle_conns"), own.get("max_open_conns"))


def _port(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else 5432


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _components(data: dict) -> Components:
    redis = _map(data.get("external_redis"))
    external = _map(data.get("external_database"))
    redis_cfg = None
    if redis:
        redis_cfg = RedisConfig(
            str(redis.get("host", "")), redis.get("port"), _text(redis.get("password")),
            _text(redis.get("sentinel_master_set")),
            {k: v for k, v in redis.items() if k.endswith("_db_index") and isinstance(v, int)})
    return Components(
        clair="clair" in data,
        trivy="trivy" in data,
        notary=True if ("notary_signer" in external or "notary_server" in external) else None,
        chartmuseum=True if _map(data.get("chart")).get("absolute_url") == "enabled" else None,
        internal_tls=_map(data.get("internal_tls")).get("enabled") is True,
        external_redis=redis_cfg,
    )


def read_harbor_yml(path: str | os.PathLike) -> HarborConfig:
    """Read a harbor.yml of any supported release; errors as for `migrate` (bad file, version)."""
    source = read_source(path)
    doc, _ = parse(source)
    register_secrets(doc)
    version, release = input_version(doc, source.path)
    data = _plain(doc)
    return HarborConfig(
        path=source.path, version=version, release=release,
        hostname=_text(data.get("hostname")),
        data_volume=str(data.get("data_volume") or "/data"),
        storage=_storage(data), database=_database(data), components=_components(data), data=data,
    )
