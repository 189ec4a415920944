"""Collect results back through the transport: one tar stream, verified, resumable.

* Only tasks not already complete locally are fetched; a task is complete when its
  ``MANIFEST.sha256`` verifies. Collecting twice changes nothing.
* The stream is extracted into a scratch folder first, with every member checked
  (regular files and folders only, no absolute paths, nothing outside the target);
  each task's files are verified against its manifest and only then moved into
  ``results/<task>``. An interrupted collect leaves nothing half-done and the next one
  fetches only what is missing; a corrupted file is reported, never accepted.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hpctriton.errors import CollectError
from hpctriton.runs.merge import merge_task_dir
from hpctriton.runs.record import RunRecord
from hpctriton.schedulers import Scheduler
from hpctriton.shell import templates as templating
from hpctriton.transport import Transport

log = logging.getLogger("hpctriton.runs.collect")
MANIFEST = "MANIFEST.sha256"


@dataclass
class CollectReport:
    """What one collect did."""

    fetched: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    #: Tasks without a manifest (killed before writing one): kept, marked unverified.
    unverified: list[int] = field(default_factory=list)
    #: Task -> problems (checksum mismatches, missing files); those tasks were not accepted.
    corrupted: dict[int, list[str]] = field(default_factory=dict)
    #: Tasks with nothing to fetch yet (not started, or results not reachable).
    missing: list[int] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    #: Task -> files written by merging its load files (``hpctriton.runs.merge``).
    load_merged: dict[int, list[str]] = field(default_factory=dict)
    target: Path = Path(".")

    def to_json(self) -> dict[str, object]:
        return {"target": str(self.target), "fetched": self.fetched, "already": self.already,
                "unverified": self.unverified, "corrupted": self.corrupted,
                "missing": self.missing, "extra_files": self.extra_files,
                **({"load_merged": {str(k): v for k, v in self.load_merged.items()}}
                   if self.load_merged else {})}


def read_manifest(task_dir: Path) -> dict[str, str] | None:
    path = task_dir / MANIFEST
    if not path.is_file():
        return None
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, sep, name = line.partition("  ")
        if sep and len(digest) == 64:
            entries[name] = digest
    return entries


def verify_task_dir(task_dir: Path) -> list[str] | None:
    """Problems with a task folder against its manifest; None when it has no manifest."""
    manifest = read_manifest(task_dir)
    if manifest is None:
        return None
    problems = []
    if "state.json" not in manifest:
        problems.append("the manifest does not cover state.json (not written by job.sh?)")
    present = {p.relative_to(task_dir).as_posix() for p in task_dir.rglob("*") if p.is_file()}
    for name in sorted(present - set(manifest) - {MANIFEST} - _derived(present)):
        problems.append(f"{name}: not in the manifest")
    for name, digest in manifest.items():
        path = task_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            problems.append(f"{name}: sha256 {actual[:12]}… does not match the manifest's "
                            f"{digest[:12]}…")
    return problems


def _derived(names: set[str]) -> set[str]:
    """Files collect itself adds to a task folder after verifying it (merged load)."""
    return {n for n in names if n.startswith("load-merged")}


def is_complete(task_dir: Path) -> bool:
    problems = verify_task_dir(task_dir)
    return problems is not None and not problems


def _safe_members(archive: tarfile.TarFile, target: Path) -> None:
    """Extract only plain files and folders that stay inside ``target``."""
    root = target.resolve()
    for member in archive:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise CollectError(f"refusing archive member {member.name!r}: path escapes the target")
        if not (member.isfile() or member.isdir()):
            raise CollectError(f"refusing archive member {member.name!r}: not a regular file "
                               "(links and devices are never extracted)")
        dest = (root / name).resolve()
        if root != dest and root not in dest.parents:
            raise CollectError(f"refusing archive member {member.name!r}: outside the target")
        if member.isdir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        if source is None:
            continue
        with dest.open("wb") as fh:
            shutil.copyfileobj(source, fh)


def _fetch_script(remote_dir: str, tasks: Sequence[int], extras: Sequence[str]) -> str:
    """tar the task folders (required) and the extra files that exist (optional)."""
    return templating.render("hpctriton.runs:fetch.sh.j2", remote_dir=remote_dir,
                             task_dirs=[f"results/{t}" for t in tasks], extras=list(extras))


def collect(transport: Transport, scheduler: Scheduler[Any], record: RunRecord,
            tasks: Sequence[int], out_dir: Path | None = None) -> CollectReport:
    """Fetch ``tasks`` (those with something to fetch) into ``out_dir`` (default: the
    run's ``results/``)."""
    target = out_dir or record.results_dir
    target.mkdir(parents=True, exist_ok=True)
    report = CollectReport(target=target)
    wanted = []
    for task in tasks:
        if is_complete(target / str(task)):
            report.already.append(task)
        else:
            wanted.append(task)
    if not wanted:
        return report
    scheduler.prepare_collect(transport, record, wanted)
    present = _remote_task_dirs(transport, record, wanted)
    report.missing = [t for t in wanted if t not in present]
    fetch = [t for t in wanted if t in present]
    if not fetch:
        return report
    extras = scheduler.extra_result_files(record, fetch)
    for stale in target.glob(".incoming-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted collect
    scratch = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target))
    try:
        transport.fetch_tar_script(_fetch_script(record.remote_dir, fetch, extras),
                                   lambda archive: _safe_members(archive, scratch))
        for task in fetch:
            _accept(scratch / "results" / str(task), target / str(task), task, report)
        for name in extras:
            src = scratch / name
            if src.is_file():
                dest = target / PurePosixPath(name).relative_to("results")
                if not dest.exists() or dest.read_bytes() != src.read_bytes():
                    shutil.move(str(src), dest)
                report.extra_files.append(name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if report.corrupted:
        lines = [f"task {t}: " + "; ".join(p) for t, p in sorted(report.corrupted.items())]
        raise CollectError("results did not match their manifests and were not accepted:\n  "
                           + "\n  ".join(lines) + "\n(the files on the cluster are untouched; "
                           "`hpctriton collect` again after checking them)")
    return report


def _accept(incoming: Path, dest: Path, task: int, report: CollectReport) -> None:
    if not incoming.is_dir():
        report.missing.append(task)
        return
    problems = verify_task_dir(incoming)
    if problems:
        report.corrupted[task] = problems
        return
    if problems is None:
        report.unverified.append(task)
        log.warning("task %d has no manifest (killed before finishing?): kept unverified", task)
    if dest.exists():
        shutil.rmtree(dest)
    incoming.rename(dest)
    report.fetched.append(task)
    _merge_load(dest, task, report)


def _merge_load(task_dir: Path, task: int, report: CollectReport) -> None:
    """One load report for the whole job from its tasks' load files (written beside
    the verified results; never a reason to refuse them)."""
    if not (task_dir / "load").is_dir():
        return
    try:
        written = merge_task_dir(task_dir)
    except Exception as exc:  # noqa: BLE001 - a bad load file must not lose the results
        log.warning("task %d: cannot merge its load files: %s", task, exc)
        return
    if written:
        report.load_merged[task] = [p.name for p in written]


def _remote_task_dirs(transport: Transport, record: RunRecord,
                      tasks: Sequence[int]) -> set[int]:
    script = templating.render("hpctriton.runs:list_results.sh.j2",
                               results_dir=f"{record.remote_dir}/results", tasks=list(tasks))
    out = transport.run_script(script).check("listing remote results").stdout
    return {int(x) for x in out.split() if x.isdigit()}
