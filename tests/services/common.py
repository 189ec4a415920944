"""Shared plumbing for the test services: ports, waiting, daemons with logs, teardown.

Each service owns one temp folder (its *workdir*) holding its config, state and logs.
Every daemon runs in the foreground in its own process group, logging to a file there,
so a failed start can show the log and a stop can kill the whole group and its
descendants. Processes that escape both (slurmstepd double-forks; sshd sessions) still
name the workdir in their environment (``HPCTRITON_TEST_SERVICE=<workdir>``,
``SLURM_CONF=<workdir>/...``) or command line (sshd overwrites its environ with its
title): ``sweep`` kills those, so no daemon outlives the test session. A run killed
without teardown (SIGKILL) is cleaned up by the next one: ``reap_orphans``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MARK_VAR = "HPCTRITON_TEST_SERVICE"
WORKDIR_PREFIX = "hpct-"
OWNER_FILE = "owner.pid"  # pid of the test run that owns a workdir
KEEP_FILE = "keep"  # present: leave the folder (logs) for a human after teardown
LOG_TAIL_LINES = 30
#: How long a test service may take to become ready. Waits poll and return as soon as
#: it is, so a generous deadline costs nothing on a quiet machine and holds on a busy
#: 2-core one (a CI run beside other load once failed setups at 10–40 s deadlines).
START_DEADLINE_S = float(os.environ.get("HPCTRITON_TEST_START_S", "240"))
_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")  # a non-root PATH often lacks these


class ServiceError(RuntimeError):
    """A service could be tried but did not start; the message carries its log tail."""


class Unavailable(ServiceError):
    """A service cannot even be tried here (not root, binary missing): skip, or fail in CI."""


# --- preconditions, ports, folders ---------------------------------------------------


def require_root(service: str) -> None:
    """Refuse early: munged, slurmd and slurmctld as configured here need root."""
    if os.geteuid() != 0:
        raise Unavailable(f"{service} needs root (run the tests as root, e.g. in CI)")


def require_binaries(service: str, *names: str) -> dict[str, str]:
    """Find each binary on PATH or in the sbin folders; Unavailable names the install step."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    found = {name: shutil.which(name, path=search) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise Unavailable(
            f"{service}: {', '.join(missing)} not installed (run: sudo .ci/install-system.sh)"
        )
    return {name: path for name, path in found.items() if path is not None}


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ask the kernel for ``count`` distinct free ports (all held open until all are picked)."""
    with contextlib.ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]


def free_port(host: str = "127.0.0.1") -> int:
    """One free TCP port on ``host``."""
    return free_ports(1, host)[0]


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last lines of a log file, for error messages that CI output must explain."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def make_workdir(kind: str) -> Path:
    """A fresh ``/tmp/hpct-<kind>-XXXX``, world-traversable (munged checks its socket path).

    ``owner.pid`` names this process, so ``reap_orphans`` can tell a live run's folder
    from one a killed run left behind.
    """
    path = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{kind}-"))
    path.chmod(0o755)
    (path / OWNER_FILE).write_text(str(os.getpid()))
    return path


def remove_tree(path: Path) -> None:
    """Delete a workdir unless it was marked to keep; tolerate files vanishing meanwhile."""
    if not (path / KEEP_FILE).exists():
        shutil.rmtree(path, ignore_errors=True)


# --- processes -----------------------------------------------------------------------


@dataclass
class Daemon:
    """One foreground daemon we started, in its own process group, logging to ``log``."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def failure(self, what: str) -> ServiceError:
        """An error naming the daemon, its exit status and its log tail."""
        status = "running" if self.alive() else f"exited with {self.proc.returncode}"
        return ServiceError(
            f"{self.name} {what} ({status}); last {LOG_TAIL_LINES} lines of {self.log}:\n"
            f"{tail(self.log)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL it after ``timeout`` s, then any descendant left."""
        family = _descendants(self.proc.pid)
        if self.alive():
            _signal_group(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        _signal_group(self.proc.pid, signal.SIGKILL)
        _kill(family)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def service_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment minus inherited SLURM_* (an outer job's must not leak), marked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env[MARK_VAR] = str(workdir)
    env.update(extra or {})
    return env


def start_daemon(name: str, argv: Sequence[str], workdir: Path, env: Mapping[str, str]) -> Daemon:
    """Start a foreground daemon in a new session, stdout+stderr to ``workdir/name.log``."""
    log = workdir / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=workdir,
            start_new_session=True,
        )
    return Daemon(name, list(argv), proc, log)


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    daemon: Daemon | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``check`` until true; fail fast if ``daemon`` dies, with its log tail."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if check():
                return
        if daemon is not None and not daemon.alive():
            raise daemon.failure(f"died before {what}")
        if time.monotonic() > deadline:
            if daemon is not None:
                raise daemon.failure(f"not ready after {timeout:.0f} s: {what}")
            raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_for_port(daemon: Daemon, port: int, timeout: float, host: str = "127.0.0.1") -> None:
    """Wait until ``daemon`` accepts connections on host:port."""
    wait_for(lambda: port_open(host, port), timeout, f"listening on {host}:{port}", daemon)


def run(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a helper command; on failure raise ServiceError carrying its output."""
    try:
        result = subprocess.run(
            list(argv),
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{argv[0]} timed out after {timeout} s: {list(argv)}") from exc
    if check and result.returncode != 0:
        raise ServiceError(
            f"{list(argv)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _proc_read(pid: str, name: str) -> bytes:
    try:
        return (Path("/proc") / pid / name).read_bytes()
    except OSError:
        return b""


def _parent(pid: str) -> int:
    """The parent pid from /proc/PID/stat (the field after the ``(comm)``), 0 if gone."""
    stat = _proc_read(pid, "stat")
    return int(stat.rsplit(b")", 1)[1].split()[1]) if stat else 0


def _pids() -> list[str]:
    return [entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _ancestors() -> set[int]:
    """Our own pid and its parents: a sweep must never kill the test run itself."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        pid = _parent(str(pid))
    return found


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (sshd's per-connection children leave its group)."""
    children: dict[int, list[int]] = {}
    for name in _pids():
        children.setdefault(_parent(name), []).append(int(name))
    found: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def mentioning(workdir: Path) -> list[int]:
    """Processes whose environment or command line names ``workdir`` (ours, wherever)."""
    needle = os.fsencode(workdir)
    spared = _ancestors()
    return [
        int(pid)
        for pid in _pids()
        if int(pid) not in spared
        and (needle in _proc_read(pid, "environ") or needle in _proc_read(pid, "cmdline"))
    ]


def sweep(workdir: Path) -> list[int]:
    """SIGKILL every process that names ``workdir``; returns their pids."""
    pids = mentioning(workdir)
    _kill(pids)
    return pids


def _owner_alive(workdir: Path) -> bool:
    try:
        os.kill(int((workdir / OWNER_FILE).read_text()), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return True  # unreadable or being written: not ours to judge
    return True


def reap_orphans() -> list[int]:
    """Kill the processes, and remove the folders, of earlier runs that died untidily."""
    reaped: list[int] = []
    for workdir in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        if (workdir / OWNER_FILE).exists() and not _owner_alive(workdir):
            reaped += sweep(workdir)
            remove_tree(workdir)
    return reaped


# --- teardown ------------------------------------------------------------------------


@dataclass
class Cleanup:
    """Undo steps run last-in first-out, once, even at interpreter exit (atexit fallback)."""

    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        atexit.register(self.close)
        _exit_on_sigterm()

    def add(self, what: str, step: Callable[[], object]) -> None:
        self.steps.append((what, step))

    def close(self) -> None:
        """Run every step even if some fail; remember failures in ``errors``."""
        while self.steps:
            what, step = self.steps.pop()
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - teardown must go on
                self.errors.append(f"{what}: {exc}")
        atexit.unregister(self.close)

    @contextlib.contextmanager
    def on_error(self) -> Iterator[None]:
        """Close everything started so far if the block raises (a half-started service)."""
        try:
            yield
        except BaseException:
            self.close()
            raise


def _exit_on_sigterm() -> None:
    """Turn SIGTERM (CI timeout, ``kill PID``) into SystemExit so teardown and atexit run.

    Our daemons live in sessions of their own: a killed test run would leave them behind.
    Only when nobody else handles SIGTERM, and only from the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
