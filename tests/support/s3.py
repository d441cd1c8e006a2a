"""S3 helpers: a moto server for the tests that inject a fault, and uploading a storage tree
with the keys distribution's S3 driver uses (real behaviour is tested on SeaweedFS: seaweed.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tests.support.seaweed import free_ports


def free_port() -> int:
    return free_ports(1)[0]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, even if with an error status
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer on {url} within {timeout}s")


@contextmanager
def moto_server(env: dict[str, str] | None = None):
    """A moto S3 server on 127.0.0.1 (endpoint URL), for the tests that need a fault moto can
    inject (IAM policies switched on mid-way, a server that goes away); real behaviour is
    tested on SeaweedFS (s3_server)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()



def upload_tree(client, bucket: str, rootdirectory: str, storage_root: Path, jobs: int = 16) -> int:
    """Put every file of a storage tree (the folder holding docker/registry/v2) under rootdirectory,
    with the keys distribution's S3 driver uses; returns the number of objects."""
    prefix = rootdirectory.strip("/")
    files = [p for p in Path(storage_root).rglob("*") if p.is_file()]

    def put(path: Path) -> None:
        rel = path.relative_to(storage_root).as_posix()
        client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}" if prefix else rel, Body=path.read_bytes())

    with ThreadPoolExecutor(jobs) as ex:
        list(ex.map(put, files))
    return len(files)
