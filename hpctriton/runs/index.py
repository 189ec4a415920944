"""The per-user index of run folders: "the run I just made", wherever its ``runs_dir`` is.

A run's records live in the ``runs_dir`` of the config it was submitted with (beside
that config, by default), so a later ``hpctriton report`` from another folder used to
look in ``./hpctriton-runs`` and show an older run without a word. Every run this user
submits is therefore also noted in a small index in the XDG state directory
(``$XDG_STATE_HOME/hpctriton/runs.json``, else ``~/.local/state/hpctriton/runs.json``):
its id, its folder and when it was made. Commands about "the newest run" (and a run
given by id or prefix) look there as well as in the default ``runs_dir``; ``--runs-dir``
and ``-c`` still narrow them to one folder.

The index is only a pointer: the run folder stays the truth. It is written atomically
(temp file + rename, 0600, in a 0700 folder) under an ``flock``, so concurrent submits
never lose each other's entries; it keeps the newest :data:`MAX_ENTRIES`; and it is
never a reason for a command to fail: a busy lock, a full disk or a damaged file costs
at worst an entry, with a warning. An entry whose folder is gone (deleted, moved) is
dropped the next time it is met, and the command says so.

Example::

    >>> from hpctriton.runs import index
    >>> found = index.newest_run()            # the newest run this user made
    >>> found.record.run_id, found.dropped    # and entries whose folders were gone
    ('20261121-224033-local-1a2b', [])
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctriton.errors import RunNotFound
from hpctriton.runs.record import RunRecord, atomic_write, list_runs

log = logging.getLogger("hpctriton.runs.index")

#: The index file and its lock, in :func:`state_dir`.
INDEX_NAME = "runs.json"
LOCK_NAME = "runs.lock"
INDEX_SCHEMA_VERSION = 1
#: Entries kept (the newest): enough for years of runs, small enough to read at once.
MAX_ENTRIES = 2000
#: How long a writer waits for another one before giving up on its entry (a warning).
LOCK_WAIT_S = 5.0
STATE_DIR_MODE = 0o700
INDEX_FILE_MODE = 0o600


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/hpctriton``, else ``~/.local/state/hpctriton`` (a relative
    ``XDG_STATE_HOME`` is ignored, as the XDG base-directory specification says).

    Example::

        >>> state_dir({"XDG_STATE_HOME": "/tmp/state"})
        PosixPath('/tmp/state/hpctriton')
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "hpctriton"


@dataclass(frozen=True)
class IndexEntry:
    """One run in the index: its id, its folder (absolute) and when it was made."""

    run_id: str
    path: Path
    created_at: str

    def to_json(self) -> dict[str, str]:
        return {"run_id": self.run_id, "path": str(self.path), "created_at": self.created_at}


@dataclass
class Found:
    """What a lookup found, and the index entries it dropped on the way (their folders
    were gone): the caller says so."""

    records: list[RunRecord] = field(default_factory=list)
    dropped: list[IndexEntry] = field(default_factory=list)

    @property
    def record(self) -> RunRecord:
        return self.records[0]


def _entries_of(data: Any) -> list[IndexEntry]:
    """The well-formed entries of a parsed index file (anything else is skipped)."""
    runs = data.get("runs") if isinstance(data, dict) else None
    entries = []
    for item in runs if isinstance(runs, list) else ():
        if not isinstance(item, dict):
            continue
        run_id, path, created = item.get("run_id"), item.get("path"), item.get("created_at")
        if (isinstance(run_id, str) and run_id and isinstance(path, str)
                and os.path.isabs(path) and isinstance(created, str)):
            entries.append(IndexEntry(run_id, Path(path), created))
    return entries


def read_index(folder: Path | None = None) -> list[IndexEntry]:
    """Every entry, newest first; an absent, unreadable or damaged index is empty (with
    a warning for the last two): it never stops a command.

    Example::

        >>> [e.run_id for e in read_index()][:1]
        ['20261121-224033-local-1a2b']
    """
    path = (folder or state_dir()) / INDEX_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot read the run index %s: %s", path, exc.strerror or exc)
        return []
    try:
        data = json.loads(text)
    except ValueError:
        log.warning("the run index %s is damaged; it starts again with the next run", path)
        return []
    return _newest_first(_entries_of(data))


def _newest_first(entries: Iterable[IndexEntry]) -> list[IndexEntry]:
    return sorted(entries, key=lambda e: (e.created_at, e.run_id), reverse=True)


@contextlib.contextmanager
def _locked(folder: Path, name: str = LOCK_NAME) -> Iterator[None]:
    """The index's lock (or another file's of the state folder, ``name``), waited for
    at most :data:`LOCK_WAIT_S` (``TimeoutError``)."""
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                 INDEX_FILE_MODE)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{folder / name} stayed locked for "
                                       f"{LOCK_WAIT_S:.0f} s") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock


#: The lock of the state folder's files (the schedules list uses it too).
locked = _locked


def _update(change: Callable[[list[IndexEntry]], list[IndexEntry]], what: str) -> bool:
    """Read, change and write the index under its lock; ``False`` (and a warning) when
    that could not be done. Never raises: the index is a convenience."""
    folder = state_dir()
    try:
        folder.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        with _locked(folder):
            entries = change(read_index(folder))[:MAX_ENTRIES]
            text = json.dumps({"schema_version": INDEX_SCHEMA_VERSION,
                               "runs": [e.to_json() for e in entries]}, indent=1)
            atomic_write(folder / INDEX_NAME, text + "\n", mode=INDEX_FILE_MODE)
        return True
    except Exception as exc:  # noqa: BLE001 - nothing about the index may fail a command
        log.warning("could not %s the run index in %s: %s", what, folder, exc)
        return False


def remember(record: RunRecord) -> bool:
    """Note a run in the index (called when a run is recorded). ``False`` when the index
    could not be written; the run itself is unaffected.

    Example::

        >>> remember(run.record)
        True
    """
    entry = IndexEntry(record.run_id, record.path.absolute(), record.created_at)

    def add(entries: list[IndexEntry]) -> list[IndexEntry]:
        return _newest_first([entry, *(e for e in entries if e.path != entry.path)])

    return _update(add, "add a run to")


def forget(entries: Iterable[IndexEntry]) -> bool:
    """Drop entries (their folders are gone)."""
    gone = {e.path for e in entries}
    if not gone:
        return True
    return _update(lambda current: [e for e in current if e.path not in gone],
                   "drop missing runs from")


# -------------------------------------------------------------------- lookup


def _present(entry: IndexEntry) -> bool:
    return (entry.path / "run.json").is_file()


def _load(entry: IndexEntry) -> RunRecord | None:
    """The entry's record; None (with a warning) when it is damaged: `runs` lists the
    others, as it does for a folder."""
    try:
        return RunRecord.load(entry.path)
    except RunNotFound as exc:
        log.warning("skipping %s", exc)
        return None


def _split(entries: list[IndexEntry]) -> tuple[list[IndexEntry], list[IndexEntry]]:
    """(present, gone), the gone ones dropped from the index."""
    present = [e for e in entries if _present(e)]
    gone = [e for e in entries if not _present(e)]
    forget(gone)
    return present, gone


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def all_runs(also: Path | None = None, limit: int | None = None) -> Found:
    """Every run of the index, and every run under ``also`` (the default ``runs_dir``:
    runs recorded before the index existed), newest first; at most ``limit`` of them
    (only those are read).

    Example::

        >>> [r.run_id for r in all_runs(Path("hpctriton-runs")).records][:2]
        ['20261121-224033-local-1a2b', '20261121-101500-asgc-slurm-9f8e']
    """
    present, gone = _split(read_index())
    records: list[RunRecord] = []
    for entry in present:
        if limit is not None and len(records) >= limit:
            break
        record = _load(entry)
        if record is not None:
            records.append(record)
    if also is not None:
        known = {os.path.realpath(r.path) for r in records}
        known |= {os.path.realpath(e.path) for e in present}
        records += [r for r in list_runs(also) if os.path.realpath(r.path) not in known]
    records.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
    return Found(records[:limit] if limit is not None else records, gone)


def newest_run(also: Path | None = None) -> Found:
    """The newest run this user made (the index), or under ``also`` when that one is
    newer; raises :class:`~hpctriton.errors.RunNotFound` when there is none."""
    dropped: list[IndexEntry] = []
    candidates: list[RunRecord] = []
    for entry in read_index():
        if not _present(entry):
            dropped.append(entry)
            continue
        record = _load(entry)
        if record is not None:
            candidates.append(record)
            break
    forget(dropped)
    if also is not None:
        candidates += list_runs(also)[:1]
    if not candidates:
        where = f" and none in {also}" if also is not None else ""
        raise RunNotFound(f"no runs yet: this user's run index ({state_dir() / INDEX_NAME}) "
                          f"lists none{where}; submit one, or point --runs-dir / -c at the "
                          "folder or config that holds them")
    candidates.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
    return Found(candidates[:1], dropped)


def find_any_run(ref: str | None, also: Path | None = None) -> Found:
    """A run by folder, id or unique id prefix among the index and ``also``; the newest
    when ``ref`` is None.

    Example::

        >>> find_any_run("20261121-2240").record.path
        PosixPath('/home/alice/kagra/hpctriton-runs/20261121-224033-local-1a2b')
    """
    if ref is None:
        return newest_run(also)
    if (Path(ref) / "run.json").is_file():
        return Found([RunRecord.load(Path(ref))])
    present, gone = _split(read_index())
    candidates = {e.path: e.run_id for e in present}
    if also is not None and also.is_dir():
        by_id: dict[str, list[Path]] = {}
        for entry in present:
            by_id.setdefault(entry.run_id, []).append(entry.path)
        for folder in also.iterdir():
            if (folder / "run.json").is_file() and not any(
                    _same_folder(folder, p) for p in by_id.get(folder.name, ())):
                candidates[folder.absolute()] = folder.name
    exact = [p for p, run_id in candidates.items() if run_id == ref]
    matches = exact or [p for p, run_id in candidates.items() if run_id.startswith(ref)]
    if len(matches) == 1:
        return Found([RunRecord.load(matches[0])], gone)
    if matches:
        names = sorted({candidates[p] for p in matches})
        if len(names) == 1:  # one id in two folders (a copy): name them
            raise RunNotFound(f"run {names[0]!r} is in several folders: "
                              + ", ".join(str(p) for p in sorted(matches)[:5])
                              + "; give the folder instead")
        raise RunNotFound(f"{ref!r} matches several runs: " + ", ".join(names[:5]))
    raise RunNotFound(f"no run {ref!r} in this user's run index"
                      + (f" or in {also}" if also is not None else "")
                      + "; `hpctriton runs` lists them")
