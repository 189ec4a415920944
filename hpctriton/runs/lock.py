"""One hpctriton at a time per folder: a run folder, or a ``collect -o`` target.

Two collects of one run started a second apart used to delete each other's scratch
folders and accept half-fetched tasks. Commands that change a run folder (collect,
cancel, resubmit) or write into a collect target take an exclusive ``flock`` on a lock
file in it first; a second command finds it taken and stops with a message naming the
holder, rather than waiting on a collect that may take minutes.

Example::

    >>> with folder_lock(run.path, "collect"):
    ...     ...  # nobody else changes the run folder meanwhile
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from hpctriton.errors import UsageError

#: The lock file, in the locked folder (hpctriton's own; never a result).
LOCK_NAME = ".hpctriton.lock"


class FolderBusy(UsageError):
    """Another hpctriton command holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold ``folder``'s lock for ``what`` (a command name), or raise :class:`FolderBusy`.

    The lock is released when the process ends, however it ends (``flock``): a killed
    collect never leaves a folder locked.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            raise FolderBusy(
                f"{folder} is in use by another hpctriton command"
                + (f" ({holder})" if holder else "")
                + f": this {what} did nothing; run it again when that one has ended") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
