"""Schedulers: one folder each (``slurm/``, ``dicos/``, ``local/``), registered by name.

What the rest of hpctriton uses: the :class:`Scheduler` interface and its vocabulary
(:class:`JobRef`, :class:`JobState`, :class:`SchedulerInfo`), and the registry
(:func:`get_scheduler`, :func:`names`). How to add one: :mod:`hpctriton.schedulers.base`.
"""

from hpctriton.schedulers.base import (
    Capabilities,
    ChainSpec,
    ClusterView,
    DoctorCheck,
    RenderContext,
    RunView,
    Scheduler,
    SchedulerOptions,
)
from hpctriton.schedulers.jobs import JobRef, JobState, SchedulerInfo
from hpctriton.schedulers.registry import get_scheduler, names

__all__ = [
    "Capabilities",
    "ChainSpec",
    "ClusterView",
    "DoctorCheck",
    "JobRef",
    "JobState",
    "RenderContext",
    "RunView",
    "Scheduler",
    "SchedulerInfo",
    "SchedulerOptions",
    "get_scheduler",
    "names",
]
