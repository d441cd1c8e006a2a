"""The two yardsticks of the artifact benchmark.

* ``harbor_walk``: shaped like harbor-core's upgrade walk. For every artifact row, project by
  project and repository by repository, GET its manifest from a live registry, then (for an
  image) GET its config blob, one request after the other on one keep-alive connection; for a
  manifest list each child the same way (children are artifacts too); then one full-row
  UPDATE of the artifact, as Beego's ORM writes it.
* ``raw_read``: the physical limit on a filesystem — enumerate every manifest revision, read and
  JSON-parse each manifest and config file once, in one thread.

The registry is Debian's ``docker-registry`` (docker-distribution 2.8) on 127.0.0.1, serving
the same storage through its filesystem or S3 driver.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
REGISTRY = "/usr/bin/docker-registry"


# --------------------------------------------------------------------------- the registry
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_config(port: int, *, storage_root: Path | None = None, s3: dict | None = None) -> str:
    """docker-registry's config.yml for a filesystem root or an S3 bucket (distribution 2.8 keys)."""
    if s3:
        storage = (f"  s3:\n    region: us-east-1\n    regionendpoint: {s3['endpoint']}\n"
                   f"    bucket: {s3['bucket']}\n    rootdirectory: {s3['rootdirectory']}\n"
                   f"    accesskey: {s3['access_key']}\n    secretkey: {s3['secret_key']}\n"
                   "    secure: false\n    v4auth: true\n  redirect:\n    disable: true\n")
    else:
        storage = f"  filesystem:\n    rootdirectory: {storage_root}\n"
    return ("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n{storage}  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n"
            f"http:\n  addr: 127.0.0.1:{port}\n")


def wait_answering(url: str, proc: subprocess.Popen, name: str, logfile: Path | None = None,
                   timeout: float = 30) -> None:
    """Wait until the server started as proc answers HTTP at url (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile and logfile.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode} {tail}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer on {url} within {timeout} s")


class Registry:
    """A docker-registry process serving one storage, for the length of a with-block."""

    def __init__(self, *, storage_root: Path | None = None, s3: dict | None = None):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="bench-registry-"))
        self.config = self.dir / "config.yml"
        self.config.write_text(registry_config(self.port, storage_root=storage_root, s3=s3))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Registry:
        # distribution's S3 driver refuses to start with AWS_CA_BUNDLE set (spec §8)
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        log = open(self.dir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(self.config)], stdout=log, stderr=log, env=env)
        wait_answering(f"http://{self.addr}/v2/", self.proc, "docker-registry", self.dir / "registry.log")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --------------------------------------------------------------------------- Harbor-shaped walk
UPDATE = ("UPDATE artifact SET project_id=%s, repository_name=%s, digest=%s, type=%s, pull_time=%s, "
          "push_time=%s, repository_id=%s, media_type=%s, manifest_media_type=%s, size=%s, extra_attrs=%s, "
          "annotations=%s, icon=%s WHERE id=%s")


def image_attributes(config: dict) -> str:
    """The five image attributes harbor-core keeps, as it would encode them."""
    return json.dumps({"architecture": config.get("architecture", ""), "author": config.get("author", ""),
                       "config": config.get("config") or {}, "created": config.get("created"),
                       "os": config.get("os", "")}, separators=(",", ":"), sort_keys=True)


def harbor_walk(registry_addr: str, dsn: str, limit: int = 0) -> dict:
    """Walk the database's artifacts through the registry API like harbor-core; figures as a dict."""
    host, port = registry_addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    requests = errors = 0
    children_done: list[str] = []

    def get(path: str, accept: str | None = None) -> tuple[int, str, bytes]:
        nonlocal requests
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        r = conn.getresponse()
        body = r.read()
        requests += 1
        return r.status, r.getheader("Content-Type", ""), body

    def abstract(repo: str, digest: str) -> tuple[str, str, int, str | None] | None:
        """(media_type, manifest_media_type, size, extra_attrs) or None when the registry failed."""
        nonlocal errors
        status, ctype, body = get(f"/v2/{repo}/manifests/{digest}", ACCEPT)
        if status != 200:
            errors += 1
            return None
        manifest = json.loads(body)
        if ctype in INDEX_TYPES:
            size = len(body)
            for child in manifest.get("manifests", []):
                got = abstract(repo, child["digest"])
                size += got[2] if got else 0
                children_done.append(child["digest"])
            return ctype, ctype, size, None
        config = manifest.get("config") or {}
        size = len(body) + config.get("size", 0) + sum(layer.get("size", 0) for layer in manifest.get("layers", []))
        extra = None
        if config.get("size", 0) > 0:
            status, _, blob = get(f"/v2/{repo}/blobs/{config['digest']}")
            if status != 200:
                errors += 1
                return None
            extra = image_attributes(json.loads(blob))
        return config.get("mediaType", ""), ctype, size, extra

    with psycopg.connect(dsn, autocommit=True) as db:
        rows = db.execute(
            "SELECT a.id, a.project_id, a.repository_name, a.digest, a.type, a.pull_time, a.push_time, "
            "a.repository_id, a.icon FROM project p JOIN repository r USING (project_id) "
            "JOIN artifact a ON a.repository_id = r.repository_id "
            "ORDER BY p.project_id, r.repository_id, a.id" + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        t0 = time.monotonic()
        for (aid, project_id, repo, digest, typ, pull_time, push_time, repository_id, icon) in rows:
            got = abstract(repo, digest)
            if got is None:
                continue
            media_type, manifest_media_type, size, extra = got
            db.execute(UPDATE, (project_id, repo, digest, typ, pull_time, push_time, repository_id,
                                media_type, manifest_media_type, size, extra, None, icon, aid))
        seconds = time.monotonic() - t0
    conn.close()
    artifacts = len(rows) + len(children_done)
    return {"rows": len(rows), "artifacts": artifacts, "requests": requests, "errors": errors,
            "seconds": round(seconds, 2), "artifacts_per_s": round(artifacts / seconds, 1)}


# --------------------------------------------------------------------------- raw read
def raw_read(storage_root: Path) -> dict:
    """Read and parse every manifest revision and its config straight from the files, one thread."""
    v2 = os.path.join(storage_root, "docker", "registry", "v2")
    base = os.path.join(v2, "repositories")

    def blob(digest: str) -> bytes:
        h = digest[7:]
        with open(os.path.join(v2, "blobs", "sha256", h[:2], h, "data"), "rb") as f:
            return f.read()

    t0 = time.monotonic()
    artifacts = nbytes = 0
    for dirpath, dirnames, _ in os.walk(base):
        if "_manifests" in dirnames:
            revisions = os.path.join(dirpath, "_manifests", "revisions", "sha256")
            for h in os.listdir(revisions) if os.path.isdir(revisions) else ():
                with open(os.path.join(revisions, h, "link"), "rb") as f:
                    manifest = blob(f.read().decode())
                config = json.loads(manifest).get("config")
                nbytes += len(manifest)
                if config and config.get("size", 0) > 0:
                    cb = blob(config["digest"])
                    json.loads(cb)
                    nbytes += len(cb)
                artifacts += 1
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
    seconds = time.monotonic() - t0
    return {"artifacts": artifacts, "bytes": nbytes, "seconds": round(seconds, 2),
            "artifacts_per_s": round(artifacts / seconds, 1)}
