"""A stand-in of a Harbor 1.10 Docker Compose installation, for tests with a real Docker Engine.

Nothing can be pulled here, so the images are built locally FROM scratch under Harbor's
names and tags: harbor-db carries busybox and this machine's PostgreSQL (13, else 15) and behaves
like Harbor's (initdb with POSTGRES_PASSWORD on first start, PGDATA
/var/lib/postgresql/data, user 999, the `registry` database, the shell kept as PID 1);
every other service is a shell that idles until TERM, and the log service takes syslog
on its port. Images are built once per fingerprint of this file and reused.

``render_compose`` writes a docker-compose.yml with the shape Harbor's prepare gives a
1.10 installation (our own renderer: services, images, mounts, syslog logging, networks),
publishing its ports on 127.0.0.1 only.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML

VERSION = "v1.10.6"
DB_IMAGE = f"goharbor/harbor-db:{VERSION}"
LOG_IMAGE = f"goharbor/harbor-log:{VERSION}"
SERVICE_IMAGES = [f"goharbor/{n}:{VERSION}" for n in (
    "registry-photon", "harbor-registryctl", "harbor-core", "harbor-portal", "harbor-jobservice", "redis-photon",
    "nginx-photon")]
LABEL = "org.harbor-upgrade.standin"
# The stand-in's PostgreSQL: Harbor 1.10's harbor-db runs 9.6, which no package here has. It takes
# a major installed here (Debian 12's 15, Debian 11's 13) that the target release's harbor-db uses or
# upgrades, so that the folder is one the upgrade can go on with (the plan fails any other).


def _standin_major() -> int:
    from harbor_upgrade.db.steps import step_of
    from harbor_upgrade.versions import TARGET
    image = step_of(TARGET).harbor_db[-1]
    here = [m for m in (15, 13) if Path(f"/usr/lib/postgresql/{m}/bin/postgres").exists()]
    fits = [m for m in here if m in (image.major, image.upgrades_from)]
    return (fits or here)[0]


PG_MAJOR = _standin_major()
PG = Path(f"/usr/lib/postgresql/{PG_MAJOR}")
PG_SHARE = Path(f"/usr/share/postgresql/{PG_MAJOR}")
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "sleep", "cat", "nc", "mkdir", "kill", "ls", "rm", "echo", "env", "id", "wc")

DB_ENTRYPOINT = r"""#!/bin/sh
# harbor-db stand-in: on first start initialise the cluster the way Harbor's image does
# (superuser password from POSTGRES_PASSWORD, md5 from the network, the registry database),
# then serve it with this shell staying PID 1, as bash does in Harbor 1.10's image.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres -E UTF-8 --lc-collate=en_US.UTF-8 --lc-ctype=en_US.UTF-8 >/dev/null
  echo "host all all all md5" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 -q -U postgres -d postgres <<EOSQL
ALTER USER postgres WITH SUPERUSER PASSWORD '$POSTGRES_PASSWORD';
CREATE DATABASE registry ENCODING 'UTF8';
EOSQL
  psql -v ON_ERROR_STOP=1 -q -U postgres -d registry \
    -c 'CREATE TABLE schema_migrations(version bigint not null primary key, dirty boolean not null)'
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "init done"
fi
postgres -D "$PGDATA" -c listen_addresses='*'
"""

SERVICE_ENTRYPOINT = r"""#!/bin/sh
# A stand-in for one of Harbor's services: idles until TERM. The log service takes
# syslog over TCP on 10514, one handler per connection.
trap 'exit 0' TERM INT
if [ "$STANDIN_ROLE" = log ]; then
  mkdir -p /var/log/docker
  nc -ll -p 10514 -e /bin/syslog-sink &
fi
while :; do sleep 1 & wait $!; done
"""

SYSLOG_SINK = "#!/bin/sh\ncat >> /var/log/docker/syslog.log\n"


@contextmanager
def stack_lock():
    """One stand-in stack per Docker daemon at a time: Harbor's container names and the log
    service's port 1514 are fixed, so test runs of several checkouts take turns."""
    with open(os.path.join(tempfile.gettempdir(), "harbor-upgrade-compose-tests.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def docker(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, **kw)


def fingerprint() -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update((PG / "bin" / "postgres").read_bytes()[:1 << 20])
    return h.hexdigest()[:16]


def image_fingerprint(image: str) -> str | None:
    r = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', image, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def _copy(src: Path, root: Path) -> None:
    dst = root / src.relative_to("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def _busybox_root(root: Path) -> None:
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for a in APPLETS:
        os.symlink("busybox", root / "bin" / a)
    for d in ("tmp", "var/run/postgresql", "run/postgresql"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d).chmod(0o1777)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\npostgres:x:999:\n")


def _libraries(files: list[Path]) -> set[Path]:
    libs: set[Path] = set()
    for f in files:
        r = subprocess.run(["ldd", str(f)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            for part in line.split():
                if part.startswith("/"):
                    libs.add(Path(part))
    return libs


def _db_root(root: Path) -> None:
    _busybox_root(root)
    elf = [p for p in (PG / "bin").iterdir()] + [p for p in (PG / "lib").glob("*.so") if "llvmjit" not in p.name]
    for p in elf:
        _copy(p, root)
    _copy(PG_SHARE, root)
    _copy(Path("/usr/share/zoneinfo"), root)
    for lib in _libraries(elf):
        _copy(Path(os.path.realpath(lib)), root)
        if os.path.realpath(lib) != str(lib):
            link = root / lib.relative_to("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink(os.path.realpath(lib), link)
    locale = root / "usr/lib/locale/en_US.UTF-8"
    locale.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", str(locale)], check=True, capture_output=True)
    os.symlink("en_US.UTF-8", root / "usr/lib/locale/en_US.utf8")
    (root / "docker-entrypoint.sh").write_text(DB_ENTRYPOINT)
    (root / "docker-entrypoint.sh").chmod(0o755)
    (root / "var/lib/postgresql/data").mkdir(parents=True)


def _build(tag: str, root_fn, config: list[str], fp: str) -> None:
    with tempfile.TemporaryDirectory(prefix="harbor-standin-") as ctx:
        root = Path(ctx) / "rootfs"
        root_fn(root)
        dockerfile = ["FROM scratch", "COPY rootfs/ /", *config, f'LABEL {LABEL}="{fp}"']
        (Path(ctx) / "Dockerfile").write_text("\n".join(dockerfile) + "\n")
        r = subprocess.run(["docker", "build", "-q", "-t", tag, ctx], capture_output=True, text=True,
                           env={**os.environ, "DOCKER_BUILDKIT": "0"})
        if r.returncode != 0:
            raise RuntimeError(f"building {tag} failed: {r.stderr[-2000:]}")


def _service_root(root: Path) -> None:
    _busybox_root(root)
    (root / "entrypoint.sh").write_text(SERVICE_ENTRYPOINT)
    (root / "entrypoint.sh").chmod(0o755)
    (root / "bin" / "syslog-sink").write_text(SYSLOG_SINK)
    (root / "bin" / "syslog-sink").chmod(0o755)


def build_images() -> float:
    """Build the stand-in images unless this fingerprint's are there; returns the seconds spent."""
    fp = fingerprint()
    t0 = time.monotonic()
    if image_fingerprint(DB_IMAGE) != fp:
        _build(DB_IMAGE, _db_root, [
            f"ENV PATH={PG}/bin:/bin PGDATA=/var/lib/postgresql/data LANG=en_US.UTF-8 TZ=UTC",
            "VOLUME /var/lib/postgresql/data", "EXPOSE 5432", "USER 999:999",
            'ENTRYPOINT ["/bin/sh", "/docker-entrypoint.sh"]'], fp)
    if image_fingerprint(LOG_IMAGE) != fp:
        _build(LOG_IMAGE, _service_root, ["ENV STANDIN_ROLE=log", 'ENTRYPOINT ["/bin/sh", "/entrypoint.sh"]'], fp)
    first = SERVICE_IMAGES[0]
    if image_fingerprint(first) != fp:
        _build(first, _service_root, ["USER 10000:10000", 'ENTRYPOINT ["/bin/sh", "/entrypoint.sh"]'], fp)
    for other in SERVICE_IMAGES[1:]:
        if image_fingerprint(other) != fp:
            docker("tag", first, other)
    return time.monotonic() - t0


# -- the installation's folder, as Harbor's prepare leaves it ------------------------------------
SYSLOG = "tcp://127.0.0.1:1514"
CAPS = ["CHOWN", "SETGID", "SETUID"]


@dataclass
class Site:
    dir: Path
    harbor_dir: Path
    harbor_yml: Path
    data_volume: Path
    log_dir: Path
    http_port: int
    images: list = field(default_factory=list)     # the demo images in registry storage


def _service(image: str, name: str, *, volumes=(), env_file=None, depends=("log",), caps=CAPS, ports=(),
             syslog_tag: str | None = None, networks=("harbor",)) -> dict:
    svc: dict = {"image": image, "container_name": name, "restart": "always", "cap_drop": ["ALL"],
                 "cap_add": list(caps)}
    if env_file:
        svc["env_file"] = [env_file]
    if volumes:
        svc["volumes"] = list(volumes)
    svc["networks"] = list(networks)
    svc["dns_search"] = "."
    if ports:
        svc["ports"] = list(ports)
    if depends:
        svc["depends_on"] = list(depends)
    if syslog_tag:
        svc["logging"] = {"driver": "syslog", "options": {"syslog-address": SYSLOG, "tag": syslog_tag}}
    return svc


def _bind(source: Path | str, target: str) -> dict:
    return {"type": "bind", "source": str(source), "target": target}


def render_compose(data_volume: Path, log_dir: Path, http_port: int, external_database: bool = False,
                   version: str = VERSION) -> dict:
    """The services of a 1.10 installation without Clair, Notary or ChartMuseum."""
    dv = str(data_volume)
    s = {"log": _service(f"goharbor/harbor-log:{version}", "harbor-log", depends=(),
                         caps=["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
                         volumes=[f"{log_dir}/:/var/log/docker/:z",
                                  "./common/config/log/logrotate.conf:/etc/logrotate.d/logrotate.conf:z"],
                         ports=["127.0.0.1:1514:10514"]),
         "registry": _service(f"goharbor/registry-photon:{version}", "registry", syslog_tag="registry",
                              volumes=[f"{dv}/registry:/storage:z", "./common/config/registry/:/etc/registry/:z",
                                       _bind(f"{dv}/secret/registry/root.crt", "/etc/registry/root.crt")]),
         "registryctl": _service(f"goharbor/harbor-registryctl:{version}", "registryctl", syslog_tag="registryctl",
                                 env_file="./common/config/registryctl/env",
                                 volumes=[f"{dv}/registry:/storage:z", "./common/config/registry/:/etc/registry/:z"])}
    if not external_database:
        s["postgresql"] = _service(f"goharbor/harbor-db:{version}", "harbor-db", syslog_tag="postgresql",
                                   caps=["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
                                   env_file="./common/config/db/env",
                                   volumes=[f"{dv}/database:/var/lib/postgresql/data:z"])
    s["core"] = _service(f"goharbor/harbor-core:{version}", "harbor-core", syslog_tag="core",
                         env_file="./common/config/core/env", caps=["SETGID", "SETUID"],
                         depends=["log", "registry", "redis"] + ([] if external_database else ["postgresql"]),
                         volumes=[f"{dv}/ca_download/:/etc/core/ca/:z", f"{dv}/psc/:/etc/core/token/:z",
                                  f"{dv}/:/data/:z", _bind(f"{dv}/secret/keys/secretkey", "/etc/core/key")])
    s["portal"] = _service(f"goharbor/harbor-portal:{version}", "harbor-portal", syslog_tag="portal")
    s["jobservice"] = _service(f"goharbor/harbor-jobservice:{version}", "harbor-jobservice", syslog_tag="jobservice",
                               env_file="./common/config/jobservice/env", depends=["core"],
                               volumes=[f"{dv}/job_logs:/var/log/jobs:z"])
    s["redis"] = _service(f"goharbor/redis-photon:{version}", "redis", syslog_tag="redis",
                          volumes=[f"{dv}/redis:/var/lib/redis"])
    s["proxy"] = _service(f"goharbor/nginx-photon:{version}", "nginx", syslog_tag="proxy",
                          caps=CAPS + ["NET_BIND_SERVICE"], volumes=["./common/config/nginx:/etc/nginx:z"],
                          ports=[f"127.0.0.1:{http_port}:8080"], depends=["registry", "core", "portal", "log"])
    return {"version": "2.3", "services": s, "networks": {"harbor": {"external": False}}}


def prepare(site: Site, db_password: str, external_database: bool = False) -> None:
    """What Harbor's prepare leaves in the harbor folder and the data volume, for the stand-ins."""
    cfg = site.harbor_dir / "common" / "config"
    for sub in ("log", "registry", "registryctl", "db", "core", "jobservice", "nginx"):
        (cfg / sub).mkdir(parents=True, exist_ok=True)
    (cfg / "log" / "logrotate.conf").write_text("/var/log/docker/*.log {\n    rotate 50\n}\n")
    (cfg / "registry" / "config.yml").write_text("version: 0.1\n")
    for env in ("registryctl/env", "core/env", "jobservice/env"):
        (cfg / env).write_text("LOG_LEVEL=info\n")
        (cfg / env).chmod(0o640)
    (cfg / "db" / "env").write_text(f"POSTGRES_PASSWORD={db_password}\n")
    (cfg / "db" / "env").chmod(0o640)
    dv = site.data_volume
    for sub, uid, mode in (("database", 999, 0o700), ("registry", 10000, 0o755), ("job_logs", 10000, 0o755),
                           ("redis", 999, 0o755), ("ca_download", 10000, 0o755), ("psc", 10000, 0o755)):
        (dv / sub).mkdir(parents=True, exist_ok=True)
        os.chown(dv / sub, uid, uid)
        (dv / sub).chmod(mode)
    for f in ("secret/registry/root.crt", "secret/keys/secretkey"):
        (dv / f).parent.mkdir(parents=True, exist_ok=True)
        (dv / f).write_text("stand-in\n")
    site.log_dir.mkdir(parents=True, exist_ok=True)
    write_compose(site, external_database)


def compose(site: Site, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    from harbor_upgrade.compose.docker import compose_command
    return subprocess.run([*compose_command(), *args], cwd=site.harbor_dir, capture_output=True, text=True,
                          check=check)


HARBOR_CONTAINERS = ("harbor-log", "registry", "registryctl", "harbor-db", "harbor-core", "harbor-portal",
                     "harbor-jobservice", "redis", "nginx")


def foreign_containers() -> list[str]:
    """Containers under Harbor's names that are not our stand-ins (a real Harbor on this machine)."""
    out = []
    for name in HARBOR_CONTAINERS:
        r = docker("inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', name, check=False)
        if r.returncode == 0 and not r.stdout.strip():
            out.append(name)
    return out


def remove_stack(site: Site | None = None) -> None:
    """Remove every container of the stand-in stack and of ours (any earlier test's too); never
    a container that is not a stand-in."""
    foreign = foreign_containers()
    if foreign:
        raise RuntimeError(f"containers {', '.join(foreign)} run from images that are not our stand-ins: "
                           "a real Harbor seems to run on this machine; the Compose tests leave it alone")
    ours = docker("ps", "-aq", "--filter", "label=org.harbor-upgrade.owner").stdout.split()
    docker("rm", "-f", *HARBOR_CONTAINERS, *ours, check=False)
    if site is not None and (site.harbor_dir / "docker-compose.yml").exists():
        compose(site, "down", check=False)


def running_containers() -> list[str]:
    return docker("ps", "--format", "{{.Names}}").stdout.split()


# -- a seeded 1.10 installation --------------------------------------------------------------------
# A password that needs percent-encoding in a URL, and whose pieces would show in any leak.
DB_PASSWORD = "Hu:p@ss/w%rd#7"


def harbor_yml_text(data_volume: Path) -> str:
    from harbor_upgrade import demo
    return demo.HARBOR_YML.replace(demo.DB_PASSWORD, DB_PASSWORD).replace("{data_volume}", str(data_volume))


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} within {seconds:.0f}s")


def seed_database(site: Site) -> None:
    """harbor-db's first start on the empty folder (initdb with POSTGRES_PASSWORD), then the 1.10
    schema and the demo's sample rows through a port on 127.0.0.1, then a clean stop."""
    from urllib.parse import quote

    import psycopg

    from harbor_upgrade import demo
    name = "harbor-standin-seed"
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "-v", f"{site.data_volume / 'database'}:/var/lib/postgresql/data",
           "-p", "127.0.0.1::5432", "-e", "POSTGRES_PASSWORD", DB_IMAGE,
           env={**os.environ, "POSTGRES_PASSWORD": DB_PASSWORD})
    try:
        port = int(docker("port", name, "5432/tcp").stdout.split(":")[-1])
        dsn = f"postgresql://postgres:{quote(DB_PASSWORD, safe='')}@127.0.0.1:{port}/registry"

        def answers() -> bool:
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
                return "init done" in docker("logs", name).stdout
            except psycopg.Error:
                return False
        wait_for(answers, 120, "the stand-in harbor-db did not answer")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE schema_migrations")
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U",
                        "postgres", "-d", "registry", "-f", str(demo.fresh_schema())], check=True, capture_output=True,
                       env={**os.environ, "PGPASSWORD": DB_PASSWORD})
        demo.insert_rows(dsn, demo.sample_rows(site.images))
        # the shell (PID 1) ends when postgres does: the exec is cut off with 137 as the container exits
        docker("exec", name, "sh", "-c", 'pg_ctl -D "$PGDATA" -m fast -w stop', check=False)
        wait_for(lambda: docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "false", 60,
                 "the seed harbor-db did not stop")
    finally:
        docker("rm", "-f", name, check=False)


def new_site(base: Path, http_port: int = 18080) -> Site:
    """A Harbor 1.10 Compose installation in base: harbor folder, data volume with the demo's
    registry storage and a seeded database, compose file; nothing running."""
    from harbor_upgrade import demo
    site = Site(base, base / "harbor", base / "harbor" / "harbor.yml", base / "data", base / "log", http_port)
    site.harbor_dir.mkdir(parents=True)
    site.harbor_yml.write_text(harbor_yml_text(site.data_volume))
    prepare(site, DB_PASSWORD)
    site.images = demo.write_storage(site.data_volume / "registry")
    for dirpath, _dirs, files in os.walk(site.data_volume / "registry"):
        os.chown(dirpath, 10000, 10000)
        for f in files:
            os.chown(os.path.join(dirpath, f), 10000, 10000)
    seed_database(site)
    return site


def copy_site(src: Site, base: Path) -> Site:
    """A copy of a seeded site in base (owners and modes kept), its paths rewritten."""
    subprocess.run(["cp", "-a", str(src.dir), str(base)], check=True)
    site = Site(base, base / "harbor", base / "harbor" / "harbor.yml", base / "data", base / "log", src.http_port)
    site.images = src.images
    site.harbor_yml.write_text(harbor_yml_text(site.data_volume))
    write_compose(site)
    return site


def write_compose(site: Site, external_database: bool = False) -> None:
    doc = render_compose(site.data_volume, site.log_dir, site.http_port, external_database)
    with open(site.harbor_dir / "docker-compose.yml", "w") as f:
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.dump(doc, f)
