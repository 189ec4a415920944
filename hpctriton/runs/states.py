"""A task's status: the rule that turns evidence into a state.

The job's own ``state.json`` is the lasting truth; the scheduler is a hint
(:class:`~hpctriton.schedulers.jobs.SchedulerInfo`) for jobs that never started, were
cancelled before starting, or vanished.
"""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass, replace
from typing import Any

from hpctriton.schedulers import JobState, SchedulerInfo

#: Probe and job.sh exit codes (README): what a finished job's exit code means.
EXIT_MEANINGS = {0: "all checks passed", 1: "checks failed", 2: "bad spec or arguments",
                 70: "the probe itself crashed",
                 74: "the job could not write its results (a full disk or quota on the "
                     "cluster?)",
                 125: "container instance failed to start",
                 127: "interpreter or container runtime not found", 143: "terminated"}
#: What ``read_states`` records for a state file that is empty or not JSON.
DAMAGED = "damaged"


def exit_meaning(code: int) -> str | None:
    """What an exit code means: the table above, else a signal (128 + N).

    Example::

        >>> exit_meaning(137)
        'killed by signal 9, SIGKILL'
    """
    if code in EXIT_MEANINGS:
        return EXIT_MEANINGS[code]
    if 128 < code < 128 + 65:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = ""
        return f"killed by signal {code - 128}" + (f", {name}" if name else "")
    return None


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
    if state_file and state_file.get("phase") == DAMAGED:
        why = (f"state.json is empty or damaged ({state_file.get('raw') or 'empty'}): the "
               "job could not write it (a full disk or quota on the cluster?)")
        if hint and not hint.state.final:
            return TaskStatus(task=task, state=hint.state, job_id=job_id, source="scheduler",
                              reason=hint.reason)
        return TaskStatus(task=task, state=JobState.FAILED, job_id=job_id,
                          source="state.json", reason=why
                          + (f"; the scheduler says {hint.raw}" if hint and hint.raw else ""))
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
        meaning = exit_meaning(code) if isinstance(code, int) else None
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
            # killed without a chance to write its final state (SIGKILL, node failure), or
            # it could not write it (exit code 74: a full disk)
            why = hint.reason or f"ended while running ({hint.raw})"
            if hint.exit_code is not None:
                meaning = exit_meaning(hint.exit_code)
                why += f"; exit code {hint.exit_code}" + (f": {meaning}" if meaning else "")
            return replace(running, state=hint.state, source="scheduler", reason=why,
                           exit_code=hint.exit_code)
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
