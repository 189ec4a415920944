"""Slurm: ``#SBATCH`` directives, ``sbatch`` job arrays, ``sacct``/``squeue`` as hints.

Directive values are formatted by simple-slurm's helpers (ranges to array specs,
timedeltas to ``D-HH:MM:SS``) and quoted by the job template for sbatch's own parser;
option names in ``slurm.extra`` are checked against simple-slurm's list of sbatch
options. Everything read back from Slurm is parsed in :mod:`.parse`.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from simple_slurm.core import Slurm, fmt_value, read_simple_txt

from hpctriton.errors import CommandError, ConfigError, PartialSubmitError
from hpctriton.schedulers.base import (
    Capabilities,
    ChainSpec,
    ClusterView,
    DoctorCheck,
    RenderContext,
    RunView,
    Scheduler,
)
from hpctriton.schedulers.jobs import JobRef, SchedulerInfo
from hpctriton.schedulers.slurm import parse
from hpctriton.schedulers.slurm.options import SlurmOptions
from hpctriton.shell import templates as templating

if TYPE_CHECKING:
    from hpctriton.transport import Transport

#: Long sbatch option names simple-slurm knows (``cpus-per-task``, …).
SBATCH_OPTIONS = frozenset(
    Slurm._valid_key(row[0]) for row in read_simple_txt("arguments.txt") if row and row[0]
)
_OPTION = re.compile(r"--(?P<key>[a-z][a-z0-9-]*)(=(?P<value>.*))?", re.DOTALL)
#: Options hpctriton sets itself: ``slurm.extra`` may not give them.
_OWN_OPTIONS = ("output", "error", "array", "chdir", "parsable", "wait")
#: A load from several tasks starts this many seconds after srun is called (time for
#: every task to start its container, import tritonclient and build its requests);
#: ``HPCTRITON_LOAD_LEAD_S`` in the job's environment overrides it.
LOAD_LEAD_S = 10


def job_name(options: SlurmOptions, run_id: str) -> str:
    """The Slurm job name: ``slurm.job_name`` or ``hpct-<run id>``."""
    return options.job_name or f"hpct-{run_id}"


def array_spec(n_tasks: int, parallelism: int | None = None) -> str:
    """``0-19%4``: array indices for ``n_tasks`` tasks, at most ``parallelism`` at once."""
    spec = fmt_value(range(0, n_tasks)) if n_tasks > 1 else "0"
    return spec + (f"%{parallelism}" if parallelism else "")


def chunk_spec(chunk: Sequence[int], parallelism: int | None = None) -> str:
    """Array indices of a chunk of tasks, counted from its first task (the offset)."""
    indices = [t - chunk[0] for t in chunk]
    if indices == list(range(len(indices))):
        return array_spec(len(indices), parallelism)
    return ",".join(map(str, indices)) + (f"%{parallelism}" if parallelism else "")


def chunks(tasks: Sequence[int], size: int) -> list[list[int]]:
    """Consecutive runs of at most ``size`` tasks (array indices must stay below
    MaxArraySize, so each chunk is submitted with an offset)."""
    ordered = sorted(tasks)
    out: list[list[int]] = []
    for task in ordered:
        if out and len(out[-1]) < size and task - out[-1][0] < size:
            out[-1].append(task)
        else:
            out.append([task])
    return out


def output_pattern(n_tasks: int) -> str:
    """Where Slurm writes the job's stdout/stderr: beside the results, collected with them."""
    return "results/slurm-%A_%a.out" if n_tasks > 1 else "results/slurm-%j.out"


def output_path(remote_dir: str, n_tasks: int) -> str:
    """The output file as sbatch's ``--output`` takes it: absolute, with ``%`` of the run
    folder doubled (Slurm's escape), the job and array ids left to Slurm.

    Example::

        >>> output_path("/home/a/100%/run", 1)
        '/home/a/100%%/run/results/slurm-%j.out'
    """
    return f"{remote_dir.replace('%', '%%')}/{output_pattern(n_tasks)}"


def newest_jobs(run: RunView, tasks: Sequence[int]) -> dict[str, JobRef]:
    """Job id -> submission, for the newest submission of each task (resubmits win)."""
    jobs: dict[str, JobRef] = {}
    for task in tasks:
        job = run.job_for_task(task)
        if job is not None:
            jobs[job.job_id] = job
    return jobs


def cluster_option(jobs: Iterable[JobRef]) -> list[str]:
    """``["-M", "name"]`` when sbatch answered ``id;cluster`` (a multi-cluster site)."""
    names = sorted({str(j.extra["cluster"]) for j in jobs if j.extra.get("cluster")})
    return ["-M", ",".join(names)] if names else []


class SlurmScheduler(Scheduler[SlurmOptions]):
    """Submit with ``sbatch --parsable``; one job array per run (chunked to MaxArraySize)."""

    name = "slurm"
    options_model = SlurmOptions
    job_template = "hpctriton.schedulers.slurm:job.sh.j2"
    capabilities = Capabilities(job_arrays=True, multi_task_load=True, job_chain=True)
    manual_command = "sbatch job.sh"

    def job_values(self, ctx: RenderContext) -> dict[str, Any]:
        """The ``#SBATCH`` options as (name, value or None, what) for the template,
        which quotes each value for sbatch's parser; and the srun lead time."""
        s = self.options(ctx.cluster)
        time: Any = s.time
        if isinstance(time, int):
            time = _dt.timedelta(seconds=time)
        pairs: list[tuple[str, Any]] = [
            ("job-name", job_name(s, ctx.run_id)),
            ("partition", s.partition),
            ("account", s.account),
            ("qos", s.qos),
            ("time", time),
            ("nodes", s.nodes),
            ("ntasks", _ntasks(s, ctx)),
            ("cpus-per-task", s.cpus_per_task),
            ("mem", s.mem),
            ("gres", s.gres),
            ("output", output_pattern(ctx.n_tasks)),
        ]
        if ctx.n_tasks > 1:
            pairs.append(("array", array_spec(ctx.n_tasks, s.array_parallelism)))
        options: list[tuple[str, str | None, str]] = [
            (key, fmt_value(value), f"slurm {key}") for key, value in pairs if value is not None]
        where = f"clusters.{ctx.cluster_name}.slurm.extra" if ctx.cluster_name else "slurm.extra"
        for item in s.extra:
            match = _OPTION.fullmatch(item)
            if not match or match["key"] not in SBATCH_OPTIONS:
                raise ConfigError(
                    f"{item!r} is not a known sbatch option (--name or --name=value)", field=where
                )
            if match["key"] in _OWN_OPTIONS:
                raise ConfigError(
                    f"--{match['key']} is set by hpctriton and cannot be given in extra",
                    field=where,
                )
            options.append((match["key"], match["value"], f"slurm extra {item!r}"))
        return {"sbatch_options": options, "load_lead_s": LOAD_LEAD_S}

    def how_to_run(self, ctx: RenderContext) -> str:
        return f"Submit from inside this folder: {self.manual_command} (the job runs in the bundle)"

    # ------------------------------------------------------------------- run

    def _max_array_size(self, transport: Transport, run: RunView) -> int:
        configured = self.options(run.cluster_config()).max_array_size
        if configured:
            return configured
        script = templating.render("hpctriton.schedulers.slurm:array_limit.sh.j2")
        return parse.max_array_size(transport.run_script(script).stdout)

    def submit(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> list[JobRef]:
        """One ``sbatch --parsable`` per chunk of at most MaxArraySize tasks, all in one
        remote script; transient controller errors are retried there, three times."""
        parallelism = self.options(run.cluster_config()).array_parallelism
        plan: list[tuple[str | None, list[int], int]]
        if run.n_tasks == 1:
            plan = [(None, [0], 0)]
        else:
            size = self._max_array_size(transport, run)
            plan = [(chunk_spec(chunk, parallelism), chunk, chunk[0])
                    for chunk in chunks(tasks, size)]
        # the output file given whole, its folder's "%" escaped: Slurm expands "%" in
        # the whole path, the run folder's part included (#SBATCH --output is relative)
        output = f"--output={output_path(run.remote_dir, run.n_tasks)}"
        submissions = [
            ([output, "job.sh"] if spec is None else
             [f"--array={spec}", output, "job.sh", "--task-offset", str(offset)], offset)
            for spec, _chunk, offset in plan]
        script = templating.render("hpctriton.schedulers.slurm:submit.sh.j2",
                                   remote_dir=run.remote_dir,
                                   transient=parse.TRANSIENT_ERRORS, submissions=submissions)
        result = transport.run_script(script, timeout=120)
        by_offset = {offset: (spec, chunk) for spec, chunk, offset in plan}
        made: list[JobRef] = []
        for offset, job_id, cluster in parse.parse_submitted(result.stdout):
            spec, chunk = by_offset[offset]
            made.append(JobRef(job_id=job_id, tasks=list(chunk), offset=offset,
                               extra={"array": spec is not None, "cluster": cluster,
                                      "array_spec": spec}))
        if result.exit_code != 0:
            error = CommandError(result.script, result.exit_code, result.stdout, result.stderr,
                                 message="sbatch failed")
            if made:
                raise PartialSubmitError(f"{error} (after {len(made)} successful submission(s), "
                                         "which were recorded)", made)
            raise error
        return made

    def poll(self, transport: Transport, run: RunView,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        """``sacct`` where accounting answers, else ``squeue -t all -r``: one remote call,
        about each task's newest submission only (a resubmitted task's old job is history)."""
        jobs = newest_jobs(run, tasks)
        if not jobs:
            return {}
        ids = ",".join(jobs)
        cluster = cluster_option(jobs.values())
        script = templating.render(
            "hpctriton.schedulers.slurm:poll.sh.j2",
            sacct_argv=["sacct", *cluster, "-n", "-P", "-X", "-o",
                        "JobID,JobIDRaw,State,ExitCode,Reason", "-j", ids],
            squeue_argv=["squeue", *cluster, "-h", "-t", "all", "-r", "-j", ids,
                         "-o", "%i|%A|%K|%T|%r"])
        info = parse.parse_poll(transport.run_script(script, timeout=60).stdout, run)
        return {t: i for t, i in info.items() if t in set(tasks)}

    def cancel(self, transport: Transport, run: RunView, tasks: Sequence[int]) -> None:
        wanted = set(tasks)
        jobs = newest_jobs(run, tasks)
        targets: list[str] = []
        for job in jobs.values():
            if set(job.tasks) <= wanted:
                targets.append(job.job_id)
            elif job.extra.get("array"):
                targets += [f"{job.job_id}_{t - job.offset}" for t in job.tasks if t in wanted
                            and run.job_for_task(t) is job]
            else:
                targets.append(job.job_id)
        if targets:
            transport.run(["scancel", *cluster_option(jobs.values()), *targets]).check("scancel")

    def check_remote_dir(self, remote_dir: str, where: str) -> None:
        """A backslash in the run folder cannot reach Slurm's output file name: Slurm
        reads one there as "expand nothing" and drops it, so every job would fail to
        launch (``%`` is escaped instead: :func:`output_path`)."""
        if "\\" in remote_dir:
            raise ConfigError(
                f"the run folder {remote_dir!r} holds a backslash: Slurm removes backslashes "
                "from output file names, so no job could write its output there; choose a "
                "workdir without one", field=where)

    def blocked(self, transport: Transport, run: RunView,
                pending: dict[int, SchedulerInfo]) -> dict[int, str]:
        """Tasks pending for a reason of :data:`.parse.SLURM_BLOCKED_REASONS`;
        ``ReqNodeNotAvail`` only when ``scontrol`` says every node it names is down or
        drained (one call per distinct node list)."""
        found: dict[int, str] = {}
        nodes_of: dict[str, list[int]] = {}
        for task, info in pending.items():
            why = parse.blocked_reason(info.reason)
            if why is None:
                continue
            if parse.reason_word(info.reason) == "ReqNodeNotAvail":
                nodes = parse.unavailable_nodes(info.reason)
                if nodes:
                    nodes_of.setdefault(nodes, []).append(task)
                continue
            found[task] = f"{parse.reason_word(info.reason)}: {why}"
        for nodes, tasks in nodes_of.items():
            result = transport.run(["scontrol", "-o", "show", "node", nodes])
            if result.ok and parse.nodes_down(result.stdout):
                for task in tasks:
                    found[task] = (f"ReqNodeNotAvail: every node it can use ({nodes}) is "
                                   "down or drained")
        return found

    def extra_result_files(self, run: RunView, tasks: Sequence[int]) -> list[str]:
        names = []
        for task in tasks:
            job = run.job_for_task(task)
            if job is None:
                continue
            if job.extra.get("array"):
                names.append(f"results/slurm-{job.job_id}_{task - job.offset}.out")
            else:
                names.append(f"results/slurm-{job.job_id}.out")
        return names

    # ----------------------------------------------------------------- chain

    def chain_script(self, ctx: RenderContext, chain: ChainSpec) -> str:
        """``chain.sh``: the job's own ``#SBATCH`` directives (but its output and array,
        given per link), running every task of the bundle one after the other."""
        options = [(key, value, what) for key, value, what in self.job_values(ctx)
                   ["sbatch_options"] if key not in ("output", "array", "job-name")]
        name = self.options(ctx.cluster).job_name or f"hpct-{chain.name}"
        options.insert(0, ("job-name", name, "slurm job-name"))
        return templating.render(
            "hpctriton.schedulers.slurm:chain.sh.j2", sbatch_options=options,
            name=chain.name, schedule_dir=chain.schedule_dir, interval_s=chain.interval_s,
            count=chain.count, until_epoch=chain.until_epoch, n_tasks=chain.n_tasks,
            output_prefix=f"{chain.schedule_dir.replace('%', '%%')}/runs")

    def start_chain(self, transport: Transport, chain: ChainSpec) -> str:
        run_id = f"{chain.name}-0001"
        output = f"{chain.schedule_dir.replace('%', '%%')}/runs/{run_id}/results/slurm-%j.out"
        script = templating.render("hpctriton.schedulers.slurm:chain_start.sh.j2",
                                   schedule_dir=chain.schedule_dir, run_id=run_id,
                                   output=output)
        result = transport.run_script(script, timeout=60)
        for line in result.stdout.splitlines():
            if line.startswith("@@JOB "):
                return line.split()[1].split(";")[0]
        raise CommandError(result.script, result.exit_code, result.stdout, result.stderr,
                           message="sbatch of the chain's first link failed")

    def doctor(self, transport: Transport, cluster: ClusterView) -> list[DoctorCheck]:
        partition = self.options(cluster).partition
        script = templating.render("hpctriton.schedulers.slurm:doctor.sh.j2",
                                   partition=partition)
        checks = []
        for kind, detail in parse.parse_doctor(transport.run_script(script).stdout):
            if kind == "CMD":
                name, _, path = detail.partition(" ")
                if name == "scrontab":
                    # information, never a problem: hpctriton schedule needs no scrontab
                    checks.append(DoctorCheck(
                        "scrontab", True,
                        f"found: {path} (hpctriton schedule still uses its job chain)"
                        if path != "-" else "none on PATH (Debian's Slurm 22.05 packages "
                        "ship none): hpctriton schedule uses a job chain (sbatch --begin)",
                        optional=True))
                    continue
                checks.append(DoctorCheck(f"{name} found", path != "-", path,
                                          optional=name in ("sacct", "scontrol")))
            elif kind == "VERSION":
                checks.append(DoctorCheck("Slurm version", "slurm" in detail.lower(), detail))
            elif kind == "SACCT":
                checks.append(DoctorCheck(
                    "accounting (sacct)", detail == "ok",
                    "sacct answers" if detail == "ok" else
                    f"{detail} (status falls back to squeue; records vanish after MinJobAge)",
                    optional=True))
            elif kind == "PARTITION" and partition:
                shown = detail.strip().rstrip("*")
                checks.append(DoctorCheck(f"partition {partition}", shown == partition,
                                          "exists" if shown == partition else shown or "not found"))
        return checks


def _ntasks(options: SlurmOptions, ctx: RenderContext) -> int | None:
    """``slurm.ntasks``, raised to what a load check with ``tasks: N`` needs (its tasks
    run under ``srun --ntasks N`` inside the job)."""
    asked = options.ntasks
    needed = ctx.load_ranks
    if needed <= 1:
        return asked
    if asked is not None and asked < needed:
        where = f"clusters.{ctx.cluster_name}.slurm.ntasks" if ctx.cluster_name else "slurm.ntasks"
        raise ConfigError(f"{asked} tasks, but a load check asks for tasks: {needed}; "
                          f"set it to {needed} or more, or leave it out", field=where)
    return asked if asked is not None else needed
