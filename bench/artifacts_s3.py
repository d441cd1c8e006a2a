"""S3 for the artifact benchmark: a moto server on 127.0.0.1 and an uploader for part of a tree."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

from artifacts_baseline import wait_answering

# moto accepts any credentials; these only have to be consistent between clients
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench-access", "AWS_SECRET_ACCESS_KEY": "bench-secret-key"}


FRONTS = ("keepalive", "werkzeug")


class MotoServer:
    """moto's server on a free loopback port for the length of a with-block: S3 only behind
    one of the fronts of moto_s3.py (default keep-alive), or the stock ``python -m
    moto.server`` (every service, werkzeug) with s3_only=False."""

    def __init__(self, s3_only: bool = True, front: str = "keepalive"):
        if front not in FRONTS:
            raise ValueError(f"unknown moto front {front!r}")
        self.s3_only, self.front = s3_only, front
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "MotoServer":
        os.environ.update(CREDENTIALS)
        os.environ.pop("AWS_CA_BUNDLE", None)  # docker-registry's S3 driver refuses to start with it
        command = ([sys.executable, str(Path(__file__).with_name("moto_s3.py")), str(self.port), self.front]
                   if self.s3_only else [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)])
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_answering(self.endpoint + "/moto-api/", self.proc, "moto server")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def cpu_seconds(self) -> float:
        """CPU time the moto process has used so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def client(self, pool: int = 32):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            config=Config(max_pool_connections=pool, retries={"mode": "standard", "max_attempts": 5}))


def sample_files(storage_root: Path, repos: list[str]) -> list[str]:
    """Paths (relative to storage_root) of the repositories' folders and every blob they link."""
    v2 = Path(storage_root, "docker", "registry", "v2")
    files, blobs = [], set()
    for repo in repos:
        for dirpath, _, names in os.walk(v2 / "repositories" / repo):
            for n in names:
                p = Path(dirpath, n)
                files.append(p.relative_to(storage_root).as_posix())
                if n == "link" and ("/_layers/" in p.as_posix() or "/revisions/" in p.as_posix()):
                    blobs.add(p.read_text())
    for digest in sorted(blobs):
        h = digest[7:]
        files.append(f"docker/registry/v2/blobs/sha256/{h[:2]}/{h}/data")
    return files


def upload(client, bucket: str, rootdirectory: str, storage_root: Path, files: list[str], jobs: int = 16) -> float:
    """Put the files with distribution's S3 keys; returns the seconds it took."""
    prefix = rootdirectory.strip("/")
    client.create_bucket(Bucket=bucket)
    t0 = time.monotonic()

    def put(rel: str) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=Path(storage_root, rel).read_bytes())

    with ThreadPoolExecutor(jobs) as ex:
        for _ in ex.map(put, files):
            pass
    return time.monotonic() - t0


def get_cpu(endpoint: str, objects: int = 200, gets: int = 2000) -> dict:
    """Client CPU per S3Storage.read of a small object (time.process_time of this process
    over `gets` sequential GETs of `objects` ≈1 KB objects), against a running moto server."""
    from harbor_upgrade.registry.s3 import S3Storage
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="get-cpu")
    paths = [f"blobs/sha256/{i:02x}/{i:064x}/data" for i in range(objects)]
    for i, p in enumerate(paths):
        client.put_object(Bucket="get-cpu", Key=f"reg/docker/registry/v2/{p}", Body=b"x" * 1000 + bytes([i % 256]))
    storage = S3Storage("get-cpu", "reg", endpoint_url=endpoint)
    try:
        for p in paths[:20]:  # warm up connections and caches
            storage.read(p)
        t0, w0 = time.process_time(), time.monotonic()
        for i in range(gets):
            storage.read(paths[i % objects])
        cpu, wall = time.process_time() - t0, time.monotonic() - w0
    finally:
        storage.close()
        client.close()
    return {"gets": gets, "client_cpu_ms_per_get": round(cpu / gets * 1000, 2),
            "wall_ms_per_get": round(wall / gets * 1000, 2)}


if __name__ == "__main__":
    # python bench/artifacts_s3.py [--werkzeug|--all-services]: client CPU per GET against a fresh moto
    with MotoServer(s3_only="--all-services" not in sys.argv,
                    front="werkzeug" if "--werkzeug" in sys.argv else "keepalive") as server:
        print(get_cpu(server.endpoint))
