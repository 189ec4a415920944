"""Local: run the bundle as a process on the target host, no scheduler.

The tasks run in the background under ``setsid`` (so they outlive the SSH channel
that started them, and one signal to the process group cancels them all), at most
``local.parallel`` at a time. The runner's process id is the run's "job id".
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpctriton.errors import CommandError, UsageError
from hpctriton.runs.record import JobRef, RunRecord
from hpctriton.runs.states import JobState, SchedulerInfo
from hpctriton.schedulers.base import Backend

if TYPE_CHECKING:
    from hpctriton.transport import Transport

RUNNER_LOG = "results/local-runner.log"


class LocalBackend(Backend):
    """``bash job.sh --task N`` for each task, in the background on the target host."""

    name = "local"
    template = "hpctriton.schedulers.local:job.sh.j2"
    stage_in_place = True

    def submit(self, transport: Transport, record: RunRecord,
               tasks: Sequence[int]) -> list[JobRef]:
        parallel = max(1, record.cluster_config().local.parallel)
        task_list = " ".join(str(t) for t in tasks)
        runner = (f"printf '%s\\n' {task_list} | xargs -P {parallel} -I@ bash job.sh --task @")
        script = (
            f"cd {shlex.quote(record.remote_dir)} || exit 2\n"
            "if command -v setsid >/dev/null 2>&1; then hpct_detach=setsid; else hpct_detach=; fi\n"
            f"$hpct_detach nohup bash -c {shlex.quote(runner)} </dev/null "
            f">>{RUNNER_LOG} 2>&1 &\n"
            "echo \"@@PID $!\"\n"
        )
        result = transport.run_script(script).check("starting the local runner")
        for line in result.stdout.splitlines():
            if line.startswith("@@PID "):
                return [JobRef(job_id=line.split()[1], tasks=list(tasks))]
        raise CommandError(script, 0, result.stdout, result.stderr,
                           message="the local runner did not report its process id")

    def poll(self, transport: Transport, record: RunRecord,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        """Is the runner alive? A live runner's tasks are pending or running; a dead
        runner's tasks without a final state never will have one."""
        pids = {j.job_id for j in record.jobs if set(j.tasks) & set(tasks)}
        if not pids:
            return {}
        script = "".join(f"kill -0 {int(p)} 2>/dev/null && echo {int(p)}\n" for p in pids)
        script += "true\n"
        alive = set(transport.run_script(script).stdout.split())
        cancelled = {t for e in record.events if e.get("event") == "cancel"
                     for t in e.get("tasks", [])}
        info: dict[int, SchedulerInfo] = {}
        for task in tasks:
            job = record.job_for_task(task)
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

    def cancel(self, transport: Transport, record: RunRecord, tasks: Sequence[int]) -> None:
        """TERM to the runner's process group: job.sh records the interruption.

        The runner's tasks share one process group, so only whole runners can be
        cancelled; asking for some of their tasks is refused rather than killing all.
        """
        jobs = {j.job_id: j for t in tasks if (j := record.job_for_task(t)) is not None}
        partial = [j for j in jobs.values() if not set(j.tasks) <= set(tasks)]
        if partial:
            raise UsageError(
                "the local backend runs a run's tasks under one runner and cancels them "
                f"together: cancel tasks {sorted(partial[0].tasks)} at once (or the whole run)")
        pids = set(jobs)
        script = "".join(f"kill -TERM -- -{int(p)} 2>/dev/null || kill -TERM {int(p)} "
                         "2>/dev/null\n" for p in pids) + "true\n"
        transport.run_script(script).check("cancelling the local runner")

    def extra_result_files(self, record: RunRecord, tasks: Sequence[int]) -> list[str]:
        return [RUNNER_LOG]
