"""DiCOS (ASGC): ``dicos job submit`` from inside the staged bundle.

The command-line contract is summarised in docs/schedulers.md (from ASGC's public
user documentation); all parsing of ``dicos`` output lives in
:mod:`hpctriton.schedulers.dicos.parse`.

* One DiCOS task per run. Without a sweep, ``-j N`` copies of the job run task 0's spec
  and are collected as tasks 0…N-1; with a sweep, ``-A arglist.txt`` gives one job per
  point (``--task i`` on each line).
* The jobs' outputs come back to the UI node only through ``dicos job getoutput``, so
  state files cannot be watched while the jobs run: status comes from one
  ``dicos job status -l -T <TaskID> -n <count> -t <hours>`` per poll.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpctriton.errors import CollectError, CommandError, PartialSubmitError, RemoteError
from hpctriton.schedulers.base import (
    Capabilities,
    ClusterView,
    DoctorCheck,
    RenderContext,
    RunView,
    Scheduler,
)
from hpctriton.schedulers.dicos import parse as dicos_cli
from hpctriton.schedulers.dicos.options import DicosOptions
from hpctriton.schedulers.jobs import JobRef, SchedulerInfo
from hpctriton.shell import templates as templating

if TYPE_CHECKING:
    from hpctriton.transport import CommandResult, Transport

#: DiCOS job names: at most 25 characters, no spaces.
NAME_LIMIT = 25
ARGLIST = "arglist.txt"
JOB_COMMAND = "bash job.sh"


def dicos_name(name: str, run_id: str) -> str:
    """The one rule that makes a job name DiCOS-safe.

    Every run of characters outside ``A-Z a-z 0-9 _ . -`` becomes ``_``; the result is
    cut to 20 characters (trailing ``_ . -`` dropped) and suffixed with ``-`` and the run
    id's last four characters (its random part): unique, and at most 25 characters.
    """
    suffix = run_id[-4:]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-")
    safe = safe[: NAME_LIMIT - len(suffix) - 1].rstrip("_.-") or "hpct"
    return f"{safe}-{suffix}"


def _run_name(run_id: str) -> str:
    # run ids are <date>-<time>-<slug>-<hex4>: the slug is the readable part
    parts = run_id.split("-")
    return "-".join(parts[2:-1]) if len(parts) > 3 else run_id


def job_name(options: DicosOptions, run_id: str) -> str:
    return dicos_name(options.name or _run_name(run_id), run_id)


def submit_argv(options: DicosOptions, run_id: str, n_tasks: int) -> list[str]:
    """The ``dicos job submit`` command, run from inside the bundle."""
    argv = ["dicos", "job", "submit", "-i", ".", "-N", job_name(options, run_id),
            "-c", JOB_COMMAND]
    if n_tasks > 1:
        argv += ["-A", ARGLIST]
    else:
        argv += ["-j", str(options.jobs)]
    if options.require_cores is not None:
        argv += ["--requireCores", str(options.require_cores)]
    if options.require_ram is not None:
        argv += ["--requireRAM", str(options.require_ram)]
    return argv


def _hours_since(created_at: str) -> int:
    """The ``-t`` window that still shows a run created at ``created_at``."""
    try:
        created = _dt.datetime.fromisoformat(created_at)
    except ValueError:
        return dicos_cli.DEFAULT_HOURS
    age = _dt.datetime.now(_dt.timezone.utc) - created
    return max(dicos_cli.DEFAULT_HOURS, int(age.total_seconds() // 3600) + 2)


def _refs(text: str, tasks: Sequence[int], spec_tasks: Sequence[int]) -> list[JobRef]:
    subs = dicos_cli.parse_submissions(text)
    return [JobRef(job_id=s.job_id, tasks=[task],
                   extra={"task_id": s.task_id, "spec_task": spec})
            for s, task, spec in zip(subs, tasks, spec_tasks, strict=False)]


def _check_made(result: CommandResult, refs: list[JobRef], wanted: int, what: str) -> None:
    """Raise on ERROR lines or missing jobs, carrying the jobs that WERE made, so they
    are recorded (and can be cancelled) rather than lost."""
    try:
        dicos_cli.raise_on_errors(result.stdout, result.stderr, what)
        if result.exit_code != 0 or len(refs) != wanted:
            raise CommandError(result.script, result.exit_code, result.stdout, result.stderr,
                               message=f"{what} reported {len(refs)} of {wanted} jobs")
    except (RemoteError, CommandError) as exc:
        if refs:
            raise PartialSubmitError(f"{exc} ({len(refs)} job(s) were made and recorded)",
                                     refs) from None
        raise


class DicosScheduler(Scheduler[DicosOptions]):
    """One DiCOS task per run: ``-j N`` copies, or one job per sweep point with ``-A``."""

    name = "dicos"
    options_model = DicosOptions
    job_template = "hpctriton.schedulers.dicos:job.sh.j2"
    capabilities = Capabilities(state_files_reachable=False)
    manual_command = "bash submit.sh"

    # ------------------------------------------------------------------ render

    def extra_files(self, ctx: RenderContext) -> dict[str, str]:
        argv = submit_argv(self.options(ctx.cluster), ctx.run_id, ctx.n_tasks)
        files = {"submit.sh": templating.render("hpctriton.schedulers.dicos:submit.sh.j2",
                                                run_id=ctx.run_id, submit_argv=argv)}
        if ctx.n_tasks > 1:
            files[ARGLIST] = templating.render("hpctriton.schedulers.dicos:arglist.txt.j2",
                                               n_tasks=ctx.n_tasks)
        return files

    def how_to_run(self, ctx: RenderContext) -> str:
        return f"Submit from inside this folder: {self.manual_command} (dicos job submit -i .)"

    def task_count(self, cluster: ClusterView, n_points: int) -> int:
        return n_points if n_points > 1 else self.options(cluster).jobs

    # --------------------------------------------------------------------- run

    def submit(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> list[JobRef]:
        """``bash submit.sh`` in the staged bundle: the exact line a user would run."""
        if list(tasks) != list(range(run.n_tasks)):
            return self.resubmit(transport, run, tasks)
        script = templating.render("hpctriton.schedulers.dicos:submit_staged.sh.j2",
                                   remote_dir=run.remote_dir)
        result = transport.run_script(script, timeout=300)
        sweep = (run.bundle_dir / ARGLIST).is_file()  # -A: job i runs point i; -j: task 0
        refs = _refs(result.stdout, list(tasks), list(tasks) if sweep else [0] * len(tasks))
        _check_made(result, refs, len(tasks), "dicos job submit")
        return refs

    def resubmit(self, transport: Transport, run: RunView,
                 tasks: Sequence[int]) -> list[JobRef]:
        """``dicos job resubmit <JobID>`` for each task's newest job, in one script."""
        jobs = [(t, j.job_id) for t in tasks if (j := run.job_for_task(t)) is not None]
        script = templating.render("hpctriton.schedulers.dicos:resubmit.sh.j2",
                                   remote_dir=run.remote_dir, jobs=jobs)
        result = transport.run_script(script, timeout=300)
        refs: list[JobRef] = []
        for block in result.stdout.split("@@TASK ")[1:]:
            task_s, _, text = block.partition("\n")
            old = run.job_for_task(int(task_s))
            spec = int(old.extra.get("spec_task", 0)) if old else 0
            refs += _refs(text, [int(task_s)], [spec])
        _check_made(result, refs, len(jobs), "dicos job resubmit")
        return refs

    def poll(self, transport: Transport, run: RunView,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        """One ``dicos job status -l -T <TaskID> -n <count> -t <hours>`` per DiCOS task
        (one per run, plus one per resubmission task), all in one remote script.
        ``-n`` matters: without it the tool shows only 15 rows."""
        task_ids = sorted({str(j.extra.get("task_id")) for j in run.jobs
                           if j.extra.get("task_id")})
        if not task_ids:
            return {}
        script = templating.render("hpctriton.schedulers.dicos:status.sh.j2",
                                   task_ids=task_ids, rows=len(run.jobs) + 10,
                                   hours=_hours_since(run.created_at))
        result = transport.run_script(script, timeout=120)
        dicos_cli.raise_on_errors(result.stdout, result.stderr, "dicos job status")
        by_job = {row.job_id: row for row in dicos_cli.parse_status(result.stdout)}
        info: dict[int, SchedulerInfo] = {}
        for task in tasks:
            job = run.job_for_task(task)
            row = by_job.get(job.job_id) if job else None
            if row is None:
                continue
            reason = f"DiCOS {row.status}" + (f" on {row.extra['Queue']}"
                                              if row.extra.get("Queue") else "")
            info[task] = SchedulerInfo(row.state, row.job_id, reason, row.status)
        return info

    def cancel(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> None:
        ids = [j.job_id for t in tasks if (j := run.job_for_task(t)) is not None]
        script = templating.render("hpctriton.schedulers.dicos:cancel.sh.j2",
                                   job_ids=list(dict.fromkeys(ids)))
        result = transport.run_script(script)
        dicos_cli.raise_on_errors(result.stdout, result.stderr, "dicos job cancel")

    def prepare_collect(self, transport: Transport, run: RunView,
                        tasks: Sequence[int]) -> None:
        """``dicos job getoutput`` in a fresh folder, then move each job's results folder
        to ``results/<task>`` so they are fetched exactly like Slurm results (moved, never
        linked: collect follows no link on the cluster)."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        folder = f"{run.remote_dir}/outputs/{stamp}"
        jobs = {t: j for t in tasks if (j := run.job_for_task(t)) is not None}
        script = templating.render("hpctriton.schedulers.dicos:getoutput.sh.j2", folder=folder,
                                   job_ids=[j.job_id for j in jobs.values()])
        result = transport.run_script(script, timeout=600)
        try:
            dicos_cli.raise_on_errors(result.stdout, result.stderr, "dicos job getoutput")
        except RemoteError as exc:
            raise CollectError(str(exc)) from None
        outputs = dicos_cli.parse_outputs(result.stdout)
        moves = []
        for task, job in jobs.items():
            out = outputs.get(job.job_id)
            if out is None:
                raise CollectError(f"dicos job getoutput did not report the output folder of "
                                   f"job {job.job_id} (task {task}); it printed:\n"
                                   + result.stdout.strip())
            source = f"{folder}/{out.removeprefix('./')}/results/{job.extra.get('spec_task', 0)}"
            moves.append((source, f"{run.remote_dir}/results/{task}"))
        if moves:
            script = templating.render("hpctriton.schedulers.dicos:move_outputs.sh.j2",
                                       results_dir=f"{run.remote_dir}/results", moves=moves)
            transport.run_script(script).check("moving the DiCOS outputs into results/")

    def doctor(self, transport: Transport, cluster: ClusterView) -> list[DoctorCheck]:
        checks = []
        for command in ("ping", "whoami"):
            result = transport.run(["dicos", command])
            errors = dicos_cli.error_lines(result.stdout + "\n" + result.stderr)
            ok = result.ok and not errors
            detail = " / ".join(errors) if errors else (
                result.stdout.strip().splitlines()[0] if result.stdout.strip()
                else result.stderr.strip() or f"exit code {result.exit_code}")
            checks.append(DoctorCheck(f"dicos {command}", ok, detail))
        return checks
