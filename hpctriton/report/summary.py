"""The verdict of results in plain lines (no rich: ``hpctriton check`` prints these at
a terminal without importing a table library).

Example::

    >>> print(summary_line(res))
    OK: 14 passed, 0 failed, 0 errors, 1 skipped
"""

from __future__ import annotations

from hpctriton.results.capacity import capacities
from hpctriton.results.model import Results

__all__ = ["capacity_lines", "problem_lines", "summary_line"]


def capacity_lines(results: Results) -> list[str]:
    """One sentence per capacity search (``load.search``), the answer a report leads
    with; "task N: " in front when the run has several tasks.

    Example::

        >>> capacity_lines(res)
        ['simple sustains 42 req/s with p99 ≤ 100 ms (VALID: 2,400 requests, 3 over the bound)']
    """
    many = len(results.tasks) > 1
    return [(f"task {c.task}: " if many else "") + c.sentence for c in capacities(results)]


def summary_line(results: Results) -> str:
    """The verdict in one line.

    Example::

        >>> summary_line(res)
        'OK: 14 passed, 0 failed, 0 errors, 1 skipped'
    """
    counts = results.counts()
    line = (f"{results.verdict}: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['error']} errors, {counts['skip']} skipped")
    if results.missing_tasks:
        line += f"; tasks without results: {results.missing_tasks}"
    interrupted = [t.task for t in results.tasks if t.interrupted]
    if interrupted:
        line += f"; interrupted tasks: {interrupted}"
    troubled = [t.task for t in results.tasks if t.problems]
    if troubled:
        line += f"; tasks with problems: {troubled}"
    return line


def problem_lines(results: Results) -> list[str]:
    """One line per task whose results cannot be taken at their word: a crash (exit code,
    signal), checks that never ran, damaged files.

    Example::

        >>> problem_lines(res)[0]
        'task 0: the job crashed: exit code 137 (killed by signal 9, SIGKILL); checks ...'

    """
    return [f"task {t.task}: " + "; ".join(t.problems) for t in results.tasks if t.problems]
