"""The schedulers' vocabulary: a submission, a job's state, and a scheduler's hint.

Every scheduler answers in these words, whatever its own are (``PD``, ``activated``):
its parser maps them through its state map (``SLURM_STATES``, ``DICOS_STATES``). Run
records store submissions as :class:`JobRef`; status combines hints with the jobs'
own state files (:func:`hpctriton.runs.states.combine`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class JobState(str, enum.Enum):
    """Where a task is. ``final`` states never change again."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
                        JobState.TIMEOUT)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SchedulerInfo:
    """What a scheduler says about one task (a hint)."""

    state: JobState
    job_id: str = ""
    reason: str = ""
    #: The scheduler's own word (``PENDING``, ``OUT_OF_MEMORY``, ``activated``…).
    raw: str = ""
    #: The job's exit code, when the scheduler knows it (sacct's ``ExitCode``).
    exit_code: int | None = None


@dataclass
class JobRef:
    """One scheduler submission of a run: which tasks it covers and how they are named."""

    #: Slurm: the array (or single) job id; DiCOS: the PandaID; local: the process id.
    job_id: str
    tasks: list[int]
    #: Slurm: task ``t`` is array index ``t - offset``.
    offset: int = 0
    #: Scheduler-specific details (DiCOS TaskID, cluster name from ``id;cluster``…).
    extra: dict[str, Any] = field(default_factory=dict)
