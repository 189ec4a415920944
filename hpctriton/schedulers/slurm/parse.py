"""Everything hpctriton reads of Slurm's answers, with the state map beside it.

Pure functions: text in, task information out. Job ids are matched field by field,
never grepped (``JobId=1`` must not match inside ``ArrayJobId=100``), and each task is
answered for by its newest submission only (a resubmitted task's old job is history).
"""

from __future__ import annotations

import re

from hpctriton.schedulers.base import RunView
from hpctriton.schedulers.jobs import JobRef, JobState, SchedulerInfo

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

#: Pending reasons that cannot clear without an administrator: a task pending this long
#: (a cluster's ``max_pending_s``) for one of them fails, and its job is cancelled so it
#: does not run unattended later. After ReFrame's ``_cancel_if_blocked`` (its list, plus
#: invalid accounts and QOS, per-job limits, an administrator's hold and unsatisfiable
#: constraints or dependencies); left out on purpose: ``QOSJobLimit``,
#: ``QOSResourceLimit``, ``QOSUsageThreshold`` and ``Licenses``, which clear when other
#: jobs end. ``ReqNodeNotAvail`` counts only when every node it names is down or drained
#: (:func:`nodes_down`), as ReFrame checks too.
SLURM_BLOCKED_REASONS: dict[str, str] = {
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "PartitionNodeLimit": "the job asks for more nodes than the partition allows, or the "
                          "partition's nodes are down or drained",
    "PartitionTimeLimit": "the job's time limit is longer than the partition allows",
    "NodeDown": "a node the job needs is down",
    "FrontEndDown": "no front-end node is available",
    "ReqNodeNotAvail": "every node the job can use is down or drained",
    "InvalidAccount": "the job's account is invalid",
    "InvalidQOS": "the job's QOS is invalid",
    "AccountNotAllowed": "the job's account may not use the partition",
    "QOSNotAllowed": "the job's QOS may not use the partition",
    "JobHeldAdmin": "an administrator holds the job",
    "BadConstraints": "the job's constraints cannot be satisfied",
    "DependencyNeverSatisfied": "the job depends on a job that will never let it start",
}
#: Per-job limits (``AssocMaxCpuPerJobLimit``, ``QOSMaxWallDurationPerJobLimit``…): the
#: job asks for more than it may ever have.
_PER_JOB_LIMIT = re.compile(r"^(Assoc|QOS)Max\w*PerJob\w*Limit$")
#: Node states that mean "not coming back without an administrator".
NODE_DOWN_STATES = ("DOWN", "DRAIN", "FAIL", "MAINT", "NOT_RESPONDING", "FUTURE",
                    "INVALID_REG", "POWERED_DOWN")
#: What a reason means for the user, where Slurm's word alone does not say it.
SLURM_REASON_HELP: dict[str, str] = {
    "JobLaunchFailure": "Slurm could not launch the job; most often its output file "
                        "(--output) could not be created on the compute node: check that "
                        "the workdir exists there and is writable",
}

#: Words in sbatch's stderr that mean "try again": the controller was busy or away.
TRANSIENT_ERRORS = ("Socket timed out", "Resource temporarily unavailable",
                    "Unable to contact slurm controller", "Zero Bytes were transmitted",
                    "slurm_receive_msg", "Connection refused")


def reason_word(reason: str) -> str:
    """``ReqNodeNotAvail, UnavailableNodes:n[1-3]`` -> ``ReqNodeNotAvail``."""
    return reason.strip().strip("()").split(",")[0].split(":")[0].strip()


def blocked_reason(reason: str) -> str | None:
    """Why a pending job with this reason can never start without an administrator, or
    None when it may still start by itself.

    Example::

        >>> blocked_reason("PartitionDown")
        'the partition is down'
        >>> blocked_reason("Priority") is None
        True
    """
    word = reason_word(reason)
    if word in SLURM_BLOCKED_REASONS:
        return SLURM_BLOCKED_REASONS[word]
    if _PER_JOB_LIMIT.match(word):
        return "the job asks for more than a per-job limit allows"
    return None


def unavailable_nodes(reason: str) -> str:
    """The node list of ``ReqNodeNotAvail, UnavailableNodes:n[1-3]`` ("" when none)."""
    _, _, nodes = reason.partition("UnavailableNodes:")
    return nodes.strip().strip(")").strip()


def nodes_down(text: str) -> bool:
    """``scontrol -o show node …`` output: True when it lists nodes and every one is in a
    state that needs an administrator (down, drained, failed…)."""
    states = re.findall(r"(?:^|\s)State=(\S+)", text)
    return bool(states) and all(any(d in state.upper() for d in NODE_DOWN_STATES)
                                for state in states)


def explain(reason: str) -> str:
    """A reason with what it means for the user, when Slurm's word does not say it."""
    help_text = SLURM_REASON_HELP.get(reason_word(reason))
    return f"{reason}: {help_text}" if help_text else reason


def _exit_code(text: str) -> int | None:
    """sacct's ``ExitCode`` ``74:0`` -> 74 (None for ``0:0`` or nothing)."""
    code, _, _signal = text.partition(":")
    return int(code) if code.isdigit() and int(code) else None


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


def max_array_size(output: str, default: int = 1001) -> int:
    """``MaxArraySize`` from ``scontrol show config`` (Slurm's default is 1001)."""
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else default


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


def _task_of(run: RunView) -> dict[tuple[str, int | None], tuple[int, JobRef]]:
    """(job id, array index or None) -> (task, job), for each task's newest submission
    only: rows about a resubmitted task's old job must not overwrite the new one's."""
    table: dict[tuple[str, int | None], tuple[int, JobRef]] = {}
    for task in range(run.n_tasks):
        job = run.job_for_task(task)
        if job is None:
            continue
        index = task - job.offset if job.extra.get("array") else None
        table[(job.job_id, index)] = (task, job)
    return table


def parse_sacct(text: str, run: RunView) -> dict[int, SchedulerInfo]:
    """``sacct -n -P -X -o JobID,JobIDRaw,State,ExitCode,Reason`` rows -> task info."""
    table = _task_of(run)
    info: dict[int, SchedulerInfo] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        job_id, state_raw = fields[0], fields[2]
        reason = explain(fields[4]) if len(fields) > 4 and fields[4] not in ("None", "") else ""
        code = _exit_code(fields[3]) if len(fields) > 3 else None
        base, _, index_spec = job_id.partition("_")
        indices: list[int | None] = list(_indices(index_spec)) if index_spec else [None]
        for index in indices:
            hit = table.get((base, index))
            if hit is None:
                continue
            task, _job = hit
            info[task] = SchedulerInfo(slurm_state(state_raw), f"{base}_{index}"
                                       if index is not None else base, reason, state_raw,
                                       code)
    return info


def parse_squeue(text: str, run: RunView) -> dict[int, SchedulerInfo]:
    """``squeue -h -t all -r -o '%i|%A|%K|%T|%r'`` rows -> task info."""
    table = _task_of(run)
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
        reason = "" if reason in ("None", "(null)") else explain(reason)
        info[task] = SchedulerInfo(slurm_state(state_raw), shown, reason, state_raw)
    return info


def parse_poll(text: str, run: RunView) -> dict[int, SchedulerInfo]:
    """The poll script's answer: ``@@SACCT`` and sacct's rows, or ``@@SQUEUE <why>``
    and squeue's rows where accounting does not answer."""
    head, _, rows = text.partition("\n")
    if head.startswith("@@SACCT"):
        return parse_sacct(rows, run)
    return parse_squeue(rows, run)


def parse_submitted(output: str) -> list[tuple[int, str, str]]:
    """The submit script's ``@@JOB <offset> <id or id;cluster>`` lines, in order, as
    (offset, job id, cluster); a mangled line is skipped (the script failed there)."""
    made = []
    for line in output.splitlines():
        if not line.startswith("@@JOB "):
            continue
        _, offset, *rest = line.split(" ", 2)
        try:
            job_id, cluster = parse_parsable(rest[0] if rest else "")
        except ValueError:
            continue
        made.append((int(offset), job_id, cluster))
    return made


def parse_doctor(output: str) -> list[tuple[str, str]]:
    """The doctor script's ``@@KIND detail`` lines as (kind, detail), in order."""
    found = []
    for line in output.splitlines():
        if line.startswith("@@"):
            kind, _, detail = line[2:].partition(" ")
            found.append((kind, detail))
    return found
