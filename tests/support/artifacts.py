"""Small registry trees written for the artifact tests, and the 1.10 rows the SQL upgrade leaves
for them: a ``Tree`` of images and indexes, ``image``/``index`` on a LayoutWriter, ``register`` to
insert the rows, ``rows`` to read the artifact rows back."""
from __future__ import annotations

import json
from importlib import resources

import psycopg

from harbor_upgrade.artifacts.store import artifact_rows
from harbor_upgrade.registry import manifest as m
from harbor_upgrade.registry.layout import LayoutWriter

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def fresh_schema():
    """The fresh Harbor 1.10 schema that ships with the package."""
    return resources.files("harbor_upgrade") / "data" / "harbor-1.10.0-fresh.sql"


class Tree:
    """A small registry tree: images with configs and layers, indexes, tags."""

    def __init__(self, root):
        self.root = root
        self.w = LayoutWriter(root)

    def blob(self, repo: str, data: bytes) -> str:
        digest = self.w.put_blob(data)
        self.w.link_layer(repo, digest)
        return digest

    def image(self, repo: str, config: dict | bytes | None = None, *, tags=(), config_type=CONFIG,
              layers=(b"layer",), layer_annotations=None, media_type=m.OCI_MANIFEST, **extra) -> tuple[str, bytes]:
        cfg = config if isinstance(config, bytes) else json.dumps(config or {"architecture": "amd64",
                                                                              "os": "linux"}).encode()
        doc = {"schemaVersion": 2, "mediaType": media_type,
               "config": {"mediaType": config_type, "size": len(cfg), "digest": self.blob(repo, cfg)},
               "layers": [dict({"mediaType": LAYER, "size": len(layer), "digest": self.blob(repo, layer)},
                               **({"annotations": layer_annotations[i]} if layer_annotations and
                                  layer_annotations[i] else {}))
                          for i, layer in enumerate(layers)]}
        doc.update(extra)
        data = json.dumps(doc).encode()
        return self.w.put_manifest(repo, data, tags), data

    def index(self, repo: str, children, *, tags=(), annotations=None) -> str:
        doc = {"schemaVersion": 2, "mediaType": m.OCI_INDEX,
               "manifests": [{"mediaType": m.OCI_MANIFEST, "size": 1, "digest": d,
                              "platform": {"architecture": "amd64", "os": "linux"}} for d in children]}
        if annotations:
            doc["annotations"] = annotations
        return self.w.put_manifest(repo, json.dumps(doc).encode(), tags)

    def path(self, digest: str):
        alg, hex_ = digest.split(":")
        return self.root / "docker/registry/v2/blobs" / alg / hex_[:2] / hex_ / "data"

    def revision_link(self, repo: str, digest: str):
        alg, hex_ = digest.split(":")
        return self.root / f"docker/registry/v2/repositories/{repo}/_manifests/revisions/{alg}/{hex_}/link"


def image(w: LayoutWriter, repo: str, arch: str, tags=()) -> str:
    cfg = json.dumps({"architecture": arch, "os": "linux", "created": "2021-01-01T00:00:00Z"}).encode()
    layer = f"layer of {repo} {arch}".encode()
    for blob in (cfg, layer):
        w.link_layer(repo, w.put_blob(blob))
    doc = {"schemaVersion": 2, "mediaType": m.OCI_MANIFEST,
           "config": {"mediaType": CONFIG, "size": len(cfg), "digest": w.put_blob(cfg)},
           "layers": [{"mediaType": LAYER, "size": len(layer),
                       "digest": w.put_blob(layer)}]}
    return w.put_manifest(repo, json.dumps(doc).encode(), tags)


def index(w: LayoutWriter, repo: str, children, tags=()) -> str:
    doc = {"schemaVersion": 2, "mediaType": m.OCI_INDEX,
           "manifests": [{"mediaType": m.OCI_MANIFEST, "size": 1, "digest": d,
                          "platform": {"architecture": a, "os": "linux"}} for d, a in children]}
    return w.put_manifest(repo, json.dumps(doc).encode(), tags)


def register(dsn: str, rows: list[tuple[str, str, tuple[str, ...]]]) -> None:
    """What the SQL migration leaves for tagged 1.10 artifacts: rows without metadata (in one
    transaction: a commit per row made this a large part of the tests that register hundreds)."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        typed = conn.execute("""SELECT count(*) FROM information_schema.columns
                                WHERE table_name = 'artifact' AND column_name = 'artifact_type'""").fetchone()[0]
        for repo, digest, tags in rows:
            project = repo.split("/")[0]
            conn.execute("INSERT INTO project (owner_id, name) VALUES (1, %s) ON CONFLICT DO NOTHING", (project,))
            pid = conn.execute("SELECT project_id FROM project WHERE name = %s", (project,)).fetchone()[0]
            conn.execute("INSERT INTO repository (name, project_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (repo, pid))
            rid = conn.execute("SELECT repository_id FROM repository WHERE name = %s", (repo,)).fetchone()[0]
            aid = conn.execute(f"""INSERT INTO artifact (project_id, repository_name, digest, type, repository_id,
                                   media_type, manifest_media_type, push_time{", artifact_type" if typed else ""})
                                   VALUES (%s, %s, %s, 'IMAGE', %s, 'UNKNOWN', 'UNKNOWN', '2020-01-01'
                                           {", 'UNKNOWN'" if typed else ""})
                                   RETURNING id""", (pid, repo, digest, rid)).fetchone()[0]
            for tag in tags:
                conn.execute("INSERT INTO tag (repository_id, artifact_id, name) VALUES (%s, %s, %s)",
                             (rid, aid, tag))


def rows(dsn: str) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        return artifact_rows(conn)
