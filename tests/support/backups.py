"""A small Harbor installation on disk (harbor folder and data volume with Harbor's owners and
modes), snapshots of folders and plain dumps of databases, for the backup and restore tests."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from harbor_upgrade.postgres.tools import Conn, canonical_lines, client_binaries, server_version

HARBOR_YML = "# our own test config\nhostname: reg.example.test\nhttp:\n  port: 80\n_version: 1.10.0\n"


def make_installation(base: Path) -> tuple[Path, Path]:
    """A harbor folder and a data volume with Harbor's owners (10000, 999) and modes."""
    harbor, dv = base / "harbor", base / "data"
    files = {
        harbor / "harbor.yml": (HARBOR_YML.encode(), 0, 0o644),
        harbor / "common/config/core/env": (b"CORE_SECRET=abc\nPORT=8080\n", 10000, 0o600),
        harbor / "common/config/nginx/nginx.conf": (b"worker_processes auto;\n", 10000, 0o644),
        harbor / "docker-compose.yml": (b"version: '2.3'\n", 0, 0o644),
        dv / "secret/keys/secretkey": (b"0123456789abcdef", 10000, 0o600),
        dv / "secret/core/private_key.pem": (b"-----BEGIN PRIVATE KEY-----\nx\n", 10000, 0o600),
        dv / "job_logs/2fd3.log": (bytes(range(256)) * 8, 10000, 0o644),
        dv / "redis/dump.rdb": (b"REDIS0009\x00\xff", 999, 0o644),
        dv / "registry/docker/registry/v2/blobs/sha256/ab/data": (b"a big blob", 10000, 0o644),
        dv / "database/PG_VERSION": (b"9.6\n", 999, 0o600),
    }
    for path, (data, uid, mode) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chown(path, uid, uid)
        os.chmod(path, mode)
    os.chown(dv / "secret", 10000, 10000)
    os.chmod(dv / "secret", 0o700)
    os.symlink("keys/secretkey", dv / "secret/current")
    os.chown(dv / "secret/current", 10000, 10000, follow_symlinks=False)
    return harbor, dv


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Every entry under root: type, owner, mode and content (or link target)."""
    out = {}
    for p in sorted([root, *root.rglob("*")]):
        rel = str(p.relative_to(root))
        if rel.split("/")[0] in skip:
            continue
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            body = ("link", os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            body = ("dir",)
        else:
            body = ("file", p.read_bytes())
        out[rel] = (*body, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
    return out


def plain_dump(dsn: str) -> list[bytes]:
    conn = Conn.parse(dsn)
    with conn.connect() as c:
        tools = client_binaries(server_version(c)[1])
    out = subprocess.run([tools.tool("pg_dump"), "-d", conn.conninfo], capture_output=True, check=True).stdout
    return list(canonical_lines(out.splitlines(keepends=True)))
