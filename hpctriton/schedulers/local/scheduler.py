"""Local: run the bundle as a process on the target host, no scheduler.

The tasks run in the background under ``setsid`` (so they outlive the SSH channel
that started them, and one signal to the process group cancels them all), at most
``local.parallel`` at a time. The runner's process id is the run's "job id".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpctriton.errors import CommandError
from hpctriton.schedulers.base import Capabilities, RunView, Scheduler
from hpctriton.schedulers.jobs import JobRef, SchedulerInfo
from hpctriton.schedulers.local.options import LocalOptions
from hpctriton.schedulers.local.parse import RUNNER_LOG, runner_states
from hpctriton.shell import templates as templating

if TYPE_CHECKING:
    from hpctriton.transport import Transport

log = logging.getLogger("hpctriton.schedulers.local")


class LocalScheduler(Scheduler[LocalOptions]):
    """``bash job.sh --task N`` for each task, in the background on the target host.

    A run's tasks share one runner and its process group, so they are cancelled
    together (no ``per_task_cancel``).
    """

    name = "local"
    options_model = LocalOptions
    job_template = "hpctriton.schedulers.local:job.sh.j2"
    capabilities = Capabilities(per_task_cancel=False, stage_in_place=True)

    def submit(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> list[JobRef]:
        script = templating.render(
            "hpctriton.schedulers.local:start.sh.j2", remote_dir=run.remote_dir,
            parallel=max(1, self.options(run.cluster_config()).parallel), tasks=list(tasks),
            log=RUNNER_LOG)
        result = transport.run_script(script).check("starting the local runner")
        for line in result.stdout.splitlines():
            if line.startswith("@@PID "):
                _, pid, *started = line.split(" ", 2)
                return [JobRef(job_id=pid, tasks=list(tasks),
                               extra={"started": started[0].strip() if started else ""})]
        raise CommandError(script, 0, result.stdout, result.stderr,
                           message="the local runner did not report its process id")

    def poll(self, transport: Transport, run: RunView,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        """Is the runner alive? (One remote call for every runner of the run.)"""
        runners = _runners([j for j in run.jobs if set(j.tasks) & set(tasks)])
        if not runners:
            return {}
        script = templating.render("hpctriton.schedulers.local:alive.sh.j2", runners=runners)
        alive = set(transport.run_script(script).stdout.split())
        return runner_states(run, tasks, alive)

    def cancel(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> None:
        """TERM to the process group of every runner of ``tasks`` that is still the
        runner (its start time matches the record): a pid the system has given to
        another process since is never signalled."""
        runners = _runners([j for t in tasks if (j := run.job_for_task(t)) is not None])
        script = templating.render("hpctriton.schedulers.local:cancel.sh.j2", runners=runners)
        result = transport.run_script(script).check("cancelling the local runner")
        for line in result.stdout.splitlines():
            if line.startswith("@@GONE "):
                log.warning("the runner %s has ended (its pid may belong to another process "
                            "now): nothing was signalled", line.split()[1])

    def extra_result_files(self, run: RunView, tasks: Sequence[int]) -> list[str]:
        return [RUNNER_LOG]


def _runners(jobs: Sequence[JobRef]) -> list[tuple[int, str]]:
    """(pid, start time) of each runner; the start time is "" in records made before it
    was kept (then the process's command line must name hpctriton's runner)."""
    found = {int(j.job_id): str(j.extra.get("started") or "") for j in jobs
             if j.job_id.isdigit()}
    return sorted(found.items())
