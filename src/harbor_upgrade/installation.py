"""Find and describe an installed Harbor: harbor.yml, data volume, database, storage, components.

Everything here only reads. ``detect`` gathers what the plan and the preflight checks need:
the release named by harbor.yml's ``_version``, the schema and data versions in the
database, the PostgreSQL major of the data folder, the storage backend, and which optional
components are in use (Clair, Trivy, Notary, ChartMuseum, internal TLS, external
database or Redis). Secret values met on the way are registered for masking.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .compose.detect import detect_compose
from .errors import InvalidInput, UnsupportedVersion
from .secrets import is_secret_key, mask_dsn, register, register_dsn
from .versions import release_line, release_of_schema

# Where Harbor's containers mount the registry storage (``${data_volume}/registry:/storage``).
REGISTRY_MOUNT = "/storage"
# Service names in Harbor's generated docker-compose.yml, per optional component.
COMPOSE_SERVICES = {
    "clair": ("clair", "clair-adapter"),
    "trivy": ("trivy-adapter",),
    "notary": ("notary-server", "notary-signer"),
    "chartmuseum": ("chartmuseum",),
}


@dataclass
class DatabaseState:
    """What the database says about itself (all read-only queries)."""
    schema_version: int | None
    dirty: bool
    data_version: int | None
    release: str | None          # release line of the schema version
    server_version: str
    size_bytes: int
    other_clients: list[str]     # application names / addresses of other sessions on this database
    scanners: list[dict]         # name, is_default, immutable


@dataclass
class Installation:
    harbor_yml: str
    harbor_dir: str
    config_version: str | None    # harbor.yml _version as written
    release: str | None           # its release line ('2.1.1' -> '2.1.0'); None when unsupported
    release_error: str | None
    hostname: str | None
    data_volume: str
    storage: str                  # a storage spec: a folder, or s3://bucket/root
    storage_kind: str
    s3_endpoint: str | None
    s3_region: str | None
    dsn: str | None               # never shown: use dsn_masked
    dsn_masked: str | None
    components: dict[str, bool] = field(default_factory=dict)
    internal_tls_dir: str | None = None
    pg_major_on_disk: int | None = None
    pg_data_dir: str | None = None
    database: DatabaseState | None = None
    s3_keys: tuple[str, str] | None = field(default=None, repr=False)  # harbor.yml's accesskey, secretkey
    compose: dict | None = None   # the Docker Compose installation beside harbor.yml (compose.detect)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("dsn")
        d.pop("s3_keys")
        return d


def load_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            doc = YAML(typ="safe", pure=True).load(f)
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist", hint="pass the harbor.yml of the installation with --harbor-yml",
                           reference="harbor-yml-missing") from None
    except YAMLError as e:
        raise InvalidInput(f"{path} is not valid YAML: {e}", reference="harbor-yml-invalid") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path} does not hold a mapping of settings", reference="harbor-yml-invalid")
    register_secrets(doc)
    return doc


def register_secrets(node: object) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if is_secret_key(k) and v is not None and not isinstance(v, (dict, list)):
                register(v)
            register_secrets(v)
    elif isinstance(node, list):
        for v in node:
            register_secrets(v)


def storage_of(doc: dict, data_volume: str) -> tuple[str, str, str | None, str | None]:
    """(spec, kind, s3 endpoint, s3 region) of the registry storage harbor.yml configures."""
    service = doc.get("storage_service") or {}
    s3 = service.get("s3")
    if isinstance(s3, dict):
        root = str(s3.get("rootdirectory") or "").strip("/")
        spec = f"s3://{s3.get('bucket')}" + (f"/{root}" if root else "")
        return spec, "s3", s3.get("regionendpoint"), s3.get("region")
    for kind in ("azure", "gcs", "swift", "oss"):
        if kind in service:
            return f"{kind}:", kind, None, None
    fs = service.get("filesystem") or {}
    root = str(fs.get("rootdirectory") or REGISTRY_MOUNT)
    inside = os.path.relpath(root, REGISTRY_MOUNT) if root.startswith(REGISTRY_MOUNT) else None
    host = Path(data_volume) / "registry"
    if inside and inside != ".":
        host = host / inside
    return str(host), "filesystem", None, None


def dsn_of_external(doc: dict) -> str | None:
    """A DSN for harbor.yml's external_database.harbor section (None when the database is Harbor's own)."""
    ext = (doc.get("external_database") or {}).get("harbor")
    if not isinstance(ext, dict) or not ext.get("host"):
        return None
    from urllib.parse import quote
    user = quote(str(ext.get("username") or "postgres"), safe="")
    pw = ext.get("password")
    auth = user + (":" + quote(str(pw), safe="") if pw else "")
    sslmode = ext.get("ssl_mode") or "disable"
    return (f"postgresql://{auth}@{ext['host']}:{ext.get('port') or 5432}/"
            f"{ext.get('db_name') or 'registry'}?sslmode={sslmode}")


def components_of(doc: dict, harbor_dir: Path, db: DatabaseState | None,
                  services: set[str] | None = None) -> dict[str, bool]:
    """Optional components in use: from the services of the generated docker-compose.yml when
    there is one, else from the generated common/config folders, plus what the database registered."""
    services = services or set()
    configs = harbor_dir / "common" / "config"
    folders = {"clair": "clair", "trivy": "trivy-adapter", "notary": "notary", "chartmuseum": "chartserver"}
    out = {}
    for comp, names in COMPOSE_SERVICES.items():
        out[comp] = bool(services & set(names)) or (configs / folders[comp]).is_dir()
    if db is not None:
        names = {s["name"].split("-")[0] for s in db.scanners if s["immutable"]}
        out["clair"] = out["clair"] or "Clair" in names
        out["trivy"] = out["trivy"] or "Trivy" in names
    out["internal_tls"] = bool((doc.get("internal_tls") or {}).get("enabled"))
    out["external_database"] = bool((doc.get("external_database") or {}).get("harbor"))
    out["external_redis"] = bool(doc.get("external_redis"))
    return out


def pg_on_disk(data_volume: str) -> tuple[int | None, str | None]:
    """PostgreSQL major of ``<data_volume>/database``: 9.6 data sits at its top, 13 in pg13/ (Harbor 2.3)."""
    base = Path(data_volume) / "database"
    for d in (base / "pg13", base):
        f = d / "PG_VERSION"
        try:
            text = f.read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:
            return None, str(d)
        major = text.split(".")[0] if not text.startswith("9.") else text
        return (int(major) if major.isdigit() else None), str(d)
    return None, None


def database_state(dsn: str) -> DatabaseState:
    from .db import ledger
    from .db.connection import connect
    conn = connect(dsn, hint="check --dsn; Harbor's own database listens inside its container only")
    with conn:
        cur = conn.cursor()
        state = ledger.read_state(conn)
        version, dirty, data_version = state.version, state.dirty, state.data_version
        tables = {r[0] for r in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
        server = cur.execute("SHOW server_version").fetchone()[0]
        size = cur.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        others = [f"{r[0] or 'unnamed client'} from {r[1] or 'local socket'}" for r in cur.execute(
            "SELECT application_name, client_addr::text FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")]
        scanners = []
        if "scanner_registration" in tables:
            scanners = [{"name": r[0], "is_default": r[1], "immutable": r[2]} for r in cur.execute(
                "SELECT name, is_default, immutable FROM scanner_registration ORDER BY id")]
    return DatabaseState(version, dirty, data_version, release_of_schema(version) if version else None,
                         server, int(size), others, scanners)


def s3_keys_of(doc: dict) -> tuple[str, str] | None:
    s3 = (doc.get("storage_service") or {}).get("s3")
    if isinstance(s3, dict) and s3.get("accesskey") and s3.get("secretkey"):
        return str(s3["accesskey"]), str(s3["secretkey"])
    return None


def detect(harbor_yml: str | os.PathLike, dsn: str | None = None, storage: str | None = None,
           s3_endpoint: str | None = None, s3_region: str | None = None) -> Installation:
    """Describe the installation whose harbor.yml is given (the database too when reachable).
    storage, s3_endpoint and s3_region override what harbor.yml says."""
    path = Path(harbor_yml).resolve()
    doc = load_yaml(path)
    raw_version = doc.get("_version")
    release, release_error = None, None
    try:
        release = release_line(raw_version, where=f"{path}: _version: ")
    except UnsupportedVersion as e:
        release_error = e.message
    data_volume = str(doc.get("data_volume") or "/data")
    spec, kind, endpoint, region = storage_of(doc, data_volume)
    if storage:
        spec = storage
        kind = "s3" if storage.startswith("s3://") else "filesystem"
    endpoint, region = s3_endpoint or endpoint, s3_region or region
    dsn = dsn or dsn_of_external(doc)
    if dsn:
        register_dsn(dsn)
    db = database_state(dsn) if dsn else None
    major, pgdir = pg_on_disk(data_volume)
    tls = doc.get("internal_tls") or {}
    compose = detect_compose(path.parent, doc)
    return Installation(
        harbor_yml=str(path), harbor_dir=str(path.parent), config_version=None if raw_version is None else str(raw_version),
        release=release, release_error=release_error, hostname=doc.get("hostname"), data_volume=data_volume,
        storage=spec, storage_kind=kind, s3_endpoint=endpoint, s3_region=region,
        dsn=dsn, dsn_masked=mask_dsn(dsn) if dsn else None,
        components=components_of(doc, path.parent, db, set(compose.services) if compose else None),
        internal_tls_dir=str(tls.get("dir") or "/etc/harbor/tls/internal") if tls.get("enabled") else None,
        pg_major_on_disk=major, pg_data_dir=pgdir, database=db,
        s3_keys=s3_keys_of(doc) if kind == "s3" and not storage else None,
        compose=compose.to_dict() if compose else None)
