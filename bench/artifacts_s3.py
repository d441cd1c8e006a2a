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


class MotoServer:
    """``python -m moto.server`` on a free loopback port for the length of a with-block."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "MotoServer":
        os.environ.update(CREDENTIALS)
        os.environ.pop("AWS_CA_BUNDLE", None)  # docker-registry's S3 driver refuses to start with it
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_answering(self.endpoint + "/moto-api/", self.proc, "moto server")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)

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
