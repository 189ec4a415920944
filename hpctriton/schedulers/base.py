"""The one small interface every scheduler backend implements.

Adding a scheduler (PBS, HTCondor, …) is one new module in this package:

1. Subclass :class:`Backend`, set ``name`` and ``template`` (a Jinja2 file in
   ``templates/`` that ``{% extends "job.sh.j2" %}`` and fills the ``directives``,
   ``task_index`` and ``job_id`` blocks: how the scheduler is told what to run, how a
   task learns its index, and what it reports as its job id).
2. Render: override :meth:`directives` (scheduler lines at the top of ``job.sh``) and
   :meth:`extra_files` (files beside it, such as DiCOS's ``submit.sh``). Never change
   the inputs; quote every value with :mod:`hpctriton.shell.quoting`.
3. Run: :meth:`submit` stages nothing itself (the caller has copied the bundle to
   ``remote_dir``); it runs the scheduler's submit command through the transport and
   returns the jobs it created. :meth:`poll` answers for *all* jobs of a run in one
   scheduler call. :meth:`cancel` cancels them. :meth:`prepare_collect` makes the
   results reachable under ``remote_dir/results`` when the scheduler keeps them
   elsewhere (DiCOS's ``getoutput``).
4. Register it: add ``"name": "hpctriton.schedulers.registry.module:Class"`` to ``_REGISTRY`` in
   ``hpctriton/backends/__init__.py``; nothing outside the backend module branches on
   its name.

Every job script writes ``results/<task>/state.json`` itself (see the README); a
backend's scheduler queries are only a hint for jobs that never started or vanished.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from hpctriton.config.models import ClusterConfig, Config
    from hpctriton.runs.record import JobRef, RunRecord
    from hpctriton.runs.states import SchedulerInfo
    from hpctriton.transport import Transport


@dataclass(frozen=True)
class DoctorCheck:
    """One line of ``hpctriton doctor``."""

    name: str
    ok: bool
    detail: str = ""
    #: A failed optional check is a warning, not an error.
    optional: bool = False


@dataclass(frozen=True)
class RenderContext:
    """What a backend may read while rendering one bundle."""

    config: Config
    cluster_name: str | None
    cluster: ClusterConfig
    run_id: str
    n_tasks: int
    #: Extra values for the template (set by the generic renderer).
    values: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A scheduler: how a bundle is rendered for it, submitted, watched and collected."""

    #: The name used in ``backend:`` and ``--backend``.
    name: ClassVar[str]
    #: The job template in ``templates/``.
    template: ClassVar[str]
    #: How a user runs the bundle by hand, from inside its folder.
    manual_command: ClassVar[str] = "bash job.sh"

    # ------------------------------------------------------------------ render

    def directives(self, ctx: RenderContext) -> list[str]:
        """Scheduler lines placed right after ``#!/bin/bash`` (already quoted)."""
        return []

    def extra_files(self, ctx: RenderContext) -> dict[str, str]:
        """Other files of the bundle: name -> text."""
        return {}

    def how_to_run(self, ctx: RenderContext) -> str:
        """One comment line for ``job.sh`` saying how to run it by hand."""
        return f"Run from inside this folder: {self.manual_command}"

    # ------------------------------------------------------------------- run

    #: Can the jobs' ``results/<task>/state.json`` be read in ``remote_dir`` while they
    #: run? (DiCOS: no, outputs come back only through ``getoutput``.)
    state_files_reachable: ClassVar[bool] = True
    #: With a local transport, run the bundle where it was rendered instead of staging
    #: a copy under the cluster's workdir (the local backend on this machine).
    stage_in_place: ClassVar[bool] = False

    def task_count(self, cluster: ClusterConfig, n_points: int) -> int:
        """How many tasks a run of ``n_points`` sweep points has (DiCOS copies add more)."""
        return n_points

    @abstractmethod
    def submit(self, transport: Transport, record: RunRecord,
               tasks: Sequence[int]) -> list[JobRef]:
        """Submit ``tasks`` of the bundle staged in ``record.remote_dir``.

        Return every submission made. When a later submission fails after earlier
        ones succeeded, raise :class:`~hpctriton.errors.PartialSubmitError` carrying
        the ones made, so the caller records (and can cancel) them.
        """

    @abstractmethod
    def poll(self, transport: Transport, record: RunRecord,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        """The scheduler's view of ``tasks``, from ONE scheduler call for all of them.

        Tasks the scheduler no longer knows are left out of the answer.
        """

    @abstractmethod
    def cancel(self, transport: Transport, record: RunRecord, tasks: Sequence[int]) -> None:
        """Cancel ``tasks`` (all of the run's jobs when it is every task)."""

    def prepare_collect(  # noqa: B027 - an optional hook; most schedulers need nothing
            self, transport: Transport, record: RunRecord, tasks: Sequence[int]) -> None:
        """Make ``remote_dir/results/<task>`` hold each task's results (DiCOS fetches
        them with ``getoutput`` first); raise if they cannot be had."""

    def resubmit(self, transport: Transport, record: RunRecord,
                 tasks: Sequence[int]) -> list[JobRef]:
        """Submit ``tasks`` again (the default: submit them afresh)."""
        return self.submit(transport, record, tasks)

    def extra_result_files(self, record: RunRecord, tasks: Sequence[int]) -> list[str]:
        """Other files under ``remote_dir`` to collect with the tasks (scheduler logs)."""
        return []

    def doctor(self, transport: Transport, cluster: ClusterConfig,
               config: Config) -> list[DoctorCheck]:
        """Backend-specific health checks of the cluster side."""
        return []
