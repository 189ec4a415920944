"""Counts behind the summary tables: per check over a run, and per check of one task.

Example::

    >>> [(s.check, s.counts["fail"]) for s in check_summaries(res)]
    [('health', 0), ('infer', 2)]
"""

from __future__ import annotations

from dataclasses import dataclass

from hpctriton.results.model import STATUSES, Results, TaskResults, worst_status


@dataclass(frozen=True)
class CheckSummary:
    """Every result of one check in a run."""

    check: str
    #: Results per status, every status present (``{"pass": 4, "fail": 0, ...}``).
    counts: dict[str, int]
    duration_s: float
    #: The models it covered, in the order they first appear.
    models: list[str]


@dataclass(frozen=True)
class TaskCheck:
    """The results of one check in one task."""

    #: The worst of their statuses.
    status: str
    #: How many passed or were skipped, of ``total``.
    ok: int
    total: int


def check_summaries(results: Results) -> list[CheckSummary]:
    """One :class:`CheckSummary` per check, in the order the checks first ran."""
    out = []
    for name in results.check_names:
        found = results.by_check(name)
        out.append(CheckSummary(
            name, {s: sum(1 for c in found if c.status == s) for s in STATUSES},
            sum(c.duration_s for c in found),
            list(dict.fromkeys(c.model for c in found if c.model))))
    return out


def task_check(task: TaskResults, name: str) -> TaskCheck | None:
    """How one check went in one task (None when it has no result there)."""
    found = [c for c in task.checks if c.check == name]
    status = worst_status(c.status for c in found)
    if status is None:
        return None
    return TaskCheck(status, sum(1 for c in found if c.ok), len(found))
