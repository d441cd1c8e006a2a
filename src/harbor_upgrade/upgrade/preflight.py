"""The checks before anything is written: a supported start, a clean and idle database,
room for the backup, folder owners, certificates, Clair, storage, the engine step's
prerequisites and, last, the database lint."""
from __future__ import annotations

import re
import shutil
import ssl
from pathlib import Path

from .. import db as dbmod
from ..db.identity import served_cluster
from ..db.steps import STEPS, step_of
from ..errors import HarborUpgradeError, UnsafeState
from ..installation import Installation
from ..installers import line_text, major_text
from ..postgres.layout import list_entries
from ..postgres.server import Server
from ..postgres.upgrade import check_space, folder_size
from ..results import FAIL, PASS, WARN, CheckResult, all_ok
from ..versions import SCHEMA_VERSION, TARGET, Version
from .context import open_installation_storage
from .options import Options, recorded_engine, start_release
from .steps import step_names
from .steps.engine import engine_target

# Harbor's containers run as these users (postgres in harbor-db; harbor elsewhere).
DB_UID, HARBOR_UID = 999, 10000
HARBOR_OWNED = ("registry", "job_logs", "chart_storage", "trivy-adapter")


def check_start(inst: Installation, target: str = TARGET) -> CheckResult:
    db = inst.database
    if inst.release_error:
        return CheckResult("supported start", FAIL, inst.release_error,
                           hint="Harbor older than 1.10: upgrade to 1.10 first with Harbor's own tools")
    if db and db.schema_version is not None and db.schema_version < SCHEMA_VERSION["1.10.0"]:
        return CheckResult("supported start", FAIL, f"database schema {db.schema_version} is older than 1.10 (15)",
                           hint="upgrade to 1.10 first with Harbor's own migrator, then run harbor-upgrade")
    if start_release(inst) == "1.9.0":
        return CheckResult("supported start", FAIL, f"harbor.yml _version {inst.config_version} is older than 1.10",
                           hint="upgrade to 1.10 first, then run harbor-upgrade")
    if db and db.schema_version is not None and db.release is None:
        return CheckResult("supported start", FAIL, f"database schema {db.schema_version} is no known Harbor version")
    start = start_release(inst)
    if start == target:
        return CheckResult("supported start", PASS, f"already at {target}: the steps only check and record")
    if start and Version.parse(start) > Version.parse(target):
        return CheckResult("supported start", FAIL, f"the installation is at {start}, newer than the target {target}: "
                           "harbor-upgrade only upgrades", hint=f"give --to {start} or a later release")
    return CheckResult("supported start", PASS, f"{start} → {target} is supported")


def check_versions_agree(inst: Installation) -> CheckResult:
    db = inst.database
    if not db or not db.release or not inst.release:
        return CheckResult("versions agree", PASS, "nothing to compare")
    if db.release != inst.release:
        return CheckResult("versions agree", WARN,
                           f"harbor.yml says {inst.config_version}, the database is at {db.release} "
                           f"(schema {db.schema_version}); upgrading from the database's release",
                           hint="check that harbor.yml belongs to this installation (Harbor shipped wrong _version "
                                "values in some releases)")
    return CheckResult("versions agree", PASS, f"harbor.yml and database both at {db.release}")


def check_dirty(inst: Installation, resuming: bool) -> CheckResult:
    db = inst.database
    if db and db.dirty:
        return CheckResult("schema not dirty", WARN if resuming else FAIL,
                           f"schema_migrations is {db.schema_version} and dirty: a migration failed half-way",
                           hint="harbor-upgrade db repair --dsn DSN (checks which version the schema really has)")
    return CheckResult("schema not dirty", PASS, "clean")


def check_stopped(inst: Installation, need_db: bool = True) -> CheckResult:
    db = inst.database
    compose = inst.compose or {}
    if compose.get("running"):
        return CheckResult("Harbor stopped", FAIL if need_db else WARN,
                           f"Harbor's containers run ({', '.join(compose['running'])}): the database was not read",
                           hint="run --stop-harbor stops the stack first (clean database shutdown, then docker compose "
                                "down in the harbor folder)")
    if db is None:
        return CheckResult("Harbor stopped", FAIL if need_db else WARN, "no database to check: pass --dsn",
                           hint="the database steps need --dsn postgresql://USER@HOST:PORT/registry (the password from "
                                "PGPASSWORD, ~/.pgpass or harbor-upgrade --password-file FILE)")
    if db.other_clients:
        return CheckResult("Harbor stopped", FAIL, f"{len(db.other_clients)} other sessions on the database",
                           hint="stop Harbor first: docker compose down (in the harbor folder)",
                           samples=db.other_clients)
    return CheckResult("Harbor stopped", PASS, "no other client on the database")


def free_bytes(path: Path) -> int:
    p = path
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def check_disk(inst: Installation, backup_dir: Path | None, db_copies: float = 1.2) -> CheckResult:
    """Room for db_copies times the database (run --prepare: its data folder copy and the twin
    the window's proof runs on) and the harbor folder's files."""
    if backup_dir is None:
        return CheckResult("free disk", PASS, "no backup folder given yet (run --backup-dir): not checked")
    db_size = inst.database.size_bytes if inst.database else 0
    need = int(db_size * db_copies) + folder_size(Path(inst.harbor_dir)) // 2
    free = free_bytes(backup_dir)
    detail = f"{free / 2**20:,.0f} MiB free at {backup_dir}, about {need / 2**20:,.1f} MiB needed"
    if free < need:
        return CheckResult("free disk", FAIL, detail, hint="free space or choose another --backup-dir")
    if free < 2 * need:
        return CheckResult("free disk", WARN, detail + " (less than twice that)")
    return CheckResult("free disk", PASS, detail)


def check_owners(inst: Installation) -> CheckResult:
    dv = Path(inst.data_volume)
    if not dv.is_dir():
        return CheckResult("data folder owners", WARN, f"data volume {dv} is not on this machine: not checked")
    problems = []
    db_dir = dv / "database"
    if db_dir.is_dir():
        st = db_dir.stat()
        if st.st_uid != DB_UID:
            problems.append(f"{db_dir} is owned by uid {st.st_uid}, harbor-db runs as {DB_UID}")
        if st.st_mode & 0o777 != 0o700:
            problems.append(f"{db_dir} has mode {st.st_mode & 0o777:04o}, PostgreSQL needs 0700")
    for name in HARBOR_OWNED:
        p = dv / name
        if p.is_dir() and p.stat().st_uid != HARBOR_UID:
            problems.append(f"{p} is owned by uid {p.stat().st_uid}, Harbor's containers run as {HARBOR_UID}")
    if problems:
        return CheckResult("data folder owners", WARN, f"{len(problems)} folders Harbor's non-root containers "
                           "cannot use as they are", samples=problems,
                           hint=f"chown -R {DB_UID}:{DB_UID} {db_dir} && chmod 0700 {db_dir}; "
                                f"chown -R {HARBOR_UID}:{HARBOR_UID} the others")
    return CheckResult("data folder owners", PASS, f"database {DB_UID} 0700, others {HARBOR_UID}")


_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
_SAN_OID = bytes.fromhex("551d11")   # the content of OBJECT IDENTIFIER 2.5.29.17, subjectAltName


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, content) of each DER element in data; ValueError when data is not DER."""
    items, i = [], 0
    while i < len(data):
        if i + 2 > len(data) or data[i] & 0x1F == 0x1F:   # no multi-byte tags in a certificate's frame
            raise ValueError("not a DER-encoded certificate")
        tag, size = data[i], data[i + 1]
        i += 2
        if size & 0x80:
            width = size & 0x7F
            if not 1 <= width <= 4 or i + width > len(data):
                raise ValueError("not a DER-encoded certificate")
            size = int.from_bytes(data[i:i + width], "big")
            i += width
        if i + size > len(data):
            raise ValueError("not a DER-encoded certificate (truncated)")
        items.append((tag, data[i:i + size]))
        i += size
    return items


def _first(data: bytes, tag: int) -> bytes:
    items = _der_items(data)
    if not items or items[0][0] != tag:
        raise ValueError("not a DER-encoded certificate")
    return items[0][1]


def certificate_has_san(path: Path) -> bool:
    """Whether the (first) certificate of a PEM file has a subjectAltName with at least one name;
    ValueError or OSError when it cannot be read. Public stdlib only (ssl.PEM_cert_to_DER_cert and a
    walk of the DER frame: Certificate > TBSCertificate > [3] extensions), no X.509 library."""
    found = _PEM_CERT.search(path.read_bytes().decode("latin-1"))
    if found is None:
        raise ValueError(f"{path} holds no PEM certificate")
    tbs = _first(_first(ssl.PEM_cert_to_DER_cert(found.group(0)), 0x30), 0x30)
    for tag, content in _der_items(tbs):
        if tag != 0xA3:   # [3] EXPLICIT Extensions
            continue
        for ext_tag, ext in _der_items(_first(content, 0x30)):
            parts = _der_items(ext)   # extnID, critical (optional), extnValue
            if ext_tag == 0x30 and len(parts) >= 2 and parts[0] == (0x06, _SAN_OID) and parts[-1][0] == 0x04:
                return len(_first(parts[-1][1], 0x30)) > 0   # GeneralNames: a SEQUENCE of one or more
    return False


def check_internal_tls(inst: Installation) -> CheckResult:
    if not inst.components.get("internal_tls"):
        return CheckResult("internal TLS certificates", PASS, "internal TLS not in use")
    d = Path(inst.internal_tls_dir or "")
    certs = sorted(d.glob("*.crt")) if d.is_dir() else []
    if not certs:
        return CheckResult("internal TLS certificates", WARN, f"no certificates found in {d}: not checked")
    bad = []
    for c in certs:
        try:
            if not certificate_has_san(c):
                bad.append(c.name)
        except (ssl.SSLError, OSError, ValueError):
            bad.append(f"{c.name} (unreadable)")
    if bad:
        return CheckResult("internal TLS certificates", FAIL,
                           f"{len(bad)} certificates without a subjectAltName: Harbor 2.2+ refuses them", samples=bad,
                           hint="generate new internal certificates with SANs (Harbor's prepare gencert) before "
                                "starting 2.4.0")
    return CheckResult("internal TLS certificates", PASS, f"{len(certs)} certificates carry a subjectAltName")


def check_clair(inst: Installation) -> CheckResult:
    if inst.components.get("clair"):
        return CheckResult("Clair", WARN, "Clair is in use: 2.2 removed it; its reports become invisible and Trivy "
                           "becomes the default scanner", hint="after the upgrade, scan all artifacts with Trivy")
    return CheckResult("Clair", PASS, "not in use")


def check_lint(inst: Installation, target: str = TARGET) -> CheckResult:
    db = inst.database
    if db is None or inst.dsn is None or db.schema_version is None or db.release is None or db.dirty \
            or db.schema_version >= SCHEMA_VERSION[target]:
        return CheckResult("database lint", PASS, "nothing to lint")
    findings = dbmod.lint(inst.dsn, to=target)
    if findings:
        return CheckResult("database lint", FAIL, f"{len(findings)} kinds of rows would make a release step fail",
                           samples=[f"[{f.step}] {f.table}: {f.problem} ({f.count} rows); fix: {f.fix}"
                                    for f in findings],
                           hint="fix those rows (harbor-upgrade db lint --dsn DSN lists them), then plan again")
    return CheckResult("database lint", PASS, "no rows that would break a release step")


def check_storage(inst: Installation) -> CheckResult:
    try:
        storage = open_installation_storage(inst)
    except HarborUpgradeError as e:
        return CheckResult("registry storage", FAIL, e.message, hint=e.hint or "pass --storage")
    try:
        first = next(iter(storage.walk("repositories")), None)
    finally:
        storage.close()
    if first is None:
        return CheckResult("registry storage", WARN, f"{inst.storage} holds no repositories")
    return CheckResult("registry storage", PASS, f"{inst.storage} is readable")


def check_engine(inst: Installation, opts: Options, recorded: dict | None) -> CheckResult:
    """The engine step's preflight: a local Harbor cluster, binaries of its major and of a
    newer one, an empty place beside it, the disk space the mode needs, and the DSN
    reaching that very cluster (its server is the one the step stops and replaces)."""
    name = "engine upgrade"
    if recorded:
        return CheckResult(name, PASS, f"continuing the recorded upgrade of {recorded['old_datadir']} to PostgreSQL "
                                       f"{recorded['new_major']} ({recorded['mode']}) into {recorded['new_datadir']}")
    try:
        t = engine_target(inst, opts)
        old, new = Path(t["old_datadir"]), Path(t["new_datadir"])
        if list_entries(new):
            raise UnsafeState(f"{new} exists and is not empty: the new cluster goes there",
                              hint=f"move {new} away (it is not the installation's cluster), then plan again",
                              reference="datadir-not-empty")
        check_space(old, new, t["mode"])
        if inst.database is not None and inst.dsn is not None \
                and served_cluster(inst.dsn)[0] != Server(t["old_bindir"], old).system_id():
            raise UnsafeState(f"--dsn reaches another PostgreSQL cluster than the one in {old}",
                              hint="pass the DSN of the server running from data_volume/database",
                              reference="engine-other-cluster")
    except HarborUpgradeError as e:
        return CheckResult(name, FAIL, e.message, hint=e.hint)
    size = folder_size(old)
    return CheckResult(name, PASS, f"PostgreSQL {t['old_version']} in {old} → {t['new_major']} ({t['mode']}) into "
                                   f"{new}; the cluster takes {size / 2**20:,.1f} MiB, "
                                   f"{free_bytes(new) / 2**20:,.0f} MiB are free there")


def check_compose_engine(inst: Installation, release: str = TARGET) -> CheckResult:
    """On a Compose installation the engine is left to the target's harbor-db, at its first start."""
    name = "engine (Compose)"
    harbor_db = step_of(release).harbor_db[-1]
    target = harbor_db.major
    docker_version = (inst.compose or {}).get("docker_version") or ""
    m = re.match(r"(\d+)\.(\d+)", docker_version)
    if m and (int(m.group(1)), int(m.group(2))) < (20, 10):
        return CheckResult(name, FAIL, f"Docker Engine {docker_version}: its seccomp profile refuses a system call the "
                                       "newer harbor-db images use (faccessat2); their first start then takes the data "
                                       "folder for empty and initialises a new cluster (Harbor issue #15383)",
                           hint="upgrade Docker to 20.10 or later before installing the new release")
    on_disk = inst.pg_major_on_disk
    if on_disk is None and inst.pg_data_dir:
        try:
            on_disk = 9 if (Path(inst.pg_data_dir) / "PG_VERSION").read_text().startswith("9.") else None
        except OSError:
            on_disk = None
    if on_disk is None or on_disk == target:
        return CheckResult(name, PASS, f"the cluster in {inst.data_volume}/database is used as it is by Harbor "
                                       f"{release}'s harbor-db")
    if harbor_db.upgrades_from != on_disk:
        able = [s.release for s in STEPS if s.harbor_db[-1].upgrades_from == on_disk]
        return CheckResult(name, FAIL, f"the cluster in {inst.pg_data_dir} is PostgreSQL {major_text(on_disk)}; "
                                       f"Harbor {release}'s harbor-db runs {target} and upgrades only a PostgreSQL "
                                       f"{major_text(harbor_db.upgrades_from or target)} folder: it would start an "
                                       "empty cluster, the database left unused",
                           hint=(f"upgrade to a release whose harbor-db moves it first (--to {line_text(able[-1])}), "
                                 "install that, then plan again" if able else
                                 "move the database to an external PostgreSQL server of that major first"))
    return CheckResult(name, WARN, f"the cluster in {inst.pg_data_dir} is PostgreSQL {major_text(on_disk)}; "
                                   f"Harbor {release}'s harbor-db runs {target} and upgrades it at its first start, "
                                   "then deletes the old cluster; when that start cannot list the folder it "
                                   "initialises an empty cluster instead (Harbor issue #15383). harbor-upgrade leaves "
                                   "the engine to it",
                       hint="keep the backup folder until Harbor runs well; check docker logs harbor-db at the first "
                            "start (Docker 20.10 or later)")


def preflight(inst: Installation, backup_dir: Path | None = None, resuming: bool = False,
              need_db: bool = True, opts: Options | None = None) -> list[CheckResult]:
    """The checks before anything is written; need_db=False (plan) lets a missing --dsn pass as a warning.
    With opts asking for the engine step, its own check too."""
    target = opts.target if opts is not None else TARGET
    checks = [check_start(inst, target), check_versions_agree(inst), check_dirty(inst, resuming),
              check_stopped(inst, need_db),
              check_disk(inst, backup_dir), check_owners(inst), check_internal_tls(inst),
              check_clair(inst), check_storage(inst)]
    if inst.compose and inst.compose.get("database_dir"):
        checks.append(check_compose_engine(inst, target))
    if opts is not None and "engine" in step_names(opts):
        checks.append(check_engine(inst, opts, recorded_engine(backup_dir) if resuming else None))
    if all_ok(checks) and not resuming:
        checks.append(check_lint(inst, target))
    return checks
