"""When each task and check ran: the numbers behind the timeline figures and the task
times of the reports.

Result entries carry durations, not start times, and the probe runs checks one after
another, so a task's checks are laid end to end from the moment its probe started.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from hpctriton.results.measures import task_scopes
from hpctriton.results.model import STATUS_RANK, CheckResult, Results, TaskResults


class Segment(NamedTuple):
    """Consecutive results of one check, placed in its task's time."""

    check: str
    start_s: float
    duration_s: float
    #: The worst status of those results.
    status: str


@dataclass(frozen=True)
class TimelineRow:
    """One task on a timeline."""

    task: TaskResults
    #: The task's sweep point as text (:func:`~hpctriton.results.measures.task_scopes`).
    scope: str
    #: Seconds from the first task's start to this one's (0 when unknown).
    offset_s: float
    #: How long the probe ran (the sum of its checks when the times are unknown).
    total_s: float
    segments: list[Segment]


@dataclass(frozen=True)
class Timeline:
    """The tasks of one run on a common time axis."""

    #: When the first task started (None when no task says).
    started: _dt.datetime | None
    rows: list[TimelineRow]
    #: Tasks the run has results for, including those left off ``rows``.
    tasks_total: int
    #: Every check of the run, in the order they first ran.
    check_names: list[str]


def parse_time(text: Any) -> _dt.datetime | None:
    """An ISO 8601 time of the results (``...Z`` or with an offset), None otherwise.

    Example::

        >>> parse_time("2026-11-21T22:40:33.123Z").year
        2026
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def task_span(task: TaskResults) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    """When the probe of a task started and ended (results.json, else state.json).

    Example::

        >>> start, end = task_span(res.tasks[0])
        >>> (end - start).total_seconds()
        0.373
    """
    state = task.state
    start = parse_time(task.run_info.get("started_at")) or parse_time(
        state.get("started_at") if state is not None else None)
    end = parse_time(task.run_info.get("ended_at")) or parse_time(
        state.get("finished_at") if state is not None else None)
    return start, end


def task_seconds(task: TaskResults) -> float | None:
    """How long a task's probe ran: its own count, else its span (None: unknown).

    Example::

        >>> task_seconds(res.tasks[0])
        19.5
    """
    value = task.run_info.get("duration_s")
    if isinstance(value, (int, float)):
        return float(value)
    start, end = task_span(task)
    return (end - start).total_seconds() if start and end else None


def check_segments(checks: Sequence[CheckResult]) -> list[Segment]:
    """One :class:`Segment` per run of consecutive results of one check, laid end to
    end from 0 (the gaps of the real run, start-up and the statistics snapshot, fall at
    the end instead).

    Example::

        >>> check_segments(res.tasks[0].checks)[:2]
        [Segment(check='health', start_s=0.0, duration_s=0.0021, status='pass'),
         Segment(check='metadata', start_s=0.0021, duration_s=0.0088, status='pass')]
    """
    out: list[Segment] = []
    t = 0.0
    for c in checks:
        if out and out[-1].check == c.check:
            last = out[-1]
            worse = STATUS_RANK.get(c.status, 3) > STATUS_RANK.get(last.status, 3)
            out[-1] = last._replace(duration_s=last.duration_s + c.duration_s,
                                    status=c.status if worse else last.status)
        else:
            out.append(Segment(c.check, t, c.duration_s, c.status))
        t += c.duration_s
    return out


def timeline(results: Results, limit: int | None = None) -> Timeline:
    """The first ``limit`` tasks of a run (all by default) on one time axis.

    Example::

        >>> [(r.task.task, r.offset_s) for r in timeline(res).rows]
        [(0, 0.0), (1, 5.0)]
    """
    tasks = results.tasks[:limit]
    spans = [task_span(t) for t in tasks]
    starts = [s for s, _ in spans if s is not None]
    t0 = min(starts) if starts else None
    scopes = task_scopes(results.tasks)
    rows = []
    for task, (start, end) in zip(tasks, spans, strict=True):
        segments = check_segments(task.checks)
        if start and end:
            total = (end - start).total_seconds()
        else:
            total = segments[-1].start_s + segments[-1].duration_s if segments else 0.0
        offset = (start - t0).total_seconds() if start and t0 else 0.0
        rows.append(TimelineRow(task, scopes[task.task], offset, total, segments))
    return Timeline(t0, rows, len(results.tasks), results.check_names)
