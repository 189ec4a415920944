"""Progress while waiting: a rich bar in a terminal, an HTML bar in Jupyter.

In a notebook, rich's live display needs ipywidgets; without it, it warns and draws
nothing useful. So in a Jupyter kernel the bar is a small HTML ``<progress>`` element
updated in place through IPython's display handles (IPython is always there in a
kernel), and rich is used everywhere else.
"""

from __future__ import annotations

import contextlib
import html
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from hpctriton.runs.watch import RunStatus
from hpctriton.schedulers import JobState

Update = Callable[[RunStatus], None]


def task_ranges(tasks: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    runs: list[list[int]] = []
    for task in sorted(tasks):
        if runs and task == runs[-1][-1] + 1:
            runs[-1].append(task)
        else:
            runs.append([task])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


@dataclass
class PendingReasons:
    """An ``on_change`` callback that says, one line each time it changes, why tasks are
    still pending (the scheduler's reason: ``Priority``, ``BeginTime``,
    ``PartitionDown``…), so a wait whose output is not a terminal is not silent.

    Example::

        >>> run.wait(on_change=PendingReasons(lambda line: print(line, file=sys.stderr)))
        tasks 0-19 pending: Priority
    """

    write: Callable[[str], None]
    _shown: dict[int, str] = field(default_factory=dict)

    def __call__(self, status: RunStatus) -> None:
        changed: dict[str, list[int]] = {}
        for task, st in status.tasks.items():
            if st.state != JobState.PENDING or not st.reason:
                self._shown.pop(task, None)
                continue
            reason = st.reason
            if self._shown.get(task) != reason:
                self._shown[task] = reason
                changed.setdefault(reason, []).append(task)
        for reason, tasks in changed.items():
            self.write(f"task{'s' if len(tasks) > 1 else ''} {task_ranges(tasks)} pending: "
                       f"{reason}")


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001 - no IPython shell at all
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _summary(status: RunStatus) -> tuple[int, str]:
    done = sum(1 for s in status.tasks.values() if s.state.final)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(status.counts().items()))
    return done, counts


@contextlib.contextmanager
def _notebook_bar(run_id: str, n_tasks: int) -> Iterator[Update]:
    from IPython.display import HTML, display

    def page(done: int, counts: str) -> HTML:
        return HTML(
            f"<div style='font-family:monospace'><b>{html.escape(run_id)}</b> "
            f"<progress value='{done}' max='{n_tasks}' style='width:16em'></progress> "
            f"{done}/{n_tasks} {html.escape(counts)}</div>")

    handle = display(page(0, ""), display_id=True)

    def update(status: RunStatus) -> None:
        if handle is not None:
            handle.update(page(*_summary(status)))

    yield update


@contextlib.contextmanager
def _terminal_bar(run_id: str, n_tasks: int) -> Iterator[Update]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as progress:
        bar = progress.add_task(run_id, total=n_tasks, counts="")
        reasons = PendingReasons(
            lambda line: progress.console.print(line, markup=False, highlight=False))

        def update(status: RunStatus) -> None:
            done, counts = _summary(status)
            progress.update(bar, completed=done, counts=counts)
            reasons(status)

        yield update


def progress_bar(run_id: str, n_tasks: int) -> contextlib.AbstractContextManager[Update]:
    """A context manager yielding an ``on_change`` callback that moves a progress bar."""
    if _in_notebook():
        return _notebook_bar(run_id, n_tasks)
    return _terminal_bar(run_id, n_tasks)
