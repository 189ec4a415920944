"""The one small interface every scheduler implements, and how to add one.

A scheduler is a folder: its options model, its templates, its output parser with the
state map, and the :class:`Scheduler` subclass that ties them together. Adding PBS is
one such folder, in a package of its own::

    hpctriton_pbs/
        __init__.py           from hpctriton_pbs.scheduler import PbsScheduler
        options.py            class PbsOptions(SchedulerOptions): queue, walltime, …
        parse.py              PBS_STATES = {"Q": JobState.PENDING, "R": JobState.RUNNING, …}
                              def parse_qstat(text, run) -> dict[int, SchedulerInfo]
        scheduler.py          class PbsScheduler(Scheduler[PbsOptions])
        templates/job.sh.j2   {% extends "hpctriton.render:job.sh.j2" %} with #PBS lines
        templates/poll.sh.j2  qstat -x -f {{ job_ids | join_q }}

    # its setup.cfg
    [options.entry_points]
    hpctriton.schedulers =
        pbs = hpctriton_pbs:PbsScheduler

1. **Options.** Subclass :class:`SchedulerOptions` (pydantic; unknown keys are refused
   with the valid ones named). The config then accepts ``backend: pbs`` with a ``pbs:``
   section of these options, and ``hpctriton schema`` shows it: the registry hands the
   config a discriminated union of every scheduler's options.
2. **Templates.** ``job_template`` names a template (``"hpctriton_pbs:job.sh.j2"``,
   see :mod:`hpctriton.shell.templates`) that extends ``"hpctriton.render:job.sh.j2"``
   and fills its blocks: ``directives`` (how the scheduler is told what to run),
   ``task_index`` (how a task learns its index) and ``job_id`` (what it reports as its
   job id). :meth:`Scheduler.job_values` hands it values, :meth:`Scheduler.extra_files`
   adds files beside ``job.sh``. Remote scripts (submit, poll, cancel) are templates in
   the same folder, rendered with :func:`hpctriton.shell.templates.render`; every value
   passes the ``q`` filter there. Python code builds argument lists, never shell text.
3. **Parser and state map.** Pure functions from the tool's output to
   :class:`~hpctriton.schedulers.jobs.SchedulerInfo` per task, with the map from the
   scheduler's words to :class:`~hpctriton.schedulers.jobs.JobState` beside them; an
   unknown word maps to ``UNKNOWN``, never to a guess.
4. **Capabilities.** Declare what the scheduler can do (:class:`Capabilities`): generic
   code asks these, and never branches on a scheduler's name.
5. **Run.** :meth:`Scheduler.submit` runs the submit command in the staged bundle
   (``run.remote_dir``) and returns the jobs it made; :meth:`Scheduler.poll` answers
   for *all* jobs of a run in one scheduler call; :meth:`Scheduler.cancel` cancels.
   Optional hooks: :meth:`Scheduler.prepare_collect`, :meth:`Scheduler.resubmit`,
   :meth:`Scheduler.extra_result_files`, :meth:`Scheduler.doctor`,
   :meth:`Scheduler.blocked` (pending reasons only an administrator can clear: the
   run's ``max_pending_s`` then fails and cancels those tasks) and
   :meth:`Scheduler.check_remote_dir`.
6. **Entry point.** Register the class in the ``hpctriton.schedulers`` entry-point
   group; the name must equal the class's ``name``. A scheduler package imports only
   ``hpctriton.schedulers``, ``hpctriton.shell``, ``hpctriton.transport`` and
   ``hpctriton.errors``: the config imports every scheduler to build its union.

Every job script writes ``results/<task>/state.json`` itself (the base job template
does); a scheduler's queries are only a hint for jobs that never started or vanished.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from hpctriton.schedulers.jobs import JobRef, SchedulerInfo

if TYPE_CHECKING:
    from hpctriton.transport import Transport


class SchedulerOptions(BaseModel):
    """Base of a scheduler's options: the ``<name>:`` section of a cluster."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


OptionsT = TypeVar("OptionsT", bound=SchedulerOptions)


@dataclass(frozen=True)
class Capabilities:
    """What a scheduler can do. Generic code asks these, never the scheduler's name."""

    #: One submission runs many tasks, each with an id of its own (Slurm ``--array``).
    job_arrays: bool = False
    #: A load check with ``tasks: N`` runs N probes started together inside one job
    #: (``srun``); without it the load runs from one task.
    multi_task_load: bool = False
    #: One task of a submission can be cancelled while its other tasks run on.
    per_task_cancel: bool = True
    #: The jobs' ``results/<task>/state.json`` can be read in the run's remote folder
    #: while they run (DiCOS: no, outputs come back only through ``getoutput``).
    state_files_reachable: bool = True
    #: On this machine (a cluster without ``host``) the bundle runs where it was
    #: rendered, not in a copy under the cluster's workdir.
    stage_in_place: bool = False
    #: Recurring runs on the cluster itself (``hpctriton schedule``): a job chain, each
    #: job submitting the next with a delayed start (:meth:`Scheduler.chain_script`).
    job_chain: bool = False


@dataclass(frozen=True)
class DoctorCheck:
    """One line of ``hpctriton doctor``."""

    name: str
    ok: bool
    detail: str = ""
    #: A failed optional check is a warning, not an error.
    optional: bool = False


class ClusterView(Protocol):
    """What a scheduler reads of a cluster (:class:`hpctriton.config.ClusterConfig`)."""

    @property
    def backend(self) -> str: ...

    @property
    def options(self) -> SchedulerOptions: ...


class RunView(Protocol):
    """What a scheduler reads of a run record (:class:`hpctriton.runs.record.RunRecord`)."""

    @property
    def n_tasks(self) -> int: ...

    @property
    def remote_dir(self) -> str: ...

    @property
    def bundle_dir(self) -> Path: ...

    @property
    def created_at(self) -> str: ...

    @property
    def jobs(self) -> list[JobRef]: ...

    @property
    def events(self) -> list[dict[str, Any]]: ...

    def job_for_task(self, task: int) -> JobRef | None: ...

    def cluster_config(self) -> ClusterView: ...


@dataclass(frozen=True)
class ChainSpec:
    """A recurring schedule as its chain job script needs it (``hpctriton schedule``).

    Each link ``N`` runs the bundle in ``<schedule_dir>/bundle`` as a run of its own,
    ``<schedule_dir>/runs/<name>-<NNNN>``; before its checks it submits link ``N+1`` to
    start ``interval_s`` later, unless ``count`` links were made (0: no limit), the next
    start would be after ``until_epoch`` (0: none) or the file ``STOP`` exists. It
    appends what happens to ``members.tsv`` (:mod:`hpctriton.runs.schedules`).
    """

    name: str
    schedule_dir: str
    interval_s: int
    count: int
    until_epoch: int
    n_tasks: int


@dataclass(frozen=True)
class RenderContext:
    """What a scheduler may read while rendering one bundle."""

    cluster_name: str | None
    cluster: ClusterView
    run_id: str
    n_tasks: int
    #: Probes a load check starts together in each task (1 unless the scheduler has
    #: ``multi_task_load`` and a load check asks for ``tasks: N``).
    load_ranks: int = 1


class Scheduler(ABC, Generic[OptionsT]):
    """A scheduler: how a bundle is rendered for it, submitted, watched and collected."""

    #: The name used in ``backend:`` and ``--backend``, and the key of its options.
    name: ClassVar[str]
    #: The options model: the cluster's ``<name>:`` section.
    options_model: type[OptionsT]
    #: The job template, ``"<package>:<file>"``.
    job_template: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: How a user runs the bundle by hand, from inside its folder.
    manual_command: ClassVar[str] = "bash job.sh"

    def options(self, cluster: ClusterView) -> OptionsT:
        """This scheduler's options of ``cluster``."""
        options = cluster.options
        if not isinstance(options, self.options_model):
            raise TypeError(f"a {cluster.backend} cluster was handed to the {self.name} "
                            "scheduler (retarget it with ClusterConfig.for_backend)")
        return options

    # ------------------------------------------------------------------ render

    def job_values(self, ctx: RenderContext) -> dict[str, Any]:
        """Values the scheduler's job template reads beyond the generic ones."""
        return {}

    def extra_files(self, ctx: RenderContext) -> dict[str, str]:
        """Other files of the bundle: name -> text."""
        return {}

    def how_to_run(self, ctx: RenderContext) -> str:
        """One comment line for ``job.sh`` saying how to run it by hand."""
        return f"Run from inside this folder: {self.manual_command}"

    def task_count(self, cluster: ClusterView, n_points: int) -> int:
        """How many tasks a run of ``n_points`` sweep points has (DiCOS copies add more)."""
        return n_points

    # ------------------------------------------------------------------- run

    @abstractmethod
    def submit(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> list[JobRef]:
        """Submit ``tasks`` of the bundle staged in ``run.remote_dir``.

        Return every submission made. When a later submission fails after earlier
        ones succeeded, raise :class:`~hpctriton.errors.PartialSubmitError` carrying
        the ones made, so the caller records (and can cancel) them.
        """

    @abstractmethod
    def poll(self, transport: Transport, run: RunView,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        """The scheduler's view of ``tasks``, from ONE scheduler call for all of them.

        Tasks the scheduler no longer knows are left out of the answer.
        """

    @abstractmethod
    def cancel(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> None:
        """Cancel ``tasks`` (all of the run's jobs when it is every task)."""

    def prepare_collect(  # noqa: B027 - an optional hook; most schedulers need nothing
            self, transport: Transport, run: RunView, tasks: Sequence[int]) -> None:
        """Make ``remote_dir/results/<task>`` hold each task's results (DiCOS fetches
        them with ``getoutput`` first); raise if they cannot be had."""

    def resubmit(self, transport: Transport, run: RunView,
                 tasks: Sequence[int]) -> list[JobRef]:
        """Submit ``tasks`` again (the default: submit them afresh)."""
        return self.submit(transport, run, tasks)

    # ----------------------------------------------------------------- chain

    def chain_script(self, ctx: RenderContext, chain: ChainSpec) -> str:
        """The text of ``chain.sh``, one link of a job chain (``capabilities.job_chain``)."""
        raise NotImplementedError(f"the {self.name} scheduler has no job chain")

    def start_chain(self, transport: Transport, chain: ChainSpec) -> str:
        """Submit the chain's first link, to start now; returns its job id."""
        raise NotImplementedError(f"the {self.name} scheduler has no job chain")

    def blocked(self, transport: Transport, run: RunView,
                pending: dict[int, SchedulerInfo]) -> dict[int, str]:
        """Of these pending tasks, those that cannot start without an administrator (a
        partition that is down, an invalid account), each with why. Keep the list of such
        reasons beside the state map. Default: none is."""
        return {}

    def check_remote_dir(self, remote_dir: str, where: str) -> None:  # noqa: B027 - optional
        """Refuse a run folder the scheduler cannot work in (raise
        :class:`~hpctriton.errors.ConfigError` for ``where``, the config field), before
        anything is staged there. Default: any folder will do."""

    def extra_result_files(self, run: RunView, tasks: Sequence[int]) -> list[str]:
        """Other files under ``remote_dir`` to collect with the tasks (scheduler logs)."""
        return []

    def doctor(self, transport: Transport, cluster: ClusterView) -> list[DoctorCheck]:
        """Scheduler-specific health checks of the cluster side."""
        return []
