"""Slurm: ``#SBATCH`` directives, ``sbatch`` job arrays, ``sacct``/``squeue`` as hints.

Directive values are formatted by simple-slurm's helpers (ranges to array specs,
timedeltas to ``D-HH:MM:SS``) and quoted here for sbatch's own parser; option names
in ``slurm.extra`` are checked against simple-slurm's list of sbatch options.
"""

from __future__ import annotations

import datetime as _dt
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from simple_slurm.core import Slurm, fmt_value, read_simple_txt

from hpctriton.errors import CommandError, ConfigError, PartialSubmitError
from hpctriton.runs.merge import load_tasks
from hpctriton.runs.record import JobRef, RunRecord
from hpctriton.runs.states import JobState, SchedulerInfo
from hpctriton.schedulers.base import Backend, DoctorCheck, RenderContext
from hpctriton.shell import templates as templating
from hpctriton.shell.quoting import sbatch_quote

if TYPE_CHECKING:
    from hpctriton.config.models import ClusterConfig, Config
    from hpctriton.transport import Transport

#: Long sbatch option names simple-slurm knows (``cpus-per-task``, …).
SBATCH_OPTIONS = frozenset(
    Slurm._valid_key(row[0]) for row in read_simple_txt("arguments.txt") if row and row[0]
)
_OPTION = re.compile(r"--(?P<key>[a-z][a-z0-9-]*)(=(?P<value>.*))?", re.DOTALL)


def _directive(key: str, value: Any) -> str:
    text = fmt_value(value)
    return f"#SBATCH --{key}={sbatch_quote(text, f'slurm {key}')}"


def job_name(ctx: RenderContext) -> str:
    """The Slurm job name: ``slurm.job_name`` or ``hpct-<run id>``."""
    return ctx.cluster.slurm.job_name or f"hpct-{ctx.run_id}"


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


def output_pattern(n_tasks: int) -> str:
    """Where Slurm writes the job's stdout/stderr: beside the results, collected with them."""
    return "results/slurm-%A_%a.out" if n_tasks > 1 else "results/slurm-%j.out"


class SlurmBackend(Backend):
    """Submit with ``sbatch --parsable``; one job array per run (chunked to MaxArraySize)."""

    name = "slurm"
    template = "hpctriton.schedulers.slurm:job.sh.j2"
    manual_command = "sbatch job.sh"

    def directives(self, ctx: RenderContext) -> list[str]:
        s = ctx.cluster.slurm
        ntasks = _ntasks(ctx)
        time: Any = s.time
        if isinstance(time, int):
            time = _dt.timedelta(seconds=time)
        pairs: list[tuple[str, Any]] = [
            ("job-name", job_name(ctx)),
            ("partition", s.partition),
            ("account", s.account),
            ("qos", s.qos),
            ("time", time),
            ("nodes", s.nodes),
            ("ntasks", ntasks),
            ("cpus-per-task", s.cpus_per_task),
            ("mem", s.mem),
            ("gres", s.gres),
            ("output", output_pattern(ctx.n_tasks)),
        ]
        if ctx.n_tasks > 1:
            pairs.append(("array", array_spec(ctx.n_tasks, s.array_parallelism)))
        lines = [_directive(k, v) for k, v in pairs if v is not None]
        where = f"clusters.{ctx.cluster_name}.slurm.extra" if ctx.cluster_name else "slurm.extra"
        for item in s.extra:
            match = _OPTION.fullmatch(item)
            if not match or match["key"] not in SBATCH_OPTIONS:
                raise ConfigError(
                    f"{item!r} is not a known sbatch option (--name or --name=value)", field=where
                )
            if match["key"] in ("output", "error", "array", "chdir", "parsable", "wait"):
                raise ConfigError(
                    f"--{match['key']} is set by hpctriton and cannot be given in extra",
                    field=where,
                )
            value = match["value"]
            lines.append(f"#SBATCH --{match['key']}" + (
                "" if value is None else "=" + sbatch_quote(value, f"slurm extra {item!r}")))
        return lines

    def how_to_run(self, ctx: RenderContext) -> str:
        return f"Submit from inside this folder: {self.manual_command} (the job runs in the bundle)"

    # ------------------------------------------------------------------- run

    def _max_array_size(self, transport: Transport, record: RunRecord) -> int:
        configured = record.cluster_config().slurm.max_array_size
        if configured:
            return configured
        result = transport.run_script("scontrol show config 2>/dev/null | grep '^MaxArraySize'")
        return max_array_size(result.stdout)

    def submit(self, transport: Transport, record: RunRecord,
               tasks: Sequence[int]) -> list[JobRef]:
        """One ``sbatch --parsable`` per chunk of at most MaxArraySize tasks, all in one
        remote script; transient controller errors are retried there, three times."""
        parallelism = record.cluster_config().slurm.array_parallelism
        plan: list[tuple[str | None, list[int], int]]
        if record.n_tasks == 1:
            plan = [(None, [0], 0)]
        else:
            size = self._max_array_size(transport, record)
            plan = [(chunk_spec(chunk, parallelism), chunk, chunk[0])
                    for chunk in chunks(tasks, size)]
        submissions = [
            (["job.sh"] if spec is None else
             [f"--array={spec}", "job.sh", "--task-offset", str(offset)], offset)
            for spec, _chunk, offset in plan]
        script = templating.render("hpctriton.schedulers.slurm:submit.sh.j2", remote_dir=record.remote_dir,
                                   transient=_TRANSIENT, submissions=submissions)
        result = transport.run_script(script, timeout=120)
        made: list[JobRef] = []
        by_offset = {offset: (spec, chunk) for spec, chunk, offset in plan}
        for line in result.stdout.splitlines():
            if not line.startswith("@@JOB "):
                continue
            _, offset_s, *rest = line.split(" ", 2)
            try:
                job_id, cluster = parse_parsable(rest[0] if rest else "")
            except ValueError:
                continue  # the script checked the id; a mangled line is reported below
            spec, chunk = by_offset[int(offset_s)]
            made.append(JobRef(job_id=job_id, tasks=list(chunk), offset=int(offset_s),
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

    def poll(self, transport: Transport, record: RunRecord,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        """``sacct`` where accounting answers, else ``squeue -t all -r``: one remote call,
        about each task's newest submission only (a resubmitted task's old job is history)."""
        jobs = newest_jobs(record, tasks)
        if not jobs:
            return {}
        q = shlex.quote(",".join(jobs))
        m = cluster_option(jobs.values())
        script = (
            f"if out=$(sacct{m} -n -P -X -o JobID,JobIDRaw,State,ExitCode,Reason -j {q} 2>&1)"
            " && [ -n \"$out\" ]; then printf '@@SACCT\\n%s\\n' \"$out\"; else "
            "printf '@@SQUEUE %s\\n' \"$(printf %s \"$out\" | head -n 1)\"; "
            f"squeue{m} -h -t all -r -j {q} -o '%i|%A|%K|%T|%r' 2>&1; fi"
        )
        result = transport.run_script(script, timeout=60)
        text = result.stdout
        if text.startswith("@@SACCT"):
            info = parse_sacct(text.split("\n", 1)[1], record)
        else:
            info = parse_squeue(text.split("\n", 1)[1] if "\n" in text else "", record)
        return {t: i for t, i in info.items() if t in set(tasks)}

    def cancel(self, transport: Transport, record: RunRecord, tasks: Sequence[int]) -> None:
        wanted = set(tasks)
        jobs = newest_jobs(record, tasks)
        targets: list[str] = []
        for job in jobs.values():
            if set(job.tasks) <= wanted:
                targets.append(job.job_id)
            elif job.extra.get("array"):
                targets += [f"{job.job_id}_{t - job.offset}" for t in job.tasks if t in wanted
                            and record.job_for_task(t) is job]
            else:
                targets.append(job.job_id)
        if targets:
            flag = cluster_option(jobs.values()).split()
            transport.run(["scancel", *flag, *targets]).check("scancel")

    def extra_result_files(self, record: RunRecord, tasks: Sequence[int]) -> list[str]:
        names = []
        for task in tasks:
            job = record.job_for_task(task)
            if job is None:
                continue
            if job.extra.get("array"):
                names.append(f"results/slurm-{job.job_id}_{task - job.offset}.out")
            else:
                names.append(f"results/slurm-{job.job_id}.out")
        return names

    def doctor(self, transport: Transport, cluster: ClusterConfig,
               config: Config) -> list[DoctorCheck]:
        partition = cluster.slurm.partition
        script = (
            "for c in sbatch squeue sacct scancel scontrol; do "
            "printf '@@CMD %s %s\\n' \"$c\" \"$(command -v $c || echo -)\"; done; "
            "printf '@@VERSION %s\\n' \"$(sbatch --version 2>&1)\"; "
            "if sacct -n -X -S now -o JobID >/dev/null 2>/tmp/.hpct-sacct.$$; then "
            "echo '@@SACCT ok'; "
            "else printf '@@SACCT %s\\n' \"$(head -n1 /tmp/.hpct-sacct.$$)\"; fi; "
            "rm -f /tmp/.hpct-sacct.$$; "
            + (f"printf '@@PARTITION %s\\n' \"$(sinfo -h -p {shlex.quote(partition)} -o %P "
               "2>&1 | head -n1)\"" if partition else "echo '@@PARTITION -'")
        )
        out = transport.run_script(script).stdout
        checks = []
        for line in out.splitlines():
            if line.startswith("@@CMD "):
                _, name, path = line.split(" ", 2)
                checks.append(DoctorCheck(f"{name} found", path != "-", path,
                                          optional=name in ("sacct", "scontrol")))
            elif line.startswith("@@VERSION "):
                checks.append(DoctorCheck("Slurm version", "slurm" in line.lower(), line[10:]))
            elif line.startswith("@@SACCT "):
                detail = line[8:]
                checks.append(DoctorCheck(
                    "accounting (sacct)", detail == "ok",
                    "sacct answers" if detail == "ok" else
                    f"{detail} (status falls back to squeue; records vanish after MinJobAge)",
                    optional=True))
            elif line.startswith("@@PARTITION ") and partition:
                shown = line[12:].strip().rstrip("*")
                checks.append(DoctorCheck(f"partition {partition}", shown == partition,
                                          "exists" if shown == partition else shown or "not found"))
        return checks


def _ntasks(ctx: RenderContext) -> int | None:
    """``slurm.ntasks``, raised to what a load check with ``tasks: N`` needs (its tasks
    run under ``srun --ntasks N`` inside the job)."""
    asked = ctx.cluster.slurm.ntasks
    needed = load_tasks(ctx.config)
    if needed <= 1:
        return asked
    if asked is not None and asked < needed:
        where = f"clusters.{ctx.cluster_name}.slurm.ntasks" if ctx.cluster_name else "slurm.ntasks"
        raise ConfigError(f"{asked} tasks, but a load check asks for tasks: {needed}; "
                          f"set it to {needed} or more, or leave it out", field=where)
    return asked if asked is not None else needed


# ------------------------------------------------------------------------- parsing

#: Slurm job states (long names, as sacct and ``squeue -o %T`` print them).
SLURM_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING, "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING, "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "CONFIGURING": JobState.RUNNING, "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING, "STAGE_OUT": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING, "RESIZING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING, "STOPPED": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED, "NODE_FAIL": JobState.FAILED, "BOOT_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED, "SPECIAL_EXIT": JobState.FAILED,
    "PREEMPTED": JobState.FAILED, "DEADLINE": JobState.TIMEOUT,
    "TIMEOUT": JobState.TIMEOUT,
    "CANCELLED": JobState.CANCELLED, "REVOKED": JobState.CANCELLED,
}

_TRANSIENT = ("Socket timed out", "Resource temporarily unavailable",
              "Unable to contact slurm controller", "Zero Bytes were transmitted",
              "slurm_receive_msg", "Connection refused")


def slurm_state(raw: str) -> JobState:
    """``CANCELLED by 0`` -> cancelled; an unknown word stays visible as unknown."""
    word = raw.strip().split(" ")[0].rstrip("+").upper()
    return SLURM_STATES.get(word, JobState.UNKNOWN)


def parse_parsable(output: str) -> tuple[str, str]:
    """``sbatch --parsable`` prints ``id`` or ``id;cluster``."""
    line = output.strip().splitlines()[-1] if output.strip() else ""
    job_id, _, cluster = line.partition(";")
    if not re.fullmatch(r"\d+", job_id):
        raise ValueError(f"sbatch printed {output.strip()!r}, not a job id")
    return job_id, cluster


def _indices(spec: str) -> list[int]:
    """``[0-3,7%2]`` or ``5`` -> array indices."""
    spec = spec.strip("[]").split("%")[0]
    out: list[int] = []
    for part in spec.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        step = 1
        if ":" in hi:
            hi, _, step_s = hi.partition(":")
            step = int(step_s)
        out.extend(range(int(lo), int(hi or lo) + 1, step))
    return out


def newest_jobs(record: RunRecord, tasks: Sequence[int]) -> dict[str, JobRef]:
    """Job id -> submission, for the newest submission of each task (resubmits win)."""
    jobs: dict[str, JobRef] = {}
    for task in tasks:
        job = record.job_for_task(task)
        if job is not None:
            jobs[job.job_id] = job
    return jobs


def cluster_option(jobs: Iterable[JobRef]) -> str:
    """`` -M name`` when sbatch answered ``id;cluster`` (a multi-cluster site), else ``""``."""
    names = sorted({str(j.extra["cluster"]) for j in jobs if j.extra.get("cluster")})
    return f" -M {shlex.quote(','.join(names))}" if names else ""


def _task_of(record: RunRecord) -> dict[tuple[str, int | None], tuple[int, JobRef]]:
    """(job id, array index or None) -> (task, job), for each task's newest submission
    only: rows about a resubmitted task's old job must not overwrite the new one's."""
    table: dict[tuple[str, int | None], tuple[int, JobRef]] = {}
    for task in range(record.n_tasks):
        job = record.job_for_task(task)
        if job is None:
            continue
        index = task - job.offset if job.extra.get("array") else None
        table[(job.job_id, index)] = (task, job)
    return table


def parse_sacct(text: str, record: RunRecord) -> dict[int, SchedulerInfo]:
    """``sacct -n -P -X -o JobID,JobIDRaw,State,ExitCode,Reason`` rows -> task info."""
    table = _task_of(record)
    info: dict[int, SchedulerInfo] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        job_id, state_raw = fields[0], fields[2]
        reason = fields[4] if len(fields) > 4 and fields[4] not in ("None", "") else ""
        base, _, index_spec = job_id.partition("_")
        indices: list[int | None] = list(_indices(index_spec)) if index_spec else [None]
        for index in indices:
            hit = table.get((base, index))
            if hit is None:
                continue
            task, _job = hit
            info[task] = SchedulerInfo(slurm_state(state_raw), f"{base}_{index}"
                                       if index is not None else base, reason, state_raw)
    return info


def parse_squeue(text: str, record: RunRecord) -> dict[int, SchedulerInfo]:
    """``squeue -h -t all -r -o '%i|%A|%K|%T|%r'`` rows -> task info."""
    table = _task_of(record)
    info: dict[int, SchedulerInfo] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 5:
            continue
        shown, _raw_id, index_s, state_raw, reason = fields[:5]
        base = shown.partition("_")[0]
        index = int(index_s) if index_s.strip().isdigit() else None
        hit = table.get((base, index)) or table.get((base, None))
        if hit is None:
            continue
        task, _job = hit
        reason = "" if reason in ("None", "(null)") else reason
        info[task] = SchedulerInfo(slurm_state(state_raw), shown, reason, state_raw)
    return info


def max_array_size(output: str, default: int = 1001) -> int:
    """``MaxArraySize`` from ``scontrol show config`` (Slurm's default is 1001)."""
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else default


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
