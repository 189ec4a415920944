"""A progress display for waiting: rich in a terminal, and in Jupyter too."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .watch import RunStatus


@contextlib.contextmanager
def progress_bar(run_id: str, n_tasks: int) -> Iterator[Callable[[RunStatus], None]]:
    """Yield an ``on_change`` callback that moves a bar of finished tasks."""
    console = Console(file=sys.stderr)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task(run_id, total=n_tasks, counts="")

        def update(status: RunStatus) -> None:
            done = sum(1 for s in status.tasks.values() if s.state.final)
            counts = ", ".join(f"{n} {state}" for state, n in sorted(status.counts().items()))
            progress.update(bar, completed=done, counts=counts)

        yield update
