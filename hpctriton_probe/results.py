"""The results document and its safe writing.

``results.json`` is rewritten after every check through a temporary file and
``os.replace``, so whatever kills the job (SIGTERM, its time limit, a node failure)
leaves the last complete version on disk, never a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import signal
import socket
import sys
import tempfile
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

from hpctriton_probe import __version__

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry, ResultsDocument, RunInfo, Summary

RESULTS_SCHEMA_VERSION = 1

#: Exit code of a probe stopped by SIGTERM (128 + 15, as a shell reports it).
EXIT_INTERRUPTED = 143


class Interrupted(SystemExit):
    """SIGTERM arrived. A ``SystemExit`` so that ``except Exception`` inside a check
    cannot swallow it, and gevent's hub passes it on without printing a traceback."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds, the form ``state.json`` uses."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def tritonclient_version() -> Optional[str]:
    """The installed tritonclient's version, from its ``dist-info`` folder name.

    Neither importing tritonclient nor ``importlib.metadata`` (about 20 ms to import
    and a scan of every path entry) is needed for that: the folder sits beside the
    package.
    """
    import glob
    import importlib.util

    try:
        spec = importlib.util.find_spec("tritonclient")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    site = os.path.dirname(list(spec.submodule_search_locations)[0])
    found = sorted(glob.glob(os.path.join(site, "tritonclient-*.dist-info")) +
                   glob.glob(os.path.join(site, "tritonclient-*.egg-info")))
    if not found:
        return None
    name = os.path.basename(found[-1])
    return name[len("tritonclient-"):].rsplit(".", 1)[0]


def new_results(run_id: str, task: int, *,
                environ: Optional[Mapping[str, str]] = None) -> ResultsDocument:
    """An empty results document for one task, with the run's identity filled in."""
    env = os.environ if environ is None else environ
    run: RunInfo = {
        "run_id": run_id,
        "task": task,
        "hostname": socket.gethostname(),
        "job_id": env.get("SLURM_JOB_ID") or env.get("DICOS_JOB_ID"),
        "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "started_at": utc_now(),
        "ended_at": None,
        "interrupted": False,
        "versions": {
            "probe": __version__,
            "python": platform.python_version(),
            "tritonclient": tritonclient_version(),
        },
    }
    return {"schema_version": RESULTS_SCHEMA_VERSION, "run": run, "checks": [],
            "summary": summarize([])}


def summarize(checks: Sequence[ResultEntry]) -> Summary:
    """Counts per status; ``ok`` is true when nothing failed or errored."""
    counts = Counter(entry["status"] for entry in checks)
    return {"pass": counts["pass"], "fail": counts["fail"], "error": counts["error"],
            "skip": counts["skip"], "total": len(checks),
            "ok": counts["fail"] == 0 and counts["error"] == 0}


def exit_code(results: ResultsDocument) -> int:
    """0 all passed (skips allowed), 1 a check failed or errored, 143 interrupted."""
    if results["run"].get("interrupted"):
        return EXIT_INTERRUPTED
    return 0 if summarize(results["checks"])["ok"] else 1


def atomic_write(path: str, text: str, durable: bool = True) -> None:
    """Write ``text`` to ``path`` so readers only ever see a complete file.

    ``durable`` also fsyncs (survives a node crash, costs milliseconds); the rename
    alone already guarantees a complete file to every reader and to a killed job.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are for reading
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class ResultsWriter:
    """Keeps ``<out_dir>/results.json`` equal to the results document.

    A SIGTERM that arrives while a file is being written is held back until the
    write is complete (see ``SigtermGuard``).
    """

    def __init__(self, out_dir: str, name: str = "results.json") -> None:
        os.makedirs(out_dir, exist_ok=True)
        self.path = os.path.join(out_dir, name)
        self.writing = False

    def write(self, results: ResultsDocument, durable: bool = False) -> None:
        """Rewrite the file; ``durable`` (the last write of a run) also fsyncs."""
        results["summary"] = summarize(results["checks"])
        # Indented only at the end: json's fast C encoder works only without indent,
        # and the document is rewritten after every check.
        text = json.dumps(results, indent=1 if durable else None,
                          default=_json_default) + "\n"
        self.writing = True
        try:
            atomic_write(self.path, text, durable=durable)
        finally:
            self.writing = False


def _json_default(obj: Any) -> Any:
    """numpy scalars and arrays, bytes: anything a check may leave in ``details``."""
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    for attr in ("tolist", "item"):
        if hasattr(obj, attr):
            return getattr(obj, attr)()
    return repr(obj)



class SigtermGuard:
    """Turns SIGTERM into ``Interrupted`` while installed (main thread only).

    ``busy()`` says whether raising now would tear a file write; then the signal is
    remembered and raised by ``check_pending()`` right after. Only the first signal
    interrupts: a batch system often sends SIGTERM twice (to the job script, which
    forwards it, and to every process of the job), and a second ``Interrupted`` raised
    while the first is being handled would lose the partial results.
    """

    def __init__(self, busy: Callable[[], bool] = lambda: False) -> None:
        self.busy = busy
        self.pending: Optional[int] = None
        self.fired = False
        self._previous: Any = None
        self.installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.fired or self.pending is not None:
            return  # already stopping: finish writing the partial results
        if self.busy():
            self.pending = signum
            return
        self.fired = True
        raise Interrupted(signum)

    def install(self) -> SigtermGuard:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handler)
            self.installed = True
        except ValueError:  # not the main thread: leave signals alone
            self.installed = False
        return self

    def check_pending(self) -> None:
        if self.pending is not None and not self.fired:
            signum, self.pending = self.pending, None
            self.fired = True
            raise Interrupted(signum)

    def uninstall(self) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self._previous)
            self.installed = False


def write_stdout_line(line: str) -> None:
    """One line on stdout, flushed at once so a job log shows progress live."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
