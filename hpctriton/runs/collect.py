"""Collect results back through the transport: one tar stream, verified per task.

* Only tasks not already complete locally are fetched; a task is complete when its
  ``MANIFEST.sha256`` verifies. Collecting twice changes nothing.
* Nothing is dereferenced on the cluster: only regular files and folders are archived;
  links, FIFOs, devices and sockets are reported (``skipped``) and left there.
* The stream is extracted into a scratch folder with every member checked (regular
  files and folders only, nothing absolute or with ``..``, no name twice, nothing
  outside the target; Python's ``tarfile`` data filter too where the Python has it),
  under a size cap (:data:`DEFAULT_MAX_MB`, raised by ``collect_max_mb`` or
  ``--max-size``). A bad member refuses its task only: the other tasks arrive.
* Each task is verified against its manifest and only then moved into place. A task
  without a manifest is accepted only as *unverified*, and says so. A corrupted one is
  reported and not accepted. The scratch folder is removed whatever happens.
* Nothing hpctriton did not write is deleted or overwritten: the target records what
  collect wrote (``.hpctriton-collect.json``); a non-empty ``-o`` folder without that
  record is refused, and a task folder holding files of someone else's is left alone.
* One collect at a time per run folder and per target (:mod:`hpctriton.runs.lock`).
"""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hpctriton.errors import CollectError, CommandError, RemoteError, UsageError
from hpctriton.runs.lock import LOCK_NAME, folder_lock
from hpctriton.runs.merge import merge_task_dir
from hpctriton.runs.record import RunRecord, atomic_write
from hpctriton.schedulers import Scheduler
from hpctriton.shell import templates as templating
from hpctriton.transport import Transport

log = logging.getLogger("hpctriton.runs.collect")
MANIFEST = "MANIFEST.sha256"
#: What collect wrote into a target folder: the run, each task's files, extra files.
OWNERSHIP = ".hpctriton-collect.json"
#: Scratch folders: ``<target>/.hpctriton-incoming-XXXX/``, marked inside by SCRATCH_MARK.
SCRATCH_PREFIX = ".hpctriton-incoming-"
SCRATCH_MARK = ".hpctriton-scratch"
#: Scratch folders of earlier versions (only ever in a run's own ``results/``).
LEGACY_SCRATCH_PREFIX = ".incoming-"
#: The default cap on what one collect extracts (a gzip bomb stops there).
DEFAULT_MAX_MB = 2048
#: Each tar member costs a header block: counted, so a million empty files hit the cap too.
TAR_BLOCK = 512
CHUNK = 1 << 20
#: find's one-letter file types (``-printf %y``), for the report.
FILE_TYPES = {"l": "a symbolic link", "p": "a FIFO", "s": "a socket",
              "c": "a character device", "b": "a block device", "D": "a door"}


@dataclass
class CollectReport:
    """What one collect did."""

    fetched: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    #: Tasks without a manifest (killed before writing one): kept, but unverified.
    unverified: list[int] = field(default_factory=list)
    #: Task -> problems (checksum mismatches, missing files); those tasks were not accepted.
    corrupted: dict[int, list[str]] = field(default_factory=dict)
    #: Task -> why it was not accepted: unsafe archive members, a stream that stopped,
    #: or a local folder holding files hpctriton did not write.
    refused: dict[int, list[str]] = field(default_factory=dict)
    #: Task -> links and other non-regular files on the cluster: reported, not fetched.
    skipped: dict[int, list[str]] = field(default_factory=dict)
    #: Tasks with nothing to fetch yet (not started, or results not reachable).
    missing: list[int] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    #: Local files collect would have replaced but did not write itself: left alone.
    kept: list[str] = field(default_factory=list)
    #: Problems of the stream as a whole (tar's exit code, a damaged stream, the cap).
    errors: list[str] = field(default_factory=list)
    #: Task -> files written by merging its load files (``hpctriton.runs.merge``).
    load_merged: dict[int, list[str]] = field(default_factory=dict)
    target: Path = Path(".")

    @property
    def complete(self) -> bool:
        """Every task with something to fetch arrived verified, and nothing was refused."""
        return not (self.corrupted or self.refused or self.errors or self.unverified
                    or self.kept)

    def problems(self) -> list[str]:
        """One line per problem, worst first (for messages)."""
        lines = [f"task {t}: not accepted: " + "; ".join(p)
                 for t, p in sorted({**self.corrupted, **self.refused}.items())]
        lines += self.errors
        lines += [f"task {t}: accepted UNVERIFIED (no {MANIFEST}: the job was killed "
                  "before it finished?)" for t in self.unverified]
        lines += [f"task {t}: not fetched from the cluster: " + "; ".join(p)
                  for t, p in sorted(self.skipped.items())]
        lines += [f"left as it is: {k}" for k in self.kept]
        return lines

    def to_json(self) -> dict[str, object]:
        return {"target": str(self.target), "fetched": self.fetched, "already": self.already,
                "unverified": self.unverified, "corrupted": self.corrupted,
                "refused": self.refused, "skipped": self.skipped,
                "missing": self.missing, "extra_files": self.extra_files, "kept": self.kept,
                "errors": self.errors, "complete": self.complete,
                **({"load_merged": {str(k): v for k, v in self.load_merged.items()}}
                   if self.load_merged else {})}


class CollectIncomplete(CollectError):
    """Some tasks were not accepted (the others were); ``report`` says what happened."""

    def __init__(self, report: CollectReport) -> None:
        self.report = report
        lines = [p for p in report.problems() if "UNVERIFIED" not in p]
        super().__init__(
            "results were fetched, but not all were accepted:\n  " + "\n  ".join(lines)
            + f"\n(accepted: {len(report.fetched)} task(s) into {report.target}; the files "
            "on the cluster are untouched; `hpctriton collect` again after checking them)")


# ------------------------------------------------------------------ verifying


def _bad_name(name: str) -> bool:
    """A manifest entry that is not a plain path inside the task folder."""
    path = PurePosixPath(name)
    return not name or "\0" in name or path.is_absolute() or ".." in path.parts


def read_manifest(task_dir: Path) -> dict[str, str] | None:
    """``MANIFEST.sha256`` as name -> digest; None without one (a link is not one)."""
    path = task_dir / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    entries = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            digest, sep, name = line.rstrip("\n").partition("  ")
            if sep and len(digest) == 64:
                entries[name] = digest
    return entries


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks (memory stays flat for any size)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative name, path) of everything in ``folder`` that is not a folder, links
    included and never followed."""
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            path = Path(root) / name
            yield path.relative_to(folder).as_posix(), path


def verify_task_dir(task_dir: Path) -> list[str] | None:
    """Problems with a task folder against its manifest; None when it has no manifest.

    A manifest entry that is absolute or holds ``..`` is refused before anything is
    read: a manifest comes from the cluster and must never name a file of this machine.
    """
    manifest = read_manifest(task_dir)
    if manifest is None:
        return None
    bad = sorted(n for n in manifest if _bad_name(n))
    if bad:
        return [f"the manifest names {n!r}, a path outside the task folder (refused; "
                "nothing was read)" for n in bad[:5]]
    problems = []
    if "state.json" not in manifest:
        problems.append("the manifest does not cover state.json (not written by job.sh?)")
    present = dict(_walk(task_dir))
    for name in sorted(set(present) - set(manifest) - {MANIFEST} - _derived(set(present))):
        problems.append(f"{name}: not in the manifest")
    for name, digest in manifest.items():
        path = present.get(name)
        if path is None:
            problems.append(f"{name}: missing")
            continue
        if path.is_symlink() or not path.is_file():
            problems.append(f"{name}: not a regular file")
            continue
        actual = file_sha256(path)
        if actual != digest:
            problems.append(f"{name}: sha256 {actual[:12]}… does not match the manifest's "
                            f"{digest[:12]}…")
    return problems


def _derived(names: set[str]) -> set[str]:
    """Files collect itself adds to a task folder after verifying it (merged load)."""
    return {n for n in names if n.startswith("load-merged")}


def is_complete(task_dir: Path) -> bool:
    if task_dir.is_symlink() or not task_dir.is_dir():
        return False
    problems = verify_task_dir(task_dir)
    return problems is not None and not problems


# --------------------------------------------------------------- what is ours


@dataclass
class Ownership:
    """What collect wrote into a target folder (``.hpctriton-collect.json``): the only
    things it may later replace."""

    folder: Path
    run_id: str
    tasks: dict[str, list[str]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)

    @classmethod
    def claim(cls, folder: Path, run_id: str, *, run_folder: bool) -> Ownership:
        """The record of ``folder``, after checking collect may write there: a folder
        of another run, or a non-empty ``-o`` folder that collect never wrote, is
        refused (the run's own ``results/`` is hpctriton's by construction)."""
        if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
            raise UsageError(f"{folder} is not a folder: collect into a folder")
        path = folder / OWNERSHIP
        if path.is_file() and not path.is_symlink():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                log.warning("%s is damaged (%s): treating nothing in %s as written by "
                            "collect", path, exc, folder)
                data = {}
            other = data.get("run_id")
            if isinstance(other, str) and other != run_id:
                raise UsageError(f"{folder} holds the results of run {other}: collect run "
                                 f"{run_id} into another folder")
            tasks = data.get("tasks")
            tasks = tasks if isinstance(tasks, dict) else {}
            files = data.get("files")
            files = files if isinstance(files, list) else []
            return cls(folder, run_id,
                       {str(k): [str(n) for n in v] for k, v in tasks.items()
                        if isinstance(v, list)},
                       {str(n) for n in files})
        if not run_folder and folder.is_dir():
            foreign = sorted(e.name for e in folder.iterdir()
                             if e.name not in (LOCK_NAME, OWNERSHIP))
            if foreign:
                shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
                raise UsageError(
                    f"{folder} is not empty ({shown}) and hpctriton never collected into it "
                    f"(no {OWNERSHIP}): collect never deletes or overwrites files it did not "
                    "write, so collect into a new or empty folder (or into the run folder, "
                    "without -o)")
        return cls(folder, run_id)

    def save(self) -> None:
        data = {"schema_version": 1, "run_id": self.run_id,
                "tasks": dict(sorted(self.tasks.items(), key=lambda kv: int(kv[0])
                                     if kv[0].isdigit() else -1)),
                "files": sorted(self.files)}
        atomic_write(self.folder / OWNERSHIP, json.dumps(data, indent=1) + "\n")

    def foreign_files(self, task: int) -> list[str]:
        """Files in ``<folder>/<task>`` that collect did not write (empty: replaceable)."""
        dest = self.folder / str(task)
        if not dest.exists() and not dest.is_symlink():
            return []
        if dest.is_symlink() or not dest.is_dir():
            return [dest.name]
        present = dict(_walk(dest))
        ours = set(self.tasks.get(str(task), ())) | {MANIFEST} | _derived(set(present))
        manifest = read_manifest(dest) or {}
        ours |= {n for n in manifest if not _bad_name(n)}
        return sorted(n for n, path in present.items()
                      if n not in ours or path.is_symlink())


# ------------------------------------------------------------------ extracting


class StreamTooBig(Exception):
    """The stream holds more than the cap allows (a gzip bomb, or very large results)."""


@dataclass
class _Extractor:
    """Extracts one collect's tar stream into ``scratch``, member by member.

    Tasks own the members under ``results/<task>/``; a member that fails a check is
    not written and refuses its task (the rest of the stream goes on). Members of no
    task (other than the expected extra files) are refused as strays.
    """

    scratch: Path
    tasks: set[int]
    extras: set[str]
    max_bytes: int
    total: int = 0
    refused: dict[Any, list[str]] = field(default_factory=dict)
    strays: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    #: The task whose member was being written when the stream stopped.
    current: Any = None
    #: Who owns a member, when the stream holds several runs (:func:`collect_many`):
    #: ``(run id, task)``; by default a member of ``results/<task>/`` is its task's.
    owner_of: Callable[[PurePosixPath], Hashable | None] | None = None

    def __call__(self, archive: tarfile.TarFile) -> None:
        for member in archive:
            self._member(archive, member)
            self.current = None

    def _owner(self, path: PurePosixPath) -> Any:
        if self.owner_of is not None:
            return self.owner_of(path)
        parts = path.parts
        if len(parts) >= 2 and parts[0] == "results" and parts[1].isdigit() \
                and int(parts[1]) in self.tasks:
            return int(parts[1])
        return None

    def _member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        path = PurePosixPath(member.name)
        task = self._owner(path)
        self.current = task
        self.total += TAR_BLOCK + max(0, member.size)
        if self.total > self.max_bytes:
            raise StreamTooBig(
                f"the results exceed the cap of {self.max_bytes // (1 << 20)} MB (at "
                f"{member.name!r}): nothing more was read. If they are really that large, "
                "raise the cap (collect --max-size MB, or clusters.<name>.collect_max_mb)")
        problem = self._problem(member, path)
        if task is None and problem is None and member.name not in self.extras:
            problem = "not a file collect asked for"
        if problem is not None:
            text = f"refusing archive member {member.name!r}: {problem}"
            if task is None:
                self.strays.append(text)
            else:
                self.refused.setdefault(task, []).append(text)
            return
        if task is not None and task in self.refused:
            return  # a refused task: the rest of its members are not written
        self.seen.add(str(path))
        try:
            self._write(archive, member, path)
        except OSError as exc:
            text = f"cannot write archive member {member.name!r}: {exc.strerror or exc}"
            if task is None:
                self.strays.append(text)
            else:
                self.refused.setdefault(task, []).append(text)

    def _problem(self, member: tarfile.TarInfo, path: PurePosixPath) -> str | None:
        if not member.name or path.is_absolute() or ".." in path.parts:
            return "its path leaves the target"
        if member.issym():
            return f"a symbolic link (to {member.linkname!r}): links are never extracted"
        if member.islnk():
            return f"a hard link (to {member.linkname!r}): links are never extracted"
        if member.ischr() or member.isblk():
            return "a device file: only regular files and folders are extracted"
        if member.isfifo():
            return "a FIFO: only regular files and folders are extracted"
        if not (member.isfile() or member.isdir()):
            return "not a regular file or folder"
        if str(path) in self.seen:
            return "the name appears twice in the stream"
        data_filter = getattr(tarfile, "data_filter", None)  # Python 3.11.4+, 3.10.12+
        if data_filter is not None:
            try:
                data_filter(member, str(self.scratch))
            except tarfile.TarError as exc:
                return f"refused by tarfile's data filter: {exc}"
        dest = os.path.realpath(self.scratch / path)
        if os.path.commonpath([dest, os.path.realpath(self.scratch)]) != \
                os.path.realpath(self.scratch):
            return "outside the target"
        return None

    def _write(self, archive: tarfile.TarFile, member: tarfile.TarInfo,
               path: PurePosixPath) -> None:
        dest = self.scratch / path
        if member.isdir():
            dest.mkdir(parents=True, exist_ok=True)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        # O_EXCL and O_NOFOLLOW: never replace a file, never write through a link
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                while chunk := source.read(CHUNK):
                    out.write(chunk)


def _skipped(stderr: str, tasks: set[int]) -> tuple[dict[int, list[str]], list[str]]:
    """The fetch script's ``@@SKIP <type> <path>`` lines, by task."""
    by_task: dict[int, list[str]] = {}
    other: list[str] = []
    for line in stderr.splitlines():
        if not line.startswith("@@SKIP "):
            continue
        _, kind, name = (line.split(" ", 2) + ["", ""])[:3]
        parts = PurePosixPath(name).parts
        what = FILE_TYPES.get(kind, f"not a regular file ({kind})")
        task = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
        if task is not None and task in tasks:
            inside = "/".join(parts[2:]) or f"results/{task} itself"
            by_task.setdefault(task, []).append(f"{inside}: {what} (never followed)")
        else:
            other.append(f"{name}: {what} (never followed)")
    return by_task, other


def _fetch_script(remote_dir: str, tasks: Sequence[int], extras: Sequence[str],
                  task_dirs: Sequence[str] = ()) -> str:
    """tar the task folders (``results/<task>``, and ``task_dirs`` as given) and the
    extra files that exist, following no link."""
    return templating.render("hpctriton.runs:fetch.sh.j2", remote_dir=remote_dir,
                             task_dirs=[f"results/{t}" for t in tasks] + list(task_dirs),
                             extras=list(extras))


# --------------------------------------------------------------------- collect


def collect(transport: Transport, scheduler: Scheduler[Any], record: RunRecord,
            tasks: Sequence[int], out_dir: Path | None = None, *,
            max_mb: int | None = None) -> CollectReport:
    """Fetch ``tasks`` (those with something to fetch) into ``out_dir`` (default: the
    run's ``results/``), at most ``max_mb`` megabytes (default :data:`DEFAULT_MAX_MB`).

    Raises :class:`CollectIncomplete` (carrying the report) when some task was not
    accepted; the tasks that verified are in place either way. Unverified tasks are in
    the report (``unverified``), not an exception: their files are there.
    """
    run_folder = out_dir is None
    target = record.results_dir if out_dir is None else out_dir
    max_bytes = (max_mb or DEFAULT_MAX_MB) << 20
    with folder_lock(record.path, "collect"):
        Ownership.claim(target, record.run_id, run_folder=run_folder)  # before any write
        with contextlib.ExitStack() as stack:
            if not run_folder:
                stack.enter_context(folder_lock(target, "collect"))
            ownership = Ownership.claim(target, record.run_id, run_folder=run_folder)
            return _collect(transport, scheduler, record, list(tasks), ownership, max_bytes,
                            run_folder)


def _remove_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not remove the scratch folder %s", path)


def _stale_scratch(target: Path, run_folder: bool) -> list[Path]:
    """Scratch folders of collects that were killed: only those collect marked as its own
    (and, in a run's own results/, those of earlier versions)."""
    stale = []
    for entry in target.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            continue
        marked = entry.name.startswith(SCRATCH_PREFIX) and (entry / SCRATCH_MARK).is_file()
        legacy = run_folder and entry.name.startswith(LEGACY_SCRATCH_PREFIX)
        if marked or legacy:
            stale.append(entry)
    return stale


def _collect(transport: Transport, scheduler: Scheduler[Any], record: RunRecord,
             tasks: list[int], ownership: Ownership, max_bytes: int,
             run_folder: bool) -> CollectReport:
    target = ownership.folder
    target.mkdir(parents=True, exist_ok=True)
    report = CollectReport(target=target)
    for stale in _stale_scratch(target, run_folder):
        _remove_scratch(stale)
    wanted: list[int] = []
    for task in tasks:
        (report.already if is_complete(target / str(task)) else wanted).append(task)
    if not wanted:
        return report
    scheduler.prepare_collect(transport, record, wanted)
    present = _remote_task_dirs(transport, record, wanted)
    report.missing = [t for t in wanted if t not in present]
    fetch = [t for t in wanted if t in present]
    if not fetch:
        return report
    extras = scheduler.extra_result_files(record, fetch)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=target))
    try:
        (scratch / SCRATCH_MARK).write_text(f"pid {os.getpid()}\n", encoding="utf-8")
        extractor = _Extractor(scratch, set(fetch), set(extras), max_bytes)
        stderr = ""
        try:
            stderr = transport.fetch_tar_script(
                _fetch_script(record.remote_dir, fetch, extras), extractor)
        except StreamTooBig as exc:
            report.errors.append(str(exc))
        except CommandError as exc:
            stderr = exc.stderr
            report.errors.append(str(exc).splitlines()[0] + _tail(exc.stderr))
        except RemoteError as exc:
            report.errors.append(str(exc))
        report.skipped, other = _skipped(stderr, set(fetch))
        report.errors += [f"not fetched: {o}" for o in other]
        report.errors += extractor.strays
        for task in fetch:
            _accept(scratch, task, ownership, report, extractor)
        for name in extras:
            _accept_extra(scratch, name, ownership, report)
    finally:
        ownership.save()
        _remove_scratch(scratch)
    if report.corrupted or report.refused or report.errors:
        raise CollectIncomplete(report)
    return report


def _tail(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if not ln.startswith("@@SKIP ")]
    return (": " + " / ".join(lines[-3:])) if lines else ""


@dataclass
class _Received:
    """What the stream did to one run's tasks (a run of a stream of several)."""

    refused: dict[int, list[str]]
    current: int | None


def _accept(scratch: Path, task: int, ownership: Ownership, report: CollectReport,
            extractor: _Extractor | _Received) -> None:
    incoming = scratch / "results" / str(task)
    if task in extractor.refused:
        report.refused[task] = extractor.refused[task]
        return
    if extractor.current == task:
        report.refused[task] = ["the stream stopped while its files arrived"]
        return
    skipped = report.skipped.get(task, [])
    if not incoming.is_dir():
        if any(s.startswith(f"results/{task} itself") for s in skipped):
            report.refused[task] = [f"results/{task} on the cluster is not a folder: "
                                    + "; ".join(skipped)]
        elif report.errors:
            report.refused[task] = ["not fetched: the stream stopped before it"]
        else:
            report.missing.append(task)
        return
    problems = verify_task_dir(incoming)
    if problems:
        report.corrupted[task] = problems
        return
    if problems is None and report.errors:
        # no manifest to tell a whole task from part of one, and the stream broke
        report.refused[task] = ["no manifest, and the stream did not end cleanly: its "
                                "files may be incomplete"]
        return
    foreign = ownership.foreign_files(task)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        report.refused[task] = [
            f"{ownership.folder / str(task)} holds files hpctriton did not write ({shown}): "
            "left as it is (move them away, then collect again)"]
        return
    if problems is None:
        report.unverified.append(task)
        log.warning("task %d has no manifest (killed before finishing?): kept UNVERIFIED",
                    task)
    dest = ownership.folder / str(task)
    if dest.exists() or dest.is_symlink():
        old = scratch / f"replaced-{task}"
        dest.rename(old)  # then the new one in its place; the old goes with the scratch
    incoming.rename(dest)
    report.fetched.append(task)
    _merge_load(dest, task, report)
    ownership.tasks[str(task)] = sorted(name for name, _ in _walk(dest))


def _accept_extra(scratch: Path, name: str, ownership: Ownership,
                  report: CollectReport) -> None:
    """A scheduler's extra file (``slurm-<job>.out``): placed unless a file collect did
    not write is in the way."""
    src = scratch / name
    if src.is_symlink() or not src.is_file():
        return
    relative = PurePosixPath(name).relative_to("results").as_posix()
    dest = ownership.folder / relative
    if dest.is_symlink() or dest.exists():
        same = dest.is_file() and not dest.is_symlink() and filecmp.cmp(src, dest,
                                                                         shallow=False)
        if not same:
            if relative not in ownership.files or dest.is_symlink() or not dest.is_file():
                report.kept.append(f"{dest} (not written by hpctriton; the cluster's copy "
                                   "differs and was not written over it)")
                return
            os.replace(src, dest)
            ownership.files.add(relative)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        ownership.files.add(relative)
    report.extra_files.append(name)


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


# ------------------------------------------------------------ several runs at once


def collect_many(transport: Transport, scheduler: Scheduler[Any],
                 items: Sequence[tuple[RunRecord, Sequence[int]]], root: str, *,
                 max_mb: int | None = None) -> dict[str, CollectReport]:
    """Fetch the ended tasks of several runs whose remote folders are ``<root>/<run id>``
    (the links of a schedule) through ONE tar stream, each run verified and placed as
    :func:`collect` does, into its own ``results/``. Returns each run's report (a run
    with a refused task is reported, not raised: the others arrive)."""
    max_bytes = (max_mb or DEFAULT_MAX_MB) << 20
    for record, _ in items:
        if record.remote_dir != f"{root.rstrip('/')}/{record.run_id}":
            raise UsageError(f"run {record.run_id} is not in {root}: collect it alone")
    with contextlib.ExitStack() as stack:
        owned: dict[str, tuple[RunRecord, Ownership, list[int]]] = {}
        reports: dict[str, CollectReport] = {}
        for record, tasks in items:
            stack.enter_context(folder_lock(record.path, "collect"))
            ownership = Ownership.claim(record.results_dir, record.run_id, run_folder=True)
            target = ownership.folder
            target.mkdir(parents=True, exist_ok=True)
            for stale in _stale_scratch(target, True):
                _remove_scratch(stale)
            report = reports[record.run_id] = CollectReport(target=target)
            wanted: list[int] = []
            for task in tasks:
                (report.already if is_complete(target / str(task)) else wanted).append(task)
            if wanted:
                scheduler.prepare_collect(transport, record, wanted)
                owned[record.run_id] = (record, ownership, wanted)
        if not owned:
            return reports
        script = templating.render(
            "hpctriton.runs:list_many.sh.j2", root=root,
            task_dirs=[f"{run_id}/results/{t}" for run_id, (_, _, w) in owned.items()
                       for t in w])
        present = set(transport.run_script(script).check("listing remote results")
                      .stdout.split("\n"))
        fetch: dict[str, list[int]] = {}
        for run_id, (_, _, wanted) in owned.items():
            reports[run_id].missing = [t for t in wanted
                                       if f"{run_id}/results/{t}" not in present]
            got = [t for t in wanted if f"{run_id}/results/{t}" in present]
            if got:
                fetch[run_id] = got
        if not fetch:
            return reports
        extras = {run_id: scheduler.extra_result_files(owned[run_id][0], tasks)
                  for run_id, tasks in fetch.items()}
        units = {(run_id, t) for run_id, tasks in fetch.items() for t in tasks}

        def owner_of(path: PurePosixPath) -> Hashable | None:
            parts = path.parts
            if len(parts) >= 3 and parts[1] == "results" and parts[2].isdigit() \
                    and (parts[0], int(parts[2])) in units:
                return (parts[0], int(parts[2]))
            return None

        first = owned[next(iter(fetch))][1].folder
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=first))
        try:
            (scratch / SCRATCH_MARK).write_text(f"pid {os.getpid()}\n", encoding="utf-8")
            all_extras = {f"{run_id}/{name}" for run_id, names in extras.items()
                          for name in names}
            extractor = _Extractor(scratch, set(), all_extras, max_bytes, owner_of=owner_of)
            errors: list[str] = []
            stderr = ""
            try:
                stderr = transport.fetch_tar_script(_fetch_script(
                    root, [], sorted(all_extras), [f"{r}/results/{t}" for r, t in
                                                   sorted(units)]), extractor)
            except StreamTooBig as exc:
                errors.append(str(exc))
            except CommandError as exc:
                stderr = exc.stderr
                errors.append(str(exc).splitlines()[0] + _tail(exc.stderr))
            except RemoteError as exc:
                errors.append(str(exc))
            for run_id, tasks in fetch.items():
                record, ownership, _ = owned[run_id]
                report = reports[run_id]
                prefix = f"{run_id}/"
                mine = "\n".join(
                    line.replace(f" {prefix}", " ", 1) for line in stderr.splitlines()
                    if line.startswith("@@SKIP ") and f" {prefix}" in line)
                report.skipped, other = _skipped(mine, set(tasks))
                report.errors += errors + [f"not fetched: {o}" for o in other]
                current = extractor.current
                received = _Received(
                    {t: v for (r, t), v in extractor.refused.items() if r == run_id},
                    current[1] if isinstance(current, tuple) and current[0] == run_id
                    else None)
                for task in tasks:
                    _accept(scratch / run_id, task, ownership, report, received)
                for name in extras[run_id]:
                    _accept_extra(scratch / run_id, name, ownership, report)
                ownership.save()
            strays = extractor.strays
            if strays:
                for report in reports.values():
                    report.errors += strays
        finally:
            _remove_scratch(scratch)
        return reports
