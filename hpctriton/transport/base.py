"""How hpctriton runs commands and moves files on the cluster side.

Two transports share this interface: :class:`~hpctriton.transport.ssh.SSHTransport`
(paramiko, to a login node) and :class:`~hpctriton.transport.local.LocalTransport`
(this machine). Every command goes through :meth:`Transport.run_script`, which logs
it at debug level, records it in :attr:`Transport.history` (tests count scheduler
calls from it) and returns exit code, stdout and stderr.

Scripts are handed to ``bash -s`` on standard input, so the user's login shell (bash,
zsh, even tcsh) never parses them, and one shell start-up can run many commands.
"""

from __future__ import annotations

import logging
import tarfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from hpctriton.errors import CommandError, RemoteError
from hpctriton.shell import quoting
from hpctriton.shell import templates as templating

log = logging.getLogger("hpctriton.transport")


class ByteStream(Protocol):
    """What a tar stream is read from: a pipe, or an SSH channel's file."""

    def read(self, size: int = -1, /) -> bytes: ...


#: ``finish(abort)`` of a tar stream: (exit code, stderr); see ``_open_tar_stream``.
Finish = Callable[[bool], tuple[int, str]]
#: Modes of what :meth:`Transport.put_files` creates. One rule for every staged file: a
#: bundle may hold secrets (``spec.json``'s headers, ``job.sh``'s ``env``, TLS keys in
#: ``files/``), the remote workdir often sits on a shared file system, and the jobs run
#: as the user who staged them, so nobody else needs to read any of it.
STAGED_FILE_MODE = 0o600
STAGED_DIR_MODE = 0o700
#: How much of a stream's tail is read at a time when it is drained.
DRAIN_CHUNK = 1 << 16


def drain(stream: ByteStream) -> None:
    """Read what is left of ``stream`` in small pieces, keeping none of it."""
    while stream.read(DRAIN_CHUNK):
        pass


@dataclass(frozen=True)
class CommandResult:
    """What one remote (or local) script did."""

    script: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self, what: str | None = None) -> CommandResult:
        """Raise :class:`CommandError` unless the script exited 0."""
        if self.exit_code != 0:
            raise CommandError(self.script, self.exit_code, self.stdout, self.stderr,
                               message=f"{what} failed (exit code {self.exit_code})" if what
                               else None)
        return self


@dataclass
class HistoryEntry:
    script: str
    exit_code: int | None
    started: float
    duration_s: float = 0.0


@dataclass
class Transport(ABC):
    """Run scripts and move files on one host."""

    #: Shown in messages: ``alice@login01:22`` or ``localhost``.
    label: str = "localhost"
    #: Exported before every script (the cluster's ``remote_env``).
    env: dict[str, str] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ----------------------------------------------------------- commands

    def run(self, argv: Sequence[str], *, timeout: float | None = 60.0,
            cwd: str | None = None) -> CommandResult:
        """Run one command given as an argument list."""
        script = templating.render("hpctriton.transport:command.sh.j2", argv=list(argv),
                                   cwd=cwd)
        return self.run_script(script, timeout=timeout)

    def _prefixed(self, script: str) -> str:
        env = {quoting.env_name(k): v for k, v in self.env.items()}
        return templating.render("hpctriton.transport:prefixed.sh.j2", env=env, script=script)

    def run_script(self, script: str, *, timeout: float | None = 60.0) -> CommandResult:
        """Run a bash script (one shell start-up for many commands)."""
        entry = HistoryEntry(script=script, exit_code=None, started=time.time())
        with self._lock:
            self.history.append(entry)
        log.debug("[%s] $ %s", self.label, script)
        started = time.monotonic()
        code, out, err = self._run(self._prefixed(script), timeout)
        entry.exit_code, entry.duration_s = code, time.monotonic() - started
        log.debug("[%s] exit %s in %.3fs; stderr: %s", self.label, code, entry.duration_s,
                  err.strip()[-500:])
        return CommandResult(script, code, out, err, entry.duration_s)

    def stream_lines(self, script: str, *, timeout: float | None = None) -> Iterator[str]:
        """Run a script and yield its stdout lines as they arrive (the wait loop)."""
        entry = HistoryEntry(script=script, exit_code=None, started=time.time())
        with self._lock:
            self.history.append(entry)
        log.debug("[%s] $ (streaming) %s", self.label, script)
        started = time.monotonic()
        try:
            yield from self._stream(self._prefixed(script), timeout)
        finally:
            entry.duration_s = time.monotonic() - started

    # ---------------------------------------------------------------- files

    @abstractmethod
    def _run(self, script: str, timeout: float | None) -> tuple[int, str, str]:
        """Run ``script`` with ``bash -s``; return exit code, stdout, stderr."""

    @abstractmethod
    def _stream(self, script: str, timeout: float | None) -> Iterator[str]:
        """Like ``_run``, yielding stdout lines; raise CommandError on failure."""

    @abstractmethod
    def put_files(self, files: Sequence[tuple[Path, str]], remote_dir: str) -> None:
        """Copy local files to ``remote_dir/<relative name>``: files ``STAGED_FILE_MODE``
        (0600), folders it creates ``STAGED_DIR_MODE`` (0700). A copy that does not
        arrive whole (a full disk, a quota) raises a plain error."""

    @abstractmethod
    def _open_tar_stream(self, script: str) -> tuple[ByteStream, Finish]:
        """Start ``script`` (which writes a tar stream); return (stdout, finish) where
        ``finish(abort)`` returns (exit code, stderr): with ``abort`` False it reads what
        is left of stdout in small pieces (never all at once) and waits for the exit
        code; with ``abort`` True it stops the command at once (the exit code is then -1).
        """

    def home(self) -> str:
        """The remote home folder (where relative workdirs live)."""
        script = templating.render("hpctriton.transport:home.sh.j2")
        result = self.run_script(script).check("reading $HOME")
        return result.stdout.strip()

    def resolve(self, path: str) -> str:
        """An absolute remote path: ``~`` and relative paths are under the remote home."""
        if path.startswith("~"):
            path = path[2:] if path.startswith("~/") else path[1:]
        if PurePosixPath(path).is_absolute():
            return path
        return str(PurePosixPath(self.home()) / path)

    def fetch_tar_script(self, script: str,
                         extract: Callable[[tarfile.TarFile], None]) -> str:
        """Run ``script``, which writes one gzipped tar stream, and ``extract`` it;
        return the script's stderr (the caller may read notes from it).

        stderr is read concurrently (a full stderr pipe stalls the stream) and the exit
        code is checked: a missing member gives an error, not an empty archive. When
        ``extract`` raises (a refused stream, Ctrl-C), the command is stopped at once:
        nothing more is read from the cluster.
        """
        entry = HistoryEntry(script=script, exit_code=None, started=time.time())
        with self._lock:
            self.history.append(entry)
        log.debug("[%s] $ (tar stream) %s", self.label, script)
        stream, finish = self._open_tar_stream(self._prefixed(script))
        failure: BaseException | None = None
        try:
            with tarfile.open(fileobj=stream, mode="r|gz") as archive:  # type: ignore[call-overload]
                extract(archive)
        except (tarfile.TarError, EOFError, OSError) as exc:
            failure = exc
        except BaseException:
            # the extractor refused the stream, or Ctrl-C: stop reading now
            entry.exit_code, _ = finish(True)
            raise
        code, err = finish(failure is not None)
        entry.exit_code = code
        if failure is not None:
            raise RemoteError(f"the result stream from {self.label} was damaged: {failure}"
                              + (f" (tar exit code {code}: {err.strip()[-300:]})"
                                 if code > 0 else ""))
        if code != 0:
            raise CommandError(script, code, "", err,
                               message=f"fetching results from {self.label} failed "
                                       f"(tar exit code {code})")
        return err

    def close(self) -> None:  # noqa: B027 - an optional hook; the local transport holds nothing
        """Release connections (no-op for local)."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, *needles: str) -> int:
        """How many logged scripts contain any of ``needles`` (tests count scheduler calls)."""
        return sum(1 for h in self.history if any(n in h.script for n in needles))
