"""The one typed, read-only view of a harbor.yml of any release (1.9.0 ... the target).

The only reader of harbor.yml outside `migrate` (which reads the same way): installation
detection (plan, run), backup, the artifact backfill. The file is read by the bounded
reader (config/reader.py); the settings read here are checked for their type, and a wrong
one is named with its key and line (``storage_service: banana``). Every secret read here
(passwords, tokens, keys) is registered with harbor_upgrade.secrets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import InvalidInput, UnsupportedVersion
from .document import key_line
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
    version: str | None                  # _version as written (None: the file has none)
    release: str | None                  # the release line it belongs to ('2.1.1' -> '2.1.0'); None if unknown
    hostname: str | None
    data_volume: str
    storage: StorageConfig
    database: DatabaseConfig
    components: Components
    data: dict[str, Any]                 # the whole file as plain data (holds secrets: never print it)
    release_error: str | None = None     # why the release is unknown (read with require_release=False)

    @property
    def registry_storage_path(self) -> Path | None:
        """Host folder of the registry's filesystem storage (holds docker/registry/v2), or None
        for object storage. A rootdirectory below Harbor's mount (/storage/sub) is that folder
        below <data_volume>/registry; one elsewhere is not mounted by Harbor, so the data is
        still in <data_volume>/registry."""
        if self.storage.driver != "filesystem":
            return None
        return Path(storage_spec(self.data, self.data_volume)[0])

    @property
    def storage_spec(self) -> tuple[str, str, str | None, str | None]:
        """(spec, driver, S3 endpoint, S3 region): spec is a host folder, s3://bucket[/root], or 'azure:' ..."""
        return storage_spec(self.data, self.data_volume)

    @property
    def s3_keys(self) -> tuple[str, str] | None:
        """harbor.yml's S3 accesskey and secretkey, when both are set."""
        o = self.storage.options
        if self.storage.driver == "s3" and o.get("accesskey") and o.get("secretkey"):
            return str(o["accesskey"]), str(o["secretkey"])
        return None

    @property
    def external_dsn(self) -> str | None:
        """A DSN for external_database.harbor (None when the database is Harbor's own)."""
        return external_dsn(self.data)

    @property
    def internal_tls_dir(self) -> str | None:
        tls = _map(self.data.get("internal_tls"))
        return str(tls.get("dir") or "/etc/harbor/tls/internal") if tls.get("enabled") else None


def storage_spec(data: dict, data_volume: str) -> tuple[str, str, str | None, str | None]:
    """(spec, kind, s3 endpoint, s3 region) of the registry storage harbor.yml configures."""
    service = _map(data.get("storage_service"))
    s3 = service.get("s3")
    if isinstance(s3, dict):
        root = str(s3.get("rootdirectory") or "").strip("/")
        spec = f"s3://{s3.get('bucket')}" + (f"/{root}" if root else "")
        return spec, "s3", _text(s3.get("regionendpoint")), _text(s3.get("region"))
    for kind in ("azure", "gcs", "swift", "oss"):
        if kind in service:
            return f"{kind}:", kind, None, None
    root = str(_map(service.get("filesystem")).get("rootdirectory") or REGISTRY_CONTAINER_ROOT)
    inside = os.path.relpath(root, REGISTRY_CONTAINER_ROOT) if root.startswith(REGISTRY_CONTAINER_ROOT) else None
    host = Path(data_volume) / "registry"
    if inside and inside != ".":
        host = host / inside
    return str(host), "filesystem", None, None


def external_dsn(data: dict) -> str | None:
    """A DSN for harbor.yml's external_database.harbor section (None when the database is Harbor's own)."""
    ext = _map(_map(data.get("external_database")).get("harbor"))
    if not ext.get("host"):
        return None
    user = quote(str(ext.get("username") or "postgres"), safe="")
    pw = ext.get("password")
    auth = user + (":" + quote(str(pw), safe="") if pw else "")
    sslmode = ext.get("ssl_mode") or "disable"
    return (f"postgresql://{auth}@{ext['host']}:{ext.get('port') or 5432}/"
            f"{ext.get('db_name') or 'registry'}?sslmode={sslmode}")


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
        chartmuseum=None,     # installer flag; `chart.absolute_url` is in every 2.x file, used or not
        internal_tls=bool(_map(data.get("internal_tls")).get("enabled")),
        external_redis=redis_cfg,
    )


# Settings the view reads, and what they must be. A wrong type is refused with its key and line
# (Harbor's prepare would fail on it too, with a Python traceback).
MAPPING, SCALAR, PORT_SHAPE = "a mapping of settings", "a single value", "a port number"
_SHAPES: dict[tuple[str, ...], str] = {
    ("hostname",): SCALAR, ("data_volume",): SCALAR, ("_version",): SCALAR,
    ("storage_service",): MAPPING, ("storage_service", "*"): MAPPING, ("storage_service", "ca_bundle"): SCALAR,
    **{("storage_service", "s3", k): SCALAR
       for k in ("bucket", "rootdirectory", "region", "regionendpoint", "accesskey", "secretkey")},
    ("storage_service", "filesystem", "rootdirectory"): SCALAR,
    ("database",): MAPPING, ("external_database",): MAPPING, ("external_database", "*"): MAPPING,
    ("external_database", "*", "*"): SCALAR, ("external_database", "*", "port"): PORT_SHAPE,
    ("external_redis",): MAPPING, ("external_redis", "*"): SCALAR,
    ("internal_tls",): MAPPING, ("internal_tls", "*"): SCALAR, ("chart",): MAPPING,
}


def check_types(doc: CommentedMap, path: Path) -> None:
    """Refuse a setting this view reads whose value has the wrong shape, naming key and line."""
    def walk(node: object, keys: tuple[str, ...]) -> None:
        if not isinstance(node, CommentedMap):
            return
        for key, value in node.items():
            here = keys + (str(key),)
            shape = _shape(here)
            if shape is None or value is None:
                continue
            ok = (isinstance(value, CommentedMap) if shape == MAPPING else
                  _is_port(value) if shape == PORT_SHAPE else not isinstance(value, (CommentedMap, CommentedSeq)))
            if not ok:
                line = key_line(node, key)
                raise InvalidInput(f"{path}{f', line {line}' if line else ''}: {'.'.join(here)}: must be {shape}, "
                                   f"not {_describe(value, here)}",
                                   hint=f"fix {'.'.join(here)} in {path} (see Harbor's harbor.yml template)",
                                   reference="harbor-yml-invalid")
            walk(value, here)
    walk(doc, ())


def _shape(keys: tuple[str, ...]) -> str | None:
    """The shape of the most specific pattern matching these keys ('*' matches any key)."""
    matches = [p for p in _SHAPES if len(p) == len(keys) and all(a in ("*", k) for a, k in zip(p, keys, strict=False))]
    return _SHAPES[min(matches, key=lambda p: p.count("*"))] if matches else None


def _is_port(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 < value < 65536
    return isinstance(value, str) and value.strip().isdigit() and 0 < int(value.strip()) < 65536


def _describe(value: object, keys: tuple[str, ...]) -> str:
    from ..secrets import is_secret_key
    if isinstance(value, CommentedMap):
        return "a mapping"
    if isinstance(value, CommentedSeq):
        return "a list"
    kind = {bool: "true/false", int: "a number", float: "a number", str: "text"}.get(type(value), type(value).__name__)
    if is_secret_key(keys[-1]):
        return kind
    shown = str(value)
    if kind == "text":
        return f"{kind} ({shown[:40] + '...' if len(shown) > 40 else shown!r})"
    return f"{kind} ({shown[:40]})"


def read_harbor_yml(path: str | os.PathLike, *, require_release: bool = True) -> HarborConfig:
    """Read a harbor.yml of any supported release; errors as for `migrate` (bad file, version).

    With require_release=False (installation detection: the plan reports an unknown release as
    a failed check) a missing or unsupported _version leaves release None and says why in
    release_error; everything else is refused as always."""
    source = read_source(path, hint="pass the harbor.yml of the installation")
    doc, _ = parse(source)
    register_secrets(doc)
    check_types(doc, source.path)
    version: str | None = None
    release: str | None = None
    release_error: str | None = None
    try:
        version, release = input_version(doc, source.path)
    except (UnsupportedVersion, InvalidInput) as err:
        if require_release:
            raise
        version = None if doc.get("_version") is None else str(doc.get("_version"))
        release_error = err.message
    data = {k: _plain(v) for k, v in doc.items()}   # _plain(doc), typed: parse gives a mapping
    return HarborConfig(
        path=source.path, version=version, release=release, release_error=release_error,
        hostname=_text(data.get("hostname")),
        data_volume=str(data.get("data_volume") or "/data"),
        storage=_storage(data), database=_database(data), components=_components(data), data=data,
    )
