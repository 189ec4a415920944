"""A task's status: the rule that turns evidence into a state.

The job's own ``state.json`` is the lasting truth; the scheduler is a hint
(:class:`~hpctriton.schedulers.jobs.SchedulerInfo`) for jobs that never started, were
cancelled before starting, or vanished.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from hpctriton.schedulers import JobState, SchedulerInfo

#: Probe exit codes (README): what a finished job's exit code means.
EXIT_MEANINGS = {0: "all checks passed", 1: "checks failed", 2: "bad spec or arguments",
                 125: "container instance failed to start",
                 127: "interpreter or container runtime not found", 143: "terminated"}


@dataclass(frozen=True)
class TaskStatus:
    """The combined view of one task, as ``hpctriton status`` shows it."""

    task: int
    state: JobState
    job_id: str = ""
    reason: str = ""
    exit_code: int | None = None
    host: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    #: ``state.json``, ``scheduler`` or ``none``: where the answer came from.
    source: str = "none"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data


def combine(task: int, state_file: dict[str, Any] | None, hint: SchedulerInfo | None,
            *, state_expected: bool = True) -> TaskStatus:
    """One task's status from its state file (truth) and the scheduler's hint.

    ``state_expected`` is False where state files cannot be read before collecting
    (DiCOS): there the scheduler's word is all there is.
    """
    job_id = hint.job_id if hint else ""
    if state_file and state_file.get("phase") == "finished":
        code = state_file.get("exit_code")
        done = TaskStatus(task=task, state=JobState.FAILED,
                          job_id=str(state_file.get("job_id") or job_id),
                          exit_code=code if isinstance(code, int) else None,
                          host=str(state_file.get("host", "")),
                          started_at=state_file.get("started_at"),
                          finished_at=state_file.get("finished_at"), source="state.json")
        if state_file.get("interrupted"):
            if hint and hint.state in (JobState.TIMEOUT, JobState.CANCELLED):
                return replace(done, state=hint.state, reason=hint.reason or "interrupted")
            if hint and hint.state == JobState.PENDING:  # requeued after preemption
                return replace(done, state=JobState.PENDING, source="scheduler",
                               reason=f"requeued ({hint.raw or 'pending'})")
            return replace(done, reason="interrupted by a signal")
        if code == 0:
            return replace(done, state=JobState.SUCCEEDED, reason=EXIT_MEANINGS[0])
        meaning = EXIT_MEANINGS.get(code) if isinstance(code, int) else None
        if code in (1, 2):
            return replace(done, reason=str(meaning))
        return replace(done, reason=f"crashed (exit code {code}"
                       + (f": {meaning})" if meaning else ")"))
    if state_file:  # phase running
        running = TaskStatus(task=task, state=JobState.RUNNING, job_id=job_id,
                             reason=hint.reason if hint else "", source="state.json",
                             host=str(state_file.get("host", "")),
                             started_at=state_file.get("started_at"))
        if hint and hint.state.final:
            # killed without a chance to write its final state (SIGKILL, node failure)
            return replace(running, state=hint.state, source="scheduler",
                           reason=hint.reason or f"ended while running ({hint.raw})")
        return running
    if hint is None:
        return TaskStatus(task=task, state=JobState.UNKNOWN, job_id=job_id,
                          reason="no state file and no scheduler record", source="none")
    if state_expected and hint.state == JobState.SUCCEEDED:
        return TaskStatus(task=task, state=JobState.FAILED, job_id=job_id, source="scheduler",
                          reason=f"the scheduler says {hint.raw or 'completed'} but the job left "
                                 "no state.json (was results/ writable?)")
    return TaskStatus(task=task, state=hint.state, job_id=job_id, reason=hint.reason,
                      source="scheduler")
