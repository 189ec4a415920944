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
from collections.abc import Callable, Iterator

from hpctriton.runs.watch import RunStatus

Update = Callable[[RunStatus], None]


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

        def update(status: RunStatus) -> None:
            done, counts = _summary(status)
            progress.update(bar, completed=done, counts=counts)

        yield update


def progress_bar(run_id: str, n_tasks: int) -> contextlib.AbstractContextManager[Update]:
    """A context manager yielding an ``on_change`` callback that moves a progress bar."""
    if _in_notebook():
        return _notebook_bar(run_id, n_tasks)
    return _terminal_bar(run_id, n_tasks)
