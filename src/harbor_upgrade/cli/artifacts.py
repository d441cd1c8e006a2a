"""`harbor-upgrade artifacts`: fill artifact metadata straight from registry storage.

    harbor-upgrade artifacts --dsn DSN (--storage STORAGE | --harbor-yml F)
                             [--jobs N] [--report FILE] [--resume] [--import-untagged]
                             [--s3-endpoint URL --s3-region R]

Exit codes:

    0  every artifact row filled; the data version is set so harbor-core does not walk again
    1  completed with N problems (each listed, and in --report): the rest is filled and
       the data version is set, as harbor-core does after its own walk
    2  bad input (storage spec, options that differ from the interrupted run)
    4  the database is not at the 2.4.0 schema, or another run holds the lock
    5  the database or the storage cannot be read (nothing is lost: rerun with --resume)
"""
from __future__ import annotations

import json
import time

import click

from ..artifacts import BackfillReport, Progress, backfill
from ..artifacts.backfill import BATCH_ARTIFACTS
from ..compose.session import required_database
from ..db.ledger import DATA_VERSION_ABSTRACTED
from ..errors import ExitStatus, InvalidInput
from ..private import check_writable, write_private
from ..registry import open_storage
from ..secrets import mask_data, mask_text, register_dsn
from ..terminal import printable
from . import DSN_PASSWORD_HELP, checked_dsn, cli
from .console import current

SHOWN_PROBLEMS = 20
PLAIN_EVERY_SECONDS = 10.0


class PlainProgress(Progress):
    """Periodic lines (logs, pipes): done/total, rate, ETA."""

    def __init__(self, every: float = PLAIN_EVERY_SECONDS):
        self.every = every

    def start(self, total: int, done: int) -> None:
        self.total, self.done, self.first = total, done, done
        self.began = self.last = time.monotonic()
        click.echo(f"artifacts: {total} rows in the database" + (f", {done} done before" if done else ""),
                   err=True)

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            click.echo(f"artifacts: {self.line(now)}", err=True)

    def line(self, now: float) -> str:
        rate = (self.done - self.first) / max(now - self.began, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.done}/{self.total} ({pct:.1f}%) {rate:.0f}/s ETA {eta:.0f}s"

    def finish(self) -> None:
        click.echo(f"artifacts: {self.line(time.monotonic())}", err=True)

    def note(self, text: str) -> None:
        click.echo(mask_text(text), err=True)

    def task(self, label: str) -> PlainProgress:
        return self


class BarProgress(Progress):
    """A progress bar with rate and ETA, for a terminal."""

    def start(self, total: int, done: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar
        self.bar = Bar(TextColumn("artifacts"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                       TextColumn("{task.fields[rate]}/s"), TimeRemainingColumn(),
                       console=Console(stderr=True))
        self.task_id = self.bar.add_task("artifacts", total=total, completed=done, rate="-")
        self.first, self.began = done, time.monotonic()
        self.bar.start()

    def advance(self, count: int) -> None:
        self.bar.advance(self.task_id, count)
        done = self.bar.tasks[0].completed
        rate = (done - self.first) / max(time.monotonic() - self.began, 1e-9)
        self.bar.update(self.task_id, rate=f"{rate:.0f}")

    def finish(self) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        self.bar.console.print(mask_text(text))

    def task(self, label: str) -> BarProgress:
        return self


def render(report: BackfillReport) -> list[str]:
    lines = [f"storage: {report.storage}",
             f"artifacts filled: {report.artifacts_done} (index children created: {report.children_created}, "
             f"untagged imported: {report.untagged_imported})",
             f"references written: {report.references_created}",
             f"manifests the database does not know (untagged): {report.untagged_found}"
             + ("" if report.untagged_imported else " (use --import-untagged to make them artifacts)"
                if report.untagged_found else ""),
             f"dangling tags ignored: {len(report.ignored_tags)}"]
    if report.empty_repositories:
        lines.append(f"empty repositories: {', '.join(report.empty_repositories)}")
    lines.append(f"data version: set to {DATA_VERSION_ABSTRACTED} (harbor-core will not walk the registry again)"
                 if report.data_version_set else
                 "data version: data_migrations has no row; harbor-core will walk the registry at its start")
    for p in report.problems[:SHOWN_PROBLEMS]:
        lines.append(f"problem: {p.repository}@{p.digest or '-'}: {p.reason}" + (f" ({p.detail})" if p.detail else ""))
    if len(report.problems) > SHOWN_PROBLEMS:
        lines.append(f"... and {len(report.problems) - SHOWN_PROBLEMS} more problems (see --report)")
    lines.append(f"completed with {len(report.problems)} problems in {report.seconds:.1f}s"
                 if report.problems else f"completed in {report.seconds:.1f}s")
    return lines


def storage_from_harbor_yml(path: str, s3_endpoint: str | None, s3_region: str | None):
    from ..config import read_harbor_yml
    cfg = read_harbor_yml(path, require_release=False)
    spec, kind, endpoint, region = cfg.storage_spec
    if kind not in ("filesystem", "s3"):
        raise InvalidInput(f"{path}: storage_service {kind} is not supported (filesystem and s3 are)",
                           reference="storage-unsupported")
    access, secret = cfg.s3_keys or (None, None)
    return open_storage(spec, s3_endpoint=s3_endpoint or endpoint, s3_region=s3_region or region,
                        s3_access_key=access, s3_secret_key=secret)


@cli.command("artifacts")
@click.option("--dsn", callback=checked_dsn,
              help="the Harbor database, already at the 2.4.0 schema (default with --harbor-yml of a Compose "
                   "installation: its harbor-db, started alone on 127.0.0.1)" + DSN_PASSWORD_HELP)
@click.option("--storage", help="the registry storage: the folder holding docker/registry/v2, "
                                "or s3://BUCKET[/ROOTDIRECTORY]")
@click.option("--harbor-yml", type=click.Path(dir_okay=False),
              help="read the storage from this harbor.yml (storage_service, data_volume) instead")
@click.option("--jobs", default=8, show_default=True, type=click.IntRange(1, 256),
              help="repositories read in parallel (on a filesystem by at most one process per CPU)")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="write the JSON report here")
@click.option("--resume", is_flag=True,
              help="continue an interrupted run where it stopped (a fresh run when there is none)")
@click.option("--import-untagged", is_flag=True,
              help="also make artifacts of manifests the database does not know (untagged revisions)")
@click.option("--batch", "batch_artifacts", default=BATCH_ARTIFACTS, show_default=True, type=click.IntRange(1),
              help="artifact rows per transaction (each commit is a checkpoint)")
@click.option("--s3-endpoint", help="S3 endpoint URL (S3-compatible services, moto, MinIO)")
@click.option("--s3-region", help="S3 region")
def artifacts_cmd(dsn: str | None, storage: str | None, harbor_yml: str | None, jobs: int, report_path: str | None,
                  resume: bool, import_untagged: bool, batch_artifacts: int, s3_endpoint: str | None,
                  s3_region: str | None) -> int:
    """Fill every artifact row of a 2.4.0 database from registry storage, as Harbor 2.4 stores a
    pushed artifact (type, media types, size, extra_attrs, annotations, icon), create the children
    of manifest lists and indexes with their references, and set the data version so harbor-core
    does not walk the registry again. Resumable (--resume); broken storage is reported, never fatal.

    Exit codes: 0 done; 1 completed with N problems (listed; the rest is filled); 2 bad input;
    4 database not at 2.4.0 or locked; 5 database or storage unreadable (rerun with --resume).
    """
    if dsn:
        register_dsn(dsn)
    if bool(storage) == bool(harbor_yml):
        raise InvalidInput("give exactly one of --storage and --harbor-yml", reference="storage-spec-invalid")
    if report_path:
        check_writable(report_path, "--report", is_dir=False)   # before anything is written
    if storage:
        backend = open_storage(storage, s3_endpoint=s3_endpoint, s3_region=s3_region)
    else:
        assert harbor_yml  # exactly one of the two was given (checked above)
        backend = storage_from_harbor_yml(harbor_yml, s3_endpoint, s3_region)
    progress = BarProgress() if current().stderr_tty else PlainProgress()
    try:
        with required_database(harbor_yml, dsn, "artifacts",
                               say=lambda m: click.echo(mask_text(m), err=True)) as url:
            report = backfill(url, backend, jobs=jobs, resume=resume, import_untagged=import_untagged,
                              progress=progress, batch_artifacts=batch_artifacts)
    finally:
        backend.close()
    if report_path:
        write_private(report_path, json.dumps(mask_data(report.to_dict()), indent=1) + "\n")
    for line in render(report):   # names from storage: printable, never terminal control
        click.echo(mask_text(printable(line)))
    return int(ExitStatus.OK if report.ok else ExitStatus.CHANGES_NEEDED)
