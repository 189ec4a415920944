"""The local scheduler's state map: a runner is alive or gone, and what that means."""

from __future__ import annotations

from collections.abc import Sequence

from hpctriton.schedulers.base import RunView
from hpctriton.schedulers.jobs import JobState, SchedulerInfo

#: The runner's own log, collected with the results.
RUNNER_LOG = "results/local-runner.log"


def runner_states(run: RunView, tasks: Sequence[int],
                  alive: set[str]) -> dict[int, SchedulerInfo]:
    """The state map of a scheduler without a queue: a live runner's tasks are pending
    or running; a dead runner's tasks without a final state never will have one."""
    cancelled = {t for e in run.events if e.get("event") == "cancel"
                 for t in e.get("tasks", [])}
    info: dict[int, SchedulerInfo] = {}
    for task in tasks:
        job = run.job_for_task(task)
        if job is None:
            continue
        if job.job_id in alive:
            info[task] = SchedulerInfo(JobState.PENDING, job.job_id, "runner alive", "alive")
        elif task in cancelled:
            info[task] = SchedulerInfo(JobState.CANCELLED, job.job_id, "cancelled", "gone")
        else:
            info[task] = SchedulerInfo(JobState.FAILED, job.job_id,
                                       f"runner exited (see {RUNNER_LOG})", "gone")
    return info
