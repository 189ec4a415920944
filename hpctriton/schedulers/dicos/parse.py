"""Everything hpctriton knows about the output of the ``dicos`` command, in one place.

The contract comes from ASGC's public user documentation (summarised in
docs/schedulers.md, "DiCOS"); a change on the real side should be a change to this file only.

* ``dicos job submit`` prints ``Job <JobID> is submitted. (TaskID: <TaskID>)`` per job.
* ``dicos job getoutput`` prints ``Got output of job <JobID> in ./DiCOS_job_<JobID>_<Name>_output``.
* ``dicos job status`` prints a table: a header, a dashed line, then rows whose first two
  columns are TaskID and PandaID (= JobID) and whose last column is the status; the
  name is what lies between (it has no spaces in practice, but nothing here relies on
  that). ``-l`` adds Queue, Creation_Time and End_Time before the status. Without
  ``-n`` the tool shows at most 15 rows.
* Any line containing ``ERROR`` (``[ERROR] …`` for an expired proxy,
  ``[<timestamp> ERROR] Failed to download``) is a failure, whatever the exit code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hpctriton.errors import RemoteError
from hpctriton.schedulers.jobs import JobState

SUBMITTED = re.compile(r"Job (?P<job>\d+) is submitted\. \(TaskID: (?P<task>\d+)\)")
GOT_OUTPUT = re.compile(r"Got output of job (?P<job>\d+) in (?P<folder>\./\S.*?)\s*$")
#: Hours of history ``dicos job status`` shows without ``-t``.
DEFAULT_HOURS = 240

#: PanDA job states (DiCOS runs on PanDA) -> hpctriton's. Unknown words stay unknown.
DICOS_STATES: dict[str, JobState] = {
    "defined": JobState.PENDING, "assigned": JobState.PENDING, "activated": JobState.PENDING,
    "sent": JobState.PENDING, "starting": JobState.PENDING, "pending": JobState.PENDING,
    "running": JobState.RUNNING, "holding": JobState.RUNNING,
    "transferring": JobState.RUNNING, "merging": JobState.RUNNING,
    "finished": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED, "closed": JobState.CANCELLED,
}


@dataclass(frozen=True)
class Submission:
    job_id: str
    task_id: str


@dataclass(frozen=True)
class StatusRow:
    task_id: str
    job_id: str
    name: str
    status: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> JobState:
        return DICOS_STATES.get(self.status.lower(), JobState.UNKNOWN)


def error_lines(text: str) -> list[str]:
    """Lines that report an error (the tool may still exit 0)."""
    return [line.strip() for line in text.splitlines() if "ERROR" in line]


def raise_on_errors(stdout: str, stderr: str, what: str) -> None:
    """Turn any ``ERROR`` line into a clear failure, the line quoted."""
    lines = error_lines(stdout) + error_lines(stderr)
    if lines:
        raise RemoteError(f"{what}: dicos reported an error:\n"
                          + "\n".join(f"  {line}" for line in lines))


def parse_submissions(text: str) -> list[Submission]:
    """Every ``Job <JobID> is submitted. (TaskID: <TaskID>)`` line, in order."""
    return [Submission(m["job"], m["task"]) for m in SUBMITTED.finditer(text)]


def parse_outputs(text: str) -> dict[str, str]:
    """JobID -> output folder (relative to where ``getoutput`` ran)."""
    out = {}
    for line in text.splitlines():
        match = GOT_OUTPUT.search(line)
        if match:
            out[match["job"]] = match["folder"]
    return out


def parse_status(text: str) -> list[StatusRow]:
    """Rows of a ``dicos job status`` table (short or long format)."""
    lines = text.splitlines()
    header_at = next((i for i, ln in enumerate(lines)
                      if "TaskID" in ln and "PandaID" in ln), None)
    if header_at is None:
        return []
    header = lines[header_at]
    columns = header.split()
    extra_names = [c for c in columns[3:-1]]  # between Name and Status (long format)
    offsets = [header.index(c) for c in extra_names]
    rows = []
    for line in lines[header_at + 1:]:
        if not line.strip() or set(line.strip()) <= {"-"} or "ERROR" in line:
            continue
        words = line.split()
        if len(words) < 4 or not (words[0].isdigit() and words[1].isdigit()):
            continue
        task_id, job_id, status = words[0], words[1], words[-1]
        extra: dict[str, str] = {}
        middle_end = len(line.rstrip()) - len(status)
        if offsets and len(line) > offsets[0]:
            name = line[:offsets[0]].split(None, 2)[2].strip() if len(
                line[:offsets[0]].split(None, 2)) > 2 else ""
            bounds = [*offsets, middle_end]
            for col, start, end in zip(extra_names, bounds, bounds[1:], strict=False):
                extra[col] = line[start:end].strip()
        else:
            rest = line[:middle_end].split(None, 2)
            name = rest[2].strip() if len(rest) > 2 else ""
        rows.append(StatusRow(task_id, job_id, name, status, extra))
    return rows
