"""Hostile registry storage trees, made on the spot: what a user with push rights or write
access to the storage folder can leave there (FIFOs, symbolic links to devices and out of the
root, loops, 2 GB sparse files, deep JSON, names with terminal controls, paths past the
system's limit). Each case writes one good repository (``lib/app``, whose rows must come out
exactly as from a clean tree) and one hostile part, and says which problems the run must
report. Used by the hostile-storage tests and by bench/chaos_storage.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from harbor_upgrade.artifacts.store import artifact_rows
from harbor_upgrade.registry import manifest as m
from harbor_upgrade.registry.layout import LayoutWriter
from harbor_upgrade.terminal import printable
from tests.support.artifacts import register

V2 = "docker/registry/v2"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
THING_CONFIG = "application/vnd.example.thing.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ICON = "io.goharbor.artifact.v1alpha1.icon"
GOOD = "lib/app"
RUN_SECONDS = 120   # a run of one of these trees that takes longer has hung
PEAK_RSS_LIMIT = 400 << 20   # a clean run of these trees peaks near 100 MB; 2 GB objects must not show


@dataclass(frozen=True)
class Expected:
    """A problem the run must report; a repository ending in '*' is matched as a prefix."""
    repository: str
    digest: str
    reason: str

    def matches(self, p: dict) -> bool:
        repo_ok = (p["repository"].startswith(self.repository[:-1]) if self.repository.endswith("*")
                   else p["repository"] == self.repository)
        return repo_ok and p["digest"] == self.digest and p["reason"] == self.reason


@dataclass
class Tree:
    root: Path          # the storage root (holds docker/registry/v2)
    outside: Path       # a folder beside the root: nothing in it may ever be read
    db_rows: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)

    def __post_init__(self):
        self.w = LayoutWriter(self.root)
        self.outside.mkdir(parents=True, exist_ok=True)

    @property
    def v2(self) -> Path:
        return self.root / V2

    def blob(self, repo: str, data: bytes) -> str:
        digest = self.w.put_blob(data)
        self.w.link_layer(repo, digest)
        return digest

    def image(self, repo: str, config: bytes | None = None, *, config_type: str = IMAGE_CONFIG, tags=(),
              layers=(), register: bool = True, extra: dict | None = None) -> tuple[str, str]:
        """An artifact (manifest, config, layers) registered in the database; (digest, config digest)."""
        cfg = config if config is not None else json.dumps(
            {"architecture": "amd64", "os": "linux", "created": "2021-01-01T00:00:00Z"}).encode()
        cfg_digest = self.blob(repo, cfg)
        descriptors = []
        for layer, layer_notes in layers or [(os.fsencode(f"layer of {repo}"), None)]:
            d = {"mediaType": LAYER, "size": len(layer), "digest": self.blob(repo, layer)}
            if layer_notes:
                d["annotations"] = layer_notes
            descriptors.append(d)
        doc = {"schemaVersion": 2, "mediaType": m.OCI_MANIFEST,
               "config": {"mediaType": config_type, "size": len(cfg), "digest": cfg_digest}, "layers": descriptors}
        doc.update(extra or {})
        digest = self.w.put_manifest(repo, json.dumps(doc).encode(), tuple(tags))
        if register:
            self.db_rows.append((repo, digest, tuple(tags)))
        return digest, cfg_digest

    def data(self, digest: str) -> Path:
        alg, hex_ = digest.split(":")
        return self.v2 / "blobs" / alg / hex_[:2] / hex_ / "data"

    def manifests(self, repo: str) -> Path:
        return self.v2 / "repositories" / repo / "_manifests"

    def replace(self, path: Path, how: str, target: str | None = None) -> None:
        """Put something hostile where a file was: a FIFO, a symbolic link, a sparse file."""
        content = path.read_bytes() if path.exists() else b""
        path.unlink()
        if how == "fifo":
            os.mkfifo(path)
        elif how == "symlink":
            os.symlink(target, path)
        elif how == "outside":   # a copy of the same content outside the root, linked to
            copy = self.outside / f"canary-{len(list(self.outside.iterdir()))}"
            copy.write_bytes(content)
            os.symlink(copy, path)
        elif how.startswith("sparse:"):
            with open(path, "wb") as f:
                f.truncate(int(how[7:]))
        elif how.startswith("padded:"):  # the same JSON, padded with spaces to a size
            path.write_bytes(content + b" " * (int(how[7:]) - len(content)))
        else:
            raise ValueError(how)


def baseline(t: Tree) -> None:
    """The good repository: two images, an index of them, a chart; tagged and registered."""
    amd, _ = t.image(GOOD, tags=("amd",))
    arm, _ = t.image(GOOD, json.dumps({"architecture": "arm64", "os": "linux"}).encode(), tags=("arm",))
    doc = {"schemaVersion": 2, "mediaType": m.OCI_INDEX,
           "manifests": [{"mediaType": m.OCI_MANIFEST, "size": 1, "digest": d,
                          "platform": {"architecture": a, "os": "linux"}} for d, a in ((amd, "amd64"), (arm, "arm64"))]}
    idx = t.w.put_manifest(GOOD, json.dumps(doc).encode(), ("multi",))
    t.db_rows.append((GOOD, idx, ("multi",)))
    t.image(GOOD, json.dumps({"name": "chart", "version": "1.0", "apiVersion": "v2"}).encode(),
            config_type=HELM_CONFIG, tags=("chart",))


def nested(depth: int) -> bytes:
    return b'{"name":"deep","values":' + b"[" * depth + b"]" * depth + b"}"


# ------------------------------------------------------------------------------ the cases

def blob_case(kind: str, how: str, target: str | None = None, reason: str = "") -> Callable[[Tree], list[Expected]]:
    """The manifest or config blob of a hostile repository's artifact replaced."""
    def build(t: Tree) -> list[Expected]:
        repo = f"hostile/{kind}"
        # a config of its own: the good repository's blobs stay as they are
        digest, cfg = t.image(repo, json.dumps({"architecture": "amd64", "os": "linux", "author": repo}).encode(),
                              tags=("v1",))
        t.replace(t.data(digest if kind == "manifest" else cfg), how, target)
        return [Expected(repo, digest, reason)]
    return build


def deep_case(where: str, depth: int) -> Callable[[Tree], list[Expected]]:
    def build(t: Tree) -> list[Expected]:
        repo = f"hostile/deep-{where}"
        if where == "chart":
            digest, _ = t.image(repo, nested(depth), config_type=HELM_CONFIG, tags=("1.0",))
            return [Expected(repo, digest, "config-too-deep")]
        if where == "config":   # the default processor reads the whole config as JSON too
            digest, _ = t.image(repo, nested(depth), config_type=THING_CONFIG, tags=("1.0",))
            return [Expected(repo, digest, "config-too-deep")]
        digest, _ = t.image(repo, tags=("1.0",), extra={"subject": json.loads(nested(depth))})
        return [Expected(repo, digest, "manifest-too-deep")]
    return build


def icon_case(how: str, target: str | None = None) -> Callable[[Tree], list[Expected]]:
    def build(t: Tree) -> list[Expected]:
        repo = "hostile/icon"
        icon = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
        digest, _ = t.image(repo, b"{}", config_type=THING_CONFIG, layers=[(icon, {ICON: "true"})], tags=("1",))
        t.replace(t.data(t.w.put_blob(icon)), how, target)
        return [Expected(repo, digest, "icon-unreadable")]
    return build


def tag_link_case(how: str) -> Callable[[Tree], list[Expected]]:
    def build(t: Tree) -> list[Expected]:
        repo = "hostile/tag"
        t.image(repo, tags=("good", "bad"))
        link = t.manifests(repo) / "tags/bad/current/link"
        if how == "loop":
            link.unlink()
            os.symlink("link", link)
        elif how == "loop2":       # current -> current: the folder on the way loops
            current = link.parent
            for p in current.iterdir():
                p.unlink()
            current.rmdir()
            os.symlink("current", current)
        else:
            t.replace(link, how)
        return [Expected(repo, "", "tag-link-unreadable")]
    return build


def revision_link_case(how: str) -> Callable[[Tree], list[Expected]]:
    def build(t: Tree) -> list[Expected]:
        repo = "hostile/revision"
        digest, _ = t.image(repo, tags=("v1",))
        alg, hex_ = digest.split(":")
        link = t.manifests(repo) / f"revisions/{alg}/{hex_}/link"
        if how == "loop":
            link.unlink()
            os.symlink("link", link)
        else:
            t.replace(link, how, "/dev/zero" if how == "symlink" else None)
        return [Expected(repo, digest, "revision-link-invalid")]
    return build


def outside_folder_case(which: str) -> Callable[[Tree], list[Expected]]:
    """A folder on the way replaced by a symbolic link to a copy of it outside the root."""
    def build(t: Tree) -> list[Expected]:
        repo = f"hostile/out-{which}"
        digest, _ = t.image(repo, tags=("v1",))
        if which == "blob":
            folder = t.data(digest).parent
            expected = [Expected(repo, digest, "manifest-unreadable")]
        elif which == "tags":
            folder = t.manifests(repo) / "tags"
            expected = [Expected(repo, "", "storage-unreadable")]
        else:  # the whole repository folder: storage does not have it, its database row is reported
            folder = t.v2 / "repositories" / repo
            expected = [Expected(repo, digest, "manifest-unknown")]
        copy = t.outside / f"folder-{which}"
        folder.rename(copy)
        os.symlink(copy, folder)
        return expected
    return build


def name_case(raw: bytes, where: str = "repository") -> Callable[[Tree], list[Expected]]:
    """A repository or tag folder whose name holds terminal controls or bytes that are not UTF-8."""
    def build(t: Tree) -> list[Expected]:
        name = os.fsdecode(raw)
        if where == "tag":
            repo = "hostile/tagname"
            digest, _ = t.image(repo, tags=("v1",))
            t.w.tag(repo, name, digest)
            return [Expected(repo, "", "name-refused")]
        t.image(f"hostile/{name}", tags=("v1",), register=False)
        return [Expected(printable(f"hostile/{name}"), "", "name-refused")]
    return build


def revision_name_case(t: Tree) -> list[Expected]:
    repo = "hostile/revname"
    digest, _ = t.image(repo, tags=("v1",))
    bad = t.manifests(repo) / "revisions/sha256/\x1b[31mred"
    bad.mkdir()
    (bad / "link").write_text(digest)
    return [Expected(repo, printable("sha256:\x1b[31mred"), "revision-link-invalid")]


def long_path_case(t: Tree) -> list[Expected]:
    """Repository folders nested past 4,096 bytes of path (PATH_MAX), with a manifest at the bottom."""
    fd = os.open(t.v2 / "repositories", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in ["hostile"] + ["a" * 200] * 24 + ["_manifests", "revisions", "sha256", "f" * 64]:
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                pass
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        link = os.open("link", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(link, b"sha256:" + b"f" * 64)
        os.close(link)
    finally:
        os.close(fd)
    return [Expected("hostile/" + "a" * 200 + "/" + "a*", "", "name-refused")]


CASES: dict[str, Callable[[Tree], list[Expected]]] = {
    "manifest-fifo": blob_case("manifest", "fifo", reason="manifest-unreadable"),
    "manifest-dev-zero": blob_case("manifest", "symlink", "/dev/zero", "manifest-unreadable"),
    "manifest-sparse-2g": blob_case("manifest", "sparse:2147483648", reason="manifest-too-large"),
    "manifest-padded-5m": blob_case("manifest", f"padded:{5 << 20}", reason="manifest-too-large"),
    "manifest-outside": blob_case("manifest", "outside", reason="manifest-unreadable"),
    "config-fifo": blob_case("config", "fifo", reason="config-unreadable"),
    "config-dev-zero": blob_case("config", "symlink", "/dev/zero", "config-unreadable"),
    "config-dev-urandom": blob_case("config", "symlink", "/dev/urandom", "config-unreadable"),
    "config-sparse-2g": blob_case("config", "sparse:2147483648", reason="config-too-large"),
    "config-padded-5m": blob_case("config", f"padded:{5 << 20}", reason="config-too-large"),
    "config-outside": blob_case("config", "outside", reason="config-unreadable"),
    "config-proc-self-mem": blob_case("config", "symlink", "/proc/self/mem", "config-unreadable"),
    "icon-fifo": icon_case("fifo"),
    "icon-dev-zero": icon_case("symlink", "/dev/zero"),
    "chart-nested-900": deep_case("chart", 900),
    "chart-nested-20000": deep_case("chart", 20000),
    "config-nested-900": deep_case("config", 900),
    "manifest-nested-900": deep_case("manifest", 900),
    "tag-link-loop": tag_link_case("loop"),
    "tag-folder-loop": tag_link_case("loop2"),
    "tag-link-fifo": tag_link_case("fifo"),
    "tag-link-sparse-2g": tag_link_case("sparse:2147483648"),
    "revision-link-loop": revision_link_case("loop"),
    "revision-link-dev-zero": revision_link_case("symlink"),
    "revision-link-fifo": revision_link_case("fifo"),
    "blob-folder-outside": outside_folder_case("blob"),
    "tags-folder-outside": outside_folder_case("tags"),
    "repository-folder-outside": outside_folder_case("repository"),
    "path-over-4096-bytes": long_path_case,
    "repository-name-escape": name_case(b"evil\x1b]0;owned\x07\x1b[2J"),
    "repository-name-not-utf8": name_case(b"bad\xff\xfename"),
    "repository-name-bidi": name_case("ok\u202egnp.exe".encode()),
    "tag-name-escape": name_case(b"v1\x1b[31mred\r", where="tag"),
    "revision-name-escape": revision_name_case,
}


def build(case: str, root: Path, outside: Path) -> tuple[Tree, list[Expected]]:
    """The tree of one case (the good repository first); (tree, the problems it must give)."""
    t = Tree(root, outside)
    baseline(t)
    return t, CASES[case](t)


def freeze_atimes(folder: Path) -> list[Path]:
    """Set every access time below folder (itself included) to the epoch, so that a later
    read (or listing) of any of them moves it; the paths, for read_since_frozen (listing the
    folder again would itself move the times)."""
    paths = [folder, *folder.rglob("*")]
    for p in paths:
        os.utime(p, (0, p.lstat().st_mtime), follow_symlinks=False)
    return paths


def read_since_frozen(paths: list[Path]) -> list[str]:
    """Which of the frozen paths were read or listed since."""
    return [str(p) for p in paths if p.lstat().st_atime != 0]


def run_artifacts(dsn: str, storage: Path | list[str], report: Path, timeout: float = RUN_SECONDS) -> dict:
    """The CLI in a subprocess on a storage folder (or --storage ... arguments): exit code,
    output, seconds, peak RSS of it and its readers, and whether it had to be killed."""
    storage_args = ["--storage", str(storage)] if isinstance(storage, Path) else storage
    out, err = report.with_suffix(".out"), report.with_suffix(".err")
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "harbor_upgrade", "artifacts", "--dsn", dsn,
                                 *storage_args, "--report", str(report)], stdout=o, stderr=e,
                                start_new_session=True)
    hung = threading.Event()

    def kill():
        hung.set()
        os.killpg(proc.pid, 9)

    timer = threading.Timer(timeout, kill)
    began = time.monotonic()
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)   # this child and the readers it waited for
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"code": proc.returncode, "hung": hung.is_set(), "seconds": time.monotonic() - began,
            "peak_rss": usage.ru_maxrss * 1024, "out": out.read_bytes(), "err": err.read_bytes(),
            "report": json.loads(report.read_text()) if report.exists() else None}


def good_rows(dsn: str) -> list[dict]:
    """The good repository's rows (times left out: a run stamps its own)."""
    with psycopg.connect(dsn) as conn:
        return [{k: v for k, v in r.items() if k not in ("push_time", "pull_time")}
                for r in artifact_rows(conn) if r["repository_name"] == GOOD]


def judge(result: dict, expected: list[Expected], rows_now: list[dict], clean_rows: list[dict],
          read_outside: list[str]) -> list[tuple[str, str]]:
    """What went wrong in one run, as (kind, detail): hang, traceback, unexpected-exit,
    not-reported, control-in-output, rows-differ, outside-read, memory. Empty: all held."""
    out, err = result["out"].decode(errors="replace"), result["err"].decode(errors="replace")
    wrong = []
    if result["hung"]:
        wrong.append(("hang", f"no end within {RUN_SECONDS}s"))
    if "Traceback" in out + err or "internal-error" in out + err:
        wrong.append(("traceback", err[-1500:]))
    if result["code"] != 1:
        wrong.append(("unexpected-exit", f"exit {result['code']}:\n{out}{err}"))
    problems = (result["report"] or {}).get("problems", [])
    if not (len(problems) == len(expected) and all(any(e.matches(p) for p in problems) for e in expected)
            and f"completed with {len(expected)} problems" in out
            and all(e.repository.rstrip("*") in out and e.reason in out for e in expected)):
        wrong.append(("not-reported", f"expected {expected}, reported {problems}:\n{out}"))
    controls = [c for c in out + err if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) < 0xa0]
    if controls:
        wrong.append(("control-in-output", repr(out + err)[-1500:]))
    if rows_now != clean_rows:
        wrong.append(("rows-differ", f"{rows_now} != {clean_rows}"))
    if read_outside:
        wrong.append(("outside-read", ", ".join(read_outside)))
    if result["peak_rss"] >= PEAK_RSS_LIMIT:
        wrong.append(("memory", f"peak RSS {result['peak_rss'] >> 20} MB"))
    return wrong


def run_clean(dsn: str, work: Path) -> tuple[dict, list[dict]]:
    """A tree with nothing hostile in it, registered in dsn (2.4 schema, no artifact rows) and
    read by `harbor-upgrade artifacts`: (the run's result, the good repository's rows)."""
    t = Tree(work / "storage", work / "outside")
    baseline(t)
    register(dsn, t.db_rows)
    result = run_artifacts(dsn, t.root, work / "report.json")
    return result, good_rows(dsn)


def run_case(case: str, dsn: str, work: Path, clean_rows: list[dict]) -> tuple[dict, list[tuple[str, str]]]:
    """One hostile case end to end: its tree under work, its rows registered in dsn (2.4 schema,
    no artifact rows), `harbor-upgrade artifacts` run with the folder beside the root frozen;
    (the run's result, what went wrong: judge's verdict against the clean run's rows)."""
    tree, expected = build(case, work / "storage", work / "outside")
    register(dsn, tree.db_rows)
    frozen = freeze_atimes(tree.outside)
    result = run_artifacts(dsn, tree.root, work / "report.json")
    return result, judge(result, expected, good_rows(dsn), clean_rows, read_since_frozen(frozen))
