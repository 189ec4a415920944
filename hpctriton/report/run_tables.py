"""Runs and task states as terminal tables (``hpctriton runs``, ``status``, ``wait``),
fitted to the terminal like every other table (:mod:`hpctriton.report.fit`).

Example::

    >>> Console().print(status_table(run.record, run.status()))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from hpctriton.runs.record import RunRecord
    from hpctriton.runs.watch import RunStatus

#: How each state is coloured.
STATE_STYLE = {"succeeded": "green", "failed": "red", "timeout": "red", "cancelled": "yellow",
               "running": "cyan", "pending": "blue", "unknown": "magenta"}


def status_table(record: RunRecord, status: RunStatus) -> Table:
    """One row per task: state, job id, host, exit code, the reason.

    Example::

        >>> Console().print(status_table(run.record, run.status()))
    """
    table = Table(title=f"run {record.run_id} ({record.backend} on {record.host})")
    table.add_column("task", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("job id", no_wrap=True)
    table.add_column("host", overflow="fold")
    table.add_column("exit", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for task, st in sorted(status.tasks.items()):
        colour = STATE_STYLE.get(st.state.value, "white")
        # what the scheduler said is text, never rich markup
        table.add_row(str(task), Text(st.state.value, style=colour), Text(st.job_id),
                      Text(st.host), "" if st.exit_code is None else str(st.exit_code),
                      Text(st.reason))
    return table


def submit_failure(record: RunRecord) -> str | None:
    """Why the run never reached its scheduler (None when it did)."""
    errors = [e.get("error") for e in record.events if e.get("event") == "submit-failed"]
    return str(errors[-1]) if errors and not record.jobs else None


def short_path(path: Path) -> str:
    """``path`` relative to the current folder when inside it, else with ``~`` for the
    home folder, else as it is."""
    text = str(path)
    try:
        here = os.getcwd()
    except OSError:
        here = ""
    if here and text.startswith(here.rstrip("/") + "/"):
        return text[len(here.rstrip("/")) + 1:]
    home = str(Path.home())
    if text.startswith(home.rstrip("/") + "/"):
        return "~/" + text[len(home.rstrip("/")) + 1:]
    return text


def runs_table(records: Sequence[RunRecord], *, wide: bool = False,
               title: str | None = None) -> Table:
    """One row per run, newest first: id, backend, tasks, its jobs (or why its submit
    failed) and host; the folder of runs_dir when they are not all in one (always when
    ``wide``), and when it was made (``wide``; the id starts with it).

    Example::

        >>> Console().print(runs_table(list_runs(Path("hpctriton-runs"))))
    """
    folders = {r.path.parent for r in records}
    table = Table(title=title)
    table.add_column("run", no_wrap=True)
    table.add_column("backend", no_wrap=True)
    table.add_column("tasks", justify="right", no_wrap=True)
    table.add_column("jobs", overflow="fold")
    table.add_column("host", overflow="fold")
    with_folder = wide or len(folders) > 1
    if with_folder:
        table.add_column("runs_dir", overflow="fold")
    if wide:
        table.add_column("created", no_wrap=True)
    for r in records:
        why = submit_failure(r)
        jobs = Text(f"SUBMIT FAILED: {why}", style="red") if why else Text(
            ", ".join(j.job_id for j in r.jobs) or "-")
        row: list[str | Text] = [r.run_id, r.backend, str(r.n_tasks), jobs, Text(r.host)]
        if with_folder:
            row.append(Text(short_path(r.path.parent)))
        if wide:
            row.append(r.created_at)
        table.add_row(*row)
    return table
