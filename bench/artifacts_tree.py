"""A large registry storage tree in the exact docker-distribution layout, plus its database rows.

Writes the files a distribution registry would have written after pushes (no registry
involved), so a 100k-artifact tree takes minutes:

    <out>/storage/docker/registry/v2/blobs/sha256/<hh>/<hex>/data
    <out>/storage/docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link
    <out>/storage/docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
    <out>/storage/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/{current,index/sha256/<hex>}/link

Content: a pool of small real tar+gzip layers shared by every image; each artifact has its
own image config (valid docker/OCI config, diff_ids matching its layers) and manifest.
Mix: docker v2 and OCI image manifests, docker manifest lists every ``index_every`` tags
(children pushed by digest, untagged), and untagged manifests per repository.

Alongside, ``<out>/rows.tsv`` lists one line per tag — repository, tag, digest, manifest
media type, size — which is everything Harbor 1.10's database knew (one artifact row per
tag, only tagged manifests); ``artifacts_db`` turns it into 2.4.0-schema rows.

Deterministic for a given seed. Stdlib only.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import multiprocessing
import os
import random
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

PLATFORMS = [("amd64", None), ("arm64", "v8"), ("arm", "v7"), ("ppc64le", None), ("s390x", None)]


@dataclass(frozen=True)
class TreeShape:
    repos: int = 2000
    projects: int = 40
    tags_per_repo: int = 50
    index_every: int = 25        # every N-th tag is a docker manifest list (0 = never)
    index_children: int = 2
    oci_every: int = 5           # every N-th plain image uses OCI media types
    untagged_per_repo: int = 1
    shared_layers: int = 300
    layers_per_image: int = 3
    seed: int = 1

    @property
    def expected_artifacts(self) -> int:
        lists = self.tags_per_repo // self.index_every if self.index_every else 0
        per_repo = self.tags_per_repo + lists * self.index_children + self.untagged_per_repo
        return self.repos * per_repo


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repo_names(shape: TreeShape) -> list[str]:
    """Two-level names, and every 17th repository one level deeper (nested names exist in the wild)."""
    names = []
    for i in range(shape.repos):
        project = f"proj{i % shape.projects:03d}"
        names.append(f"{project}/group{i % 3}/app-{i:05d}" if i % 17 == 5 else f"{project}/app-{i:05d}")
    return names


def make_layer(rng: random.Random, idx: int) -> tuple[bytes, str, str]:
    """A real gzip'd tar with one small file: (compressed bytes, digest, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        data = rng.randbytes(rng.randint(64, 512))
        info = tarfile.TarInfo(f"layer{idx}/blob.bin")
        info.size, info.mtime = len(data), 1600000000
        tf.addfile(info, io.BytesIO(data))
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(raw.getvalue())
    return gz.getvalue(), sha(gz.getvalue()), sha(raw.getvalue())


def layer_pool(shape: TreeShape) -> list[tuple[bytes, str, str]]:
    rng = random.Random(shape.seed)
    return [make_layer(rng, i) for i in range(shape.shared_layers)]


class Writer:
    """Creates files with few syscalls; remembers the folders and blobs it already made."""

    def __init__(self, storage_root: Path):
        self.v2 = os.path.join(storage_root, "docker", "registry", "v2")
        self.folders: set[str] = set()
        self.blobs: set[str] = set()
        self.files = 0

    def _mkdirs(self, d: str) -> None:
        if d not in self.folders:
            os.makedirs(d, exist_ok=True)
            self.folders.add(d)

    def write(self, path: str, data: bytes) -> None:
        self._mkdirs(os.path.dirname(path))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.files += 1

    def blob(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha(data)
        if digest not in self.blobs:
            h = digest[7:]
            path = os.path.join(self.v2, "blobs", "sha256", h[:2], h, "data")
            if not os.path.exists(path):  # another worker may have written a shared layer
                self.write(path, data)
            self.blobs.add(digest)
        return digest

    def link(self, repo: str, digest: str, *where: str) -> None:
        """A link file holding the digest, at repositories/<repo>/<where...>/link."""
        self.write(os.path.join(self.v2, "repositories", *repo.split("/"), *where, "link"), digest.encode())


def gen_repo(shape: TreeShape, pool, w: Writer, repo_idx: int, name: str) -> list[tuple]:
    """Push one repository's images; returns its tag rows (repo, tag, digest, media type, size)."""
    rng = random.Random(shape.seed * 1000003 + repo_idx)
    linked: set[str] = set()
    rows = []

    def link_blob(digest: str) -> None:
        if digest not in linked:
            w.link(name, digest, "_layers", "sha256", digest[7:])
            linked.add(digest)

    def image(arch: str, variant: str | None, oci: bool, seq: int) -> tuple[str, int, str, int]:
        n = rng.randint(max(1, shape.layers_per_image - 1), shape.layers_per_image + 1)
        layers = [pool[rng.randrange(len(pool))] for _ in range(n)]
        created = (f"2021-{1 + seq % 12:02d}-{1 + seq % 28:02d}T{seq % 24:02d}:{seq % 60:02d}:"
                   f"{seq * 7 % 60:02d}.{seq % 1000000:06d}Z")
        config = {"architecture": arch, "os": "linux", "created": created, "author": f"builder-{repo_idx % 13}",
                  "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", f"APP_BUILD={seq}"],
                             "Cmd": ["/app", "--serve"], "WorkingDir": "/srv",
                             "Labels": {"app": name, "build": str(seq)}},
                  "rootfs": {"type": "layers", "diff_ids": [layer[2] for layer in layers]},
                  "history": [{"created": created, "created_by": f"layer {j}"} for j in range(n)]}
        if variant:
            config["variant"] = variant
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = w.blob(config_bytes)
        link_blob(config_digest)
        for gz, digest, _ in layers:
            w.blob(gz, digest)
            link_blob(digest)
        manifest = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST if oci else MT_DOCKER_MANIFEST,
                    "config": {"mediaType": MT_OCI_CONFIG if oci else MT_DOCKER_CONFIG,
                               "size": len(config_bytes), "digest": config_digest},
                    "layers": [{"mediaType": MT_OCI_LAYER if oci else MT_DOCKER_LAYER,
                                "size": len(gz), "digest": digest} for gz, digest, _ in layers]}
        manifest_bytes = json.dumps(manifest, indent=3).encode()
        digest = w.blob(manifest_bytes)
        w.link(name, digest, "_manifests", "revisions", "sha256", digest[7:])
        size = len(manifest_bytes) + len(config_bytes) + sum(len(gz) for gz, _, _ in layers)
        return digest, len(manifest_bytes), manifest["mediaType"], size

    seq = repo_idx * 1000
    for t in range(shape.tags_per_repo):
        tag = f"v{t}"
        seq += 1
        if shape.index_every and t % shape.index_every == shape.index_every - 1:
            children = []
            for arch, variant in PLATFORMS[:shape.index_children]:
                seq += 1
                child, length, media_type, _ = image(arch, variant, False, seq)
                platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
                children.append({"mediaType": media_type, "size": length, "digest": child, "platform": platform})
            list_bytes = json.dumps({"schemaVersion": 2, "mediaType": MT_DOCKER_LIST, "manifests": children},
                                    indent=3).encode()
            digest = w.blob(list_bytes)
            w.link(name, digest, "_manifests", "revisions", "sha256", digest[7:])
            media_type, size = MT_DOCKER_LIST, len(list_bytes)
        else:
            arch, variant = PLATFORMS[seq % 2]
            digest, _, media_type, size = image(arch, variant, bool(shape.oci_every and t % shape.oci_every == 0), seq)
        w.link(name, digest, "_manifests", "tags", tag, "current")
        w.link(name, digest, "_manifests", "tags", tag, "index", "sha256", digest[7:])
        rows.append((name, tag, digest, media_type, size))
    for _ in range(shape.untagged_per_repo):
        seq += 1
        image("amd64", None, False, seq)
    return rows


_POOL = None


def _init_worker(pool) -> None:
    global _POOL
    _POOL = pool


def _worker(job) -> tuple[list[tuple], int]:
    shape, storage_root, start, end = job
    names = repo_names(shape)
    w = Writer(storage_root)
    rows = []
    for i in range(start, end):
        rows += gen_repo(shape, _POOL, w, i, names[i])
    return rows, w.files


def generate(out: Path, shape: TreeShape, jobs: int = 2) -> dict:
    """Write <out>/storage and <out>/rows.tsv; returns a summary (also kept in <out>/tree.json)."""
    out = Path(out)
    storage_root = out / "storage"
    if (storage_root / "docker").exists():
        raise SystemExit(f"{storage_root} already holds a storage tree; remove it or pick another --tree")
    storage_root.mkdir(parents=True)
    t0 = time.monotonic()
    pool = layer_pool(shape)
    per = max(1, -(-shape.repos // (jobs * 8)))
    chunks = [(shape, storage_root, s, min(shape.repos, s + per)) for s in range(0, shape.repos, per)]
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_init_worker, initargs=(pool,)) as p:
        results = p.map(_worker, chunks, chunksize=1)
    with open(out / "rows.tsv", "w") as f:
        for rows, _ in results:
            for row in rows:
                f.write("\t".join(map(str, row)) + "\n")
    seconds = time.monotonic() - t0
    summary = {"shape": asdict(shape), "artifacts": shape.expected_artifacts,
               "tags": sum(len(r) for r, _ in results), "files": sum(n for _, n in results),
               "seconds": round(seconds, 1)}
    (out / "tree.json").write_text(json.dumps(summary, indent=1))
    return summary


def load_summary(out: Path) -> dict | None:
    p = Path(out) / "tree.json"
    return json.loads(p.read_text()) if p.exists() else None


def read_rows(out: Path):
    """The tag rows: (repository, tag, digest, manifest media type, size)."""
    with open(Path(out) / "rows.tsv") as f:
        for line in f:
            repo, tag, digest, media_type, size = line.rstrip("\n").split("\t")
            yield repo, tag, digest, media_type, int(size)
