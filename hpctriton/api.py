"""The Python API: everything the CLI does, as functions and one ``Run`` class.

Example (a notebook)::

    >>> from hpctriton import load_config, submit
    >>> run = submit(load_config("examples/local.yaml"))
    >>> run.wait(progress=True)          # waits, then collects
    >>> run.results().ok
    True
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hpctriton.config import ClusterConfig, Config
from hpctriton.errors import ConfigError, HpctritonError, PartialSubmitError, UsageError
from hpctriton.render.bundle import make_run_id, render_bundle, runs_in_place
from hpctriton.report.notebook import Results
from hpctriton.runs import index, watch
from hpctriton.runs.collect import OWNERSHIP, CollectReport, collect
from hpctriton.runs.lock import folder_lock
from hpctriton.runs.record import (
    RunRecord,
    find_run,
    make_run_folder,
    now_iso,
    runs_root,
    save_config,
)
from hpctriton.runs.stage import set_aside, stage_bundle
from hpctriton.schedulers import JobRef, JobState, Scheduler, get_scheduler
from hpctriton.transport import Transport, open_transport

log = logging.getLogger("hpctriton")


class NothingCollected(UsageError):
    """:meth:`Run.results` of a run whose results were never collected: an empty result
    would read as a run that did nothing."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id}: nothing collected yet: call run.collect() (or "
                         "run.wait(), which collects when the run has ended)")


class Run:
    """A submitted run: ask its status, wait, cancel, collect, read its results.

    Reopen a past run with :func:`open_run`. One SSH connection is opened on first use
    and reused; :meth:`close` (or a ``with`` block) releases it.
    """

    def __init__(self, record: RunRecord, transport: Transport | None = None) -> None:
        self.record = record
        self._transport = transport
        self._collected = False  # collect() was called here (it may have found nothing)

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
    def scheduler(self) -> Scheduler[Any]:
        """The scheduler the run was submitted to."""
        return get_scheduler(self.record.backend)

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
        return watch.status(self.transport, self.scheduler, self.record,
                            ask_scheduler=scheduler)

    def wait(self, timeout_s: float | None = None, progress: bool = False,
             collect: bool = True, **waiter_options: Any) -> watch.RunStatus:
        """Block until every task has ended, then collect the results (as ``submit
        --wait`` does; ``collect=False`` leaves that to :meth:`collect`). ``progress=True``
        shows a progress bar (in a terminal or a notebook). Nothing is collected when
        ``timeout_s`` ran out first; a task that did not verify raises
        :class:`~hpctriton.runs.collect.CollectIncomplete`, as :meth:`collect` does.

        Example::

            >>> run.wait(progress=True).overall
            <JobState.SUCCEEDED: 'succeeded'>
            >>> run.results().ok      # collected by the wait
            True
        """
        self._require_jobs("wait for")
        waiter_options.setdefault("max_pending_s", self.record.cluster_config().max_pending_s)
        waiter = watch.Waiter(self.transport, self.scheduler, self.record, **waiter_options)
        if not progress:
            status = waiter.wait(timeout_s)
        else:
            from hpctriton.runs.progress import progress_bar

            with progress_bar(self.run_id, self.n_tasks) as update:
                also = waiter.on_change

                def both(status: watch.RunStatus) -> None:
                    update(status)
                    if also is not None:
                        also(status)

                waiter.on_change = both
                status = waiter.wait(timeout_s)
        if collect and status.done:
            self.collect()
        return status

    def cancel(self, tasks: Sequence[int] | None = None) -> None:
        """Cancel the run (or some tasks); the jobs record the interruption themselves.

        Example::

            >>> run.cancel()
        """
        chosen = list(range(self.n_tasks)) if tasks is None else self._checked(tasks)
        self._require_jobs("cancel")
        scheduler = self.scheduler
        if not scheduler.capabilities.per_task_cancel:
            self._refuse_partial_cancel(scheduler, chosen)
        with folder_lock(self.path, "cancel"):
            scheduler.cancel(self.transport, self.record, chosen)
            self.record.add_event("cancel", tasks=chosen)
            self.record.save()

    def _checked(self, tasks: Sequence[int]) -> list[int]:
        """Task numbers of this run (a typo must not reach the scheduler)."""
        bad = sorted({t for t in tasks if not 0 <= t < self.n_tasks})
        if bad:
            raise UsageError(f"run {self.run_id} has tasks 0..{self.n_tasks - 1}; no task "
                             + ", ".join(map(str, bad)))
        return sorted(set(tasks))

    def _refuse_partial_cancel(self, scheduler: Scheduler[Any], tasks: list[int]) -> None:
        """A scheduler without per-task cancel stops every task of a submission: refuse
        to cancel some of them rather than kill all."""
        for task in tasks:
            job = self.record.job_for_task(task)
            if job is not None and not set(job.tasks) <= set(tasks):
                raise UsageError(
                    f"the {scheduler.name} scheduler starts a submission's tasks together and "
                    f"cancels them together: cancel tasks {sorted(job.tasks)} at once (or the "
                    "whole run)")

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
        with folder_lock(self.path, "resubmit"):
            attempt = 1 + sum(1 for e in self.record.events if e.get("event") == "resubmit")
            set_aside(self.transport, self.record, tasks, attempt)
            try:
                refs = self.scheduler.resubmit(self.transport, self.record, tasks)
            except PartialSubmitError as exc:
                self.record.jobs += list(exc.made)
                self.record.add_event("resubmit", tasks=tasks,
                                      jobs=[r.job_id for r in exc.made], error=str(exc))
                self.record.save()
                raise
            self.record.jobs += refs
            self.record.add_event("resubmit", tasks=tasks, jobs=[r.job_id for r in refs])
            self.record.save()
            return refs

    def collect(self, out_dir: str | Path | None = None,
                tasks: Sequence[int] | None = None, *,
                max_mb: int | None = None) -> CollectReport:
        """Fetch the results of ended tasks into the run folder (or ``out_dir``, which must
        be new, empty, or an earlier collect's), at most ``max_mb`` megabytes (default:
        the cluster's ``collect_max_mb``).

        Tasks that verified are in place whatever else happens; a task refused or
        corrupted raises :class:`~hpctriton.runs.collect.CollectIncomplete` (its
        ``report`` says what arrived); a task without a manifest is in ``unverified``.

        Example::

            >>> run.collect().fetched
            [0]
        """
        if tasks is None:
            current = self.status()
            tasks = [t for t, s in current.tasks.items()
                     if s.state.final or s.state == JobState.UNKNOWN]
        limit = max_mb or self.record.cluster_config().collect_max_mb
        self._collected = True
        return collect(self.transport, self.scheduler, self.record, list(tasks),
                       Path(out_dir) if out_dir is not None else None, max_mb=limit)

    def results(self) -> Results:
        """The collected results (:meth:`wait` collects, or call :meth:`collect`); raises
        :class:`NothingCollected` when nothing was ever collected, rather than showing an
        empty, failed result.

        Example::

            >>> run.results().ok
            True
        """
        results = Results.from_run_dir(self.path)
        if not (results.tasks or self._collected
                or (self.record.results_dir / OWNERSHIP).is_file()):
            raise NothingCollected(self.run_id)
        return results


# ------------------------------------------------------------------ submit


@dataclass(frozen=True)
class SubmitPlan:
    """What :func:`submit` would do (``--dry-run`` prints it): see :func:`plan`."""

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


def _remote_dir(transport: Transport, scheduler: Scheduler[Any], cluster: ClusterConfig,
                run_id: str, bundle_dir: Path, *, connect: bool = True) -> str:
    """Where the run's bundle runs (:func:`~hpctriton.render.bundle.runs_in_place`), else
    ``<workdir>/<run id>`` on the cluster (``connect=False``: workdir as written, for a
    plan that must not log in)."""
    if runs_in_place(scheduler, cluster):
        return str(bundle_dir.resolve())
    workdir = transport.resolve(cluster.workdir) if connect else cluster.workdir.rstrip("/")
    return str(PurePosixPath(workdir) / run_id)


def _target(config: Config, cluster: str | None,
            backend: str | None) -> tuple[str | None, ClusterConfig]:
    """``config.target``, its errors placed in the config's file."""
    try:
        return config.target(cluster, backend)
    except ConfigError as exc:
        raise config.locate(exc) from None


def plan(config: Config, cluster: str | None = None, *, backend: str | None = None,
         runs_dir: str | Path | None = None, run_id: str | None = None) -> SubmitPlan:
    """What :func:`submit` would do with the same arguments; nothing is written,
    submitted or logged into.

    Example::

        >>> plan(load_config("hpctriton.yaml"), cluster="asgc-slurm").remote_dir
        'hpctriton-runs/20261121-224033-asgc-slurm-1a2b'
    """
    cluster_name, cluster_cfg = _target(config, cluster, backend)
    scheduler = get_scheduler(cluster_cfg.backend)
    run_id = run_id or make_run_id(config.name or cluster_name or cluster_cfg.backend)
    run_dir = runs_root(runs_dir, config) / run_id
    with open_transport(cluster_cfg) as transport:
        remote = _remote_dir(transport, scheduler, cluster_cfg, run_id, run_dir / "bundle",
                             connect=False)
        return SubmitPlan(run_id, cluster_cfg.backend, cluster_name, transport.label, remote,
                          scheduler.task_count(cluster_cfg, len(config.points())), run_dir)


def submit(config: Config, cluster: str | None = None, *, backend: str | None = None,
           wait: bool = False, progress: bool = False, runs_dir: str | Path | None = None,
           run_id: str | None = None, timeout_s: float | None = None) -> Run:
    """Render, stage, submit and record a run; optionally wait and collect.

    :func:`plan` shows what this would do without doing it.

    Example::

        >>> run = submit(load_config("hpctriton.yaml"), cluster="asgc-slurm")
        >>> run.run_id
        '20261121-224033-asgc-slurm-1a2b'
    """
    cluster_name, cluster_cfg = _target(config, cluster, backend)
    scheduler = get_scheduler(cluster_cfg.backend)
    backend_name = cluster_cfg.backend
    run_id = run_id or make_run_id(config.name or cluster_name or backend_name)
    run_dir = runs_root(runs_dir, config) / run_id
    created = not run_dir.exists()
    transport = open_transport(cluster_cfg)
    record: RunRecord | None = None
    try:
        make_run_folder(run_dir)  # 0700: its records copy the config
        bundle = render_bundle(config, run_dir / "bundle", cluster=cluster_name,
                               backend=backend_name, run_id=run_id)
        remote = _remote_dir(transport, scheduler, cluster_cfg, run_id, bundle.path)
        in_place = remote == str(bundle.path.resolve())
        if not in_place:
            where = f"clusters.{cluster_name}.workdir" if cluster_name else "workdir"
            try:
                scheduler.check_remote_dir(remote, where)
            except ConfigError as exc:
                raise config.locate(exc) from None
        n_tasks = scheduler.task_count(cluster_cfg, bundle.n_tasks)
        points = bundle.points if n_tasks == bundle.n_tasks else [bundle.points[0]] * n_tasks
        record = RunRecord(run_id=run_id, backend=backend_name, cluster=cluster_name,
                           host=transport.label, remote_dir=remote, n_tasks=n_tasks,
                           points=points, path=run_dir)
        save_config(record, config)
        record.save()
        index.remember(record)  # the newest run, found from anywhere (never fails)
        if not in_place:
            stage_bundle(transport, bundle.path, remote)
        record.jobs = scheduler.submit(transport, record, list(range(n_tasks)))
        record.submitted_at = now_iso()
        record.save()
    except PartialSubmitError as exc:
        transport.close()
        assert record is not None  # raised by scheduler.submit, after the record
        record.jobs = list(exc.made)
        record.add_event("partial-submit", error=str(exc))
        record.save()
        raise
    except BaseException as exc:
        transport.close()
        if record is None:
            # nothing reached the cluster: leave nothing behind (no orphan run folder)
            if created:
                shutil.rmtree(run_dir, ignore_errors=True)
        elif isinstance(exc, HpctritonError):
            # the cluster was reached (staging or sbatch failed): `runs` lists why
            record.add_event("submit-failed", error=str(exc).splitlines()[0])
            record.save()
        raise
    run = Run(record, transport)
    if wait:
        run.wait(timeout_s=timeout_s, progress=progress)  # and collect
    return run


def open_run(run: str | None = None, *, runs_dir: str | Path | None = None,
             config: Config | None = None) -> Run:
    """Reopen a past run by id, id prefix or folder; the newest without an argument.

    Without ``runs_dir`` or ``config`` it looks wherever this user's runs are (the run
    index in the XDG state directory, and ``$HPCTRITON_RUNS_DIR`` or ``./hpctriton-runs``);
    with one of them, only in that ``runs_dir``.

    Example::

        >>> run = open_run("20261121-2240")
        >>> run.status().overall
        <JobState.SUCCEEDED: 'succeeded'>
    """
    if runs_dir is not None or config is not None:
        return Run(find_run(runs_root(runs_dir, config), run))
    found = index.find_any_run(run, also=runs_root())
    for entry in found.dropped:
        log.warning("dropped run %s from the run index: its folder %s is gone",
                    entry.run_id, entry.path)
    return Run(found.record)
