"""Find and describe an installed Harbor: harbor.yml, data volume, database, storage, components.

Everything here only reads. harbor.yml is read by the one typed view (config/view.py).
``detect`` gathers what the plan and the preflight checks need:
the release named by harbor.yml's ``_version``, the schema and data versions in the
database, the PostgreSQL major of the data folder, the storage backend, and which optional
components are in use (Clair, Trivy, Notary, ChartMuseum, internal TLS, external
database or Redis). Secret values met on the way are registered for masking.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .compose.detect import detect_compose
from .config.view import read_harbor_yml
from .db.connection import one
from .secrets import mask_dsn, register_dsn
from .versions import release_of_schema

if TYPE_CHECKING:
    import psycopg

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
        scanners = {s["name"].split("-")[0] for s in db.scanners if s["immutable"]}
        out["clair"] = out["clair"] or "Clair" in scanners
        out["trivy"] = out["trivy"] or "Trivy" in scanners
    out["internal_tls"] = bool((doc.get("internal_tls") or {}).get("enabled"))
    out["external_database"] = bool((doc.get("external_database") or {}).get("harbor"))
    out["external_redis"] = bool(doc.get("external_redis"))
    return out


def pg_on_disk(data_volume: str) -> tuple[int | None, str | None]:
    """PostgreSQL major of ``<data_volume>/database``: 9.6 data sits at its top, 13 and later in
    pgNN/ (harbor-db of Harbor 2.3 on: pg13, pg14, pg15, pg18); the newest when there are several."""
    base = Path(data_volume) / "database"
    try:
        below = sorted((d for d in base.glob("pg[0-9]*") if d.name[2:].isdigit()), key=lambda d: -int(d.name[2:]))
    except OSError:
        below = []
    for d in (*below, base):
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
        server = one(cur.execute("SHOW server_version"))[0]
        size = one(cur.execute("SELECT pg_database_size(current_database())"))[0]
        others = _other_sessions(cur)
        # A session closed a moment ago (a psql just before) is listed until its server process
        # exits, which a loaded machine may take a while to schedule: ask again for a moment.
        deadline = time.monotonic() + ledger.CLIENTS_SETTLE_S
        while others and time.monotonic() < deadline:
            time.sleep(0.1)
            others = _other_sessions(cur)
        scanners = []
        if "scanner_registration" in tables:
            scanners = [{"name": r[0], "is_default": r[1], "immutable": r[2]} for r in cur.execute(
                "SELECT name, is_default, immutable FROM scanner_registration ORDER BY id")]
    return DatabaseState(version, dirty, data_version, release_of_schema(version) if version else None,
                         server, int(size), others, scanners)


def _other_sessions(cur: psycopg.Cursor) -> list[str]:
    cur.execute("SELECT pg_stat_clear_snapshot()")   # a transaction reads a snapshot otherwise
    return [f"{r[0] or 'unnamed client'} from {r[1] or 'local socket'}" for r in cur.execute(
        "SELECT application_name, client_addr::text FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")]


def detect(harbor_yml: str | os.PathLike, dsn: str | None = None, storage: str | None = None,
           s3_endpoint: str | None = None, s3_region: str | None = None) -> Installation:
    """Describe the installation whose harbor.yml is given (the database too when reachable).
    storage, s3_endpoint and s3_region override what harbor.yml says."""
    path = Path(harbor_yml).resolve()
    cfg = read_harbor_yml(harbor_yml, require_release=False)   # errors name the path as given
    spec, kind, endpoint, region = cfg.storage_spec
    if storage:
        spec = storage
        kind = "s3" if storage.startswith("s3://") else "filesystem"
    endpoint, region = s3_endpoint or endpoint, s3_region or region
    dsn = dsn or cfg.external_dsn
    if dsn:
        register_dsn(dsn)
    db = database_state(dsn) if dsn else None
    major, pgdir = pg_on_disk(cfg.data_volume)
    compose = detect_compose(path.parent, cfg.data)
    return Installation(
        harbor_yml=str(path), harbor_dir=str(path.parent), config_version=cfg.version,
        release=cfg.release, release_error=cfg.release_error, hostname=cfg.hostname, data_volume=cfg.data_volume,
        storage=spec, storage_kind=kind, s3_endpoint=endpoint, s3_region=region,
        dsn=dsn, dsn_masked=mask_dsn(dsn) if dsn else None,
        components=components_of(cfg.data, path.parent, db, set(compose.services) if compose else None),
        internal_tls_dir=cfg.internal_tls_dir,
        pg_major_on_disk=major, pg_data_dir=pgdir, database=db,
        s3_keys=cfg.s3_keys if kind == "s3" and not storage else None,
        compose=compose.to_dict() if compose else None)
