"""The Python API: everything the CLI does, as functions and one ``Run`` class.

Example (a notebook)::

    >>> from hpctriton import load_config, submit
    >>> run = submit(load_config("examples/local.yaml"))
    >>> run.wait(progress=True)
    >>> run.collect()
    >>> run.results().ok
    True
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hpctriton.config.models import ClusterConfig, Config
from hpctriton.errors import (
    CommandError,
    HpctritonError,
    PartialSubmitError,
    RemoteError,
    UsageError,
)
from hpctriton.render.bundle import make_run_id, render_bundle, resolve_target
from hpctriton.results.model import Results
from hpctriton.runs import watch
from hpctriton.runs.collect import CollectReport, collect
from hpctriton.runs.record import JobRef, RunRecord, find_run, now_iso, runs_root, save_config
from hpctriton.runs.states import JobState
from hpctriton.schedulers.registry import Backend, get_backend
from hpctriton.transport import Transport, open_transport

log = logging.getLogger("hpctriton")


class Run:
    """A submitted run: ask its status, wait, cancel, collect, read its results.

    Reopen a past run with :func:`open_run`. One SSH connection is opened on first use
    and reused; :meth:`close` (or a ``with`` block) releases it.
    """

    def __init__(self, record: RunRecord, transport: Transport | None = None) -> None:
        self.record = record
        self._transport = transport

    def __repr__(self) -> str:
        return f"Run({self.run_id!r}, backend={self.record.backend!r}, tasks={self.n_tasks})"

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def n_tasks(self) -> int:
        return self.record.n_tasks

    @property
    def backend(self) -> Backend:
        return get_backend(self.record.backend)

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = open_transport(self.record.cluster_config())
        return self._transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- asking

    def status(self, scheduler: bool = True) -> watch.RunStatus:
        """Every task's state: state files first, then one scheduler call.

        Example::

            >>> run.status().counts()
            {'succeeded': 20}
        """
        return watch.status(self.transport, self.backend, self.record, scheduler=scheduler)

    def wait(self, timeout_s: float | None = None, progress: bool = False,
             **waiter_options: Any) -> watch.RunStatus:
        """Block until every task has ended; ``progress=True`` shows a progress bar
        (in a terminal or a notebook).

        Example::

            >>> run.wait(progress=True).overall
            <JobState.SUCCEEDED: 'succeeded'>
        """
        self._require_jobs("wait for")
        waiter = watch.Waiter(self.transport, self.backend, self.record, **waiter_options)
        if not progress:
            return waiter.wait(timeout_s)
        from hpctriton.runs.progress import progress_bar

        with progress_bar(self.run_id, self.n_tasks) as update:
            waiter.on_change = update
            return waiter.wait(timeout_s)

    def cancel(self, tasks: Sequence[int] | None = None) -> None:
        """Cancel the run (or some tasks); the jobs record the interruption themselves.

        Example::

            >>> run.cancel()
        """
        chosen = list(range(self.n_tasks)) if tasks is None else self._checked(tasks)
        self._require_jobs("cancel")
        self.backend.cancel(self.transport, self.record, chosen)
        self.record.add_event("cancel", tasks=chosen)
        self.record.save()

    def _checked(self, tasks: Sequence[int]) -> list[int]:
        """Task numbers of this run (a typo must not reach the scheduler)."""
        bad = sorted({t for t in tasks if not 0 <= t < self.n_tasks})
        if bad:
            raise UsageError(f"run {self.run_id} has tasks 0..{self.n_tasks - 1}; no task "
                             + ", ".join(map(str, bad)))
        return sorted(set(tasks))

    def _require_jobs(self, what: str) -> None:
        if not self.record.jobs:
            failed = [e for e in self.record.events if e.get("event") == "submit-failed"]
            why = f": {failed[-1].get('error')}" if failed else ""
            raise UsageError(f"run {self.run_id} was never submitted{why}; nothing to {what} "
                             "(submit again)")

    def resubmit(self, tasks: Sequence[int] | None = None) -> list[JobRef]:
        """Submit tasks again: by default every task that failed, was cancelled or timed
        out. Earlier results are kept beside, as ``results/<task>.attempt-<n>``.

        Example::

            >>> run.resubmit()          # the failed ones
            [JobRef(job_id='1235', tasks=[3], ...)]
        """
        self._require_jobs("resubmit")
        if tasks is None:
            bad = (JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.UNKNOWN)
            tasks = [t for t, s in self.status().tasks.items() if s.state in bad]
        tasks = self._checked(tasks)
        if not tasks:
            return []
        attempt = 1 + sum(1 for e in self.record.events if e.get("event") == "resubmit")
        remote = shlex.quote(self.record.remote_dir)
        moves = "".join(f"[ -e results/{t} ] && mv results/{t} results/{t}.attempt-{attempt}\n"
                        for t in tasks)
        self.transport.run_script(f"cd {remote} || exit 2\n{moves}true\n").check(
            "setting earlier results aside")
        for t in tasks:
            local = self.record.results_dir / str(t)
            if local.exists():
                local.rename(local.with_name(f"{t}.attempt-{attempt}"))
        try:
            refs = self.backend.resubmit(self.transport, self.record, tasks)
        except PartialSubmitError as exc:
            self.record.jobs += list(exc.made)
            self.record.add_event("resubmit", tasks=tasks, jobs=[r.job_id for r in exc.made],
                                  error=str(exc))
            self.record.save()
            raise
        self.record.jobs += refs
        self.record.add_event("resubmit", tasks=tasks, jobs=[r.job_id for r in refs])
        self.record.save()
        return refs

    def collect(self, out_dir: str | Path | None = None,
                tasks: Sequence[int] | None = None) -> CollectReport:
        """Fetch the results of ended tasks into the run folder (or ``out_dir``).

        Example::

            >>> run.collect().fetched
            [0]
        """
        if tasks is None:
            current = self.status()
            tasks = [t for t, s in current.tasks.items()
                     if s.state.final or s.state == JobState.UNKNOWN]
        return collect(self.transport, self.backend, self.record, list(tasks),
                       Path(out_dir) if out_dir is not None else None)

    def results(self) -> Results:
        """The collected results (call :meth:`collect` first).

        Example::

            >>> run.results().ok
            True
        """
        return Results.from_run_dir(self.path)


# ------------------------------------------------------------------ submit


@dataclass(frozen=True)
class SubmitPlan:
    """What ``submit`` does (``--dry-run`` prints it and stops)."""

    run_id: str
    backend: str
    cluster: str | None
    host: str
    remote_dir: str
    n_tasks: int
    run_dir: Path

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "backend": self.backend, "cluster": self.cluster,
                "host": self.host, "remote_dir": self.remote_dir, "tasks": self.n_tasks,
                "run_dir": str(self.run_dir)}


def _remote_dir(transport: Transport, backend: Backend, cluster: ClusterConfig, run_id: str,
                bundle_dir: Path, *, connect: bool = True) -> str:
    """Where the run's bundle runs: in place for a local backend here, else
    ``<workdir>/<run id>`` on the cluster (``connect=False``: workdir as written, for a
    dry run that must not log in)."""
    if backend.stage_in_place and cluster.host is None:
        return str(bundle_dir.resolve())
    workdir = transport.resolve(cluster.workdir) if connect else cluster.workdir.rstrip("/")
    return str(PurePosixPath(workdir) / run_id)


def submit(config: Config, cluster: str | None = None, *, backend: str | None = None,
           wait: bool = False, progress: bool = False, dry_run: bool = False,
           runs_dir: str | Path | None = None, run_id: str | None = None,
           timeout_s: float | None = None) -> Run | SubmitPlan:
    """Render, stage, submit and record a run; optionally wait and collect.

    Returns a :class:`Run` (a :class:`SubmitPlan` with ``dry_run=True``: nothing is
    written or submitted).

    Example::

        >>> run = submit(load_config("hpctriton.yaml"), cluster="asgc-slurm")
        >>> run.run_id
        '20261121-224033-asgc-slurm-1a2b'
    """
    cluster_name, cluster_cfg, backend_name = resolve_target(config, cluster, backend)
    impl = get_backend(backend_name)
    run_id = run_id or make_run_id(config.name or cluster_name or backend_name)
    root = runs_root(runs_dir, config)
    run_dir = root / run_id
    transport = open_transport(cluster_cfg)
    try:
        if dry_run:
            remote = _remote_dir(transport, impl, cluster_cfg, run_id, run_dir / "bundle",
                                 connect=False)
            n_tasks = impl.task_count(cluster_cfg, len(config.points()))
            return SubmitPlan(run_id, backend_name, cluster_name, transport.label, remote,
                              n_tasks, run_dir)
        bundle = render_bundle(config, run_dir / "bundle", cluster=cluster_name,
                               backend=backend_name, run_id=run_id)
        remote = _remote_dir(transport, impl, cluster_cfg, run_id, bundle.path)
        n_tasks = impl.task_count(cluster_cfg, bundle.n_tasks)
        points = bundle.points if n_tasks == bundle.n_tasks else [bundle.points[0]] * n_tasks
        record = RunRecord(run_id=run_id, backend=backend_name, cluster=cluster_name,
                           host=transport.label, remote_dir=remote, n_tasks=n_tasks,
                           points=points, path=run_dir)
        save_config(record, config)
        record.save()
        if remote != str(bundle.path.resolve()):
            _stage(transport, bundle.path, remote)
        tasks = list(range(n_tasks))
        try:
            record.jobs = impl.submit(transport, record, tasks)
        except PartialSubmitError as exc:
            record.jobs = list(exc.made)
            record.add_event("partial-submit", error=str(exc))
            record.save()
            raise
        except HpctritonError as exc:
            record.add_event("submit-failed", error=str(exc).splitlines()[0])
            record.save()
            raise
        record.submitted_at = now_iso()
        record.save()
    except BaseException:
        transport.close()
        raise
    run = Run(record, transport)
    if wait:
        run.wait(timeout_s=timeout_s, progress=progress)
        run.collect()
    return run


def _stage(transport: Transport, bundle_dir: Path, remote_dir: str) -> None:
    """Create the remote folder (refusing to reuse one) and copy the bundle over SFTP."""
    q = shlex.quote(remote_dir)
    result = transport.run_script(
        f"if [ -e {q} ]; then echo exists >&2; exit 17; fi; mkdir -p {q}/results")
    if result.exit_code == 17:
        raise RemoteError(f"{transport.label}:{remote_dir} already exists: choose another "
                          "run id or remove it")
    if result.exit_code != 0:
        raise CommandError(result.script, result.exit_code, result.stdout, result.stderr,
                           message=f"cannot create {remote_dir} on {transport.label} "
                                   "(is the cluster's workdir writable?)")
    files = [(p, p.relative_to(bundle_dir).as_posix())
             for p in sorted(bundle_dir.rglob("*")) if p.is_file()]
    transport.put_files(files, remote_dir)


def open_run(run: str | None = None, *, runs_dir: str | Path | None = None,
             config: Config | None = None) -> Run:
    """Reopen a past run by id, id prefix or folder; the newest without an argument.

    Example::

        >>> run = open_run("20261121-2240")
        >>> run.status().overall
        <JobState.SUCCEEDED: 'succeeded'>
    """
    return Run(find_run(runs_root(runs_dir, config), run))
