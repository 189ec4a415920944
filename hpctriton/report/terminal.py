"""Results as terminal tables (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hpctriton.results.load import PERCENTILES, LoadPoint
from hpctriton.results.model import Results

STATUS_STYLE = {"pass": "green", "fail": "red", "error": "red bold", "skip": "yellow"}


def results_table(results: Results, title: str | None = None) -> Table:
    """One row per check result; a task column when there is more than one task.

    Example::

        >>> Console().print(results_table(run.results()))
    """
    many = len(results.tasks) > 1
    table = Table(title=title or (f"run {results.run_id}" if results.run_id else None))
    if many:
        table.add_column("task", justify="right")
    for name in ("check", "protocol", "model", "status", "time", "message"):
        table.add_column(name, justify="right" if name == "time" else "left")
    for c in results.checks:
        style = STATUS_STYLE.get(c.status, "white")
        row = [c.check, c.protocol or "", c.model or "", f"[{style}]{c.status}[/{style}]",
               f"{c.duration_s * 1000:.0f} ms", c.message]
        table.add_row(*([str(c.task)] if many else []), *row)
    return table


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"


def load_table(points: list[LoadPoint], title: str | None = "load") -> Table:
    """One row per load point: throughput, latency percentiles, errors, stability.

    Example::

        >>> Console().print(load_table(res.load_points()))
    """
    many = len({p.task for p in points}) > 1
    table = Table(title=title)
    if many:
        table.add_column("task", justify="right")
    for name in ("model", "protocol", "mode", "load", "req/s",
                 *(f"{p} ms" for p in PERCENTILES), "errors", "stable"):
        table.add_column(name, justify="left" if name in ("model", "protocol", "mode")
                         else "right")
    for p in points:
        errors = f"[red]{p.errors}[/red]" if p.errors else "0"
        stable = "–" if p.stable is None else ("yes" if p.stable else "[yellow]no[/yellow]")
        row = [p.model, p.protocol or "", p.mode.replace("_", " "), f"{p.load:g}",
               _num(p.throughput_rps, 1), *(_num(p.latency(n)) for n in PERCENTILES),
               errors, stable]
        table.add_row(*([str(p.task)] if many else []), *row)
    return table


def summary_line(results: Results) -> str:
    """The verdict in one line.

    Example::

        >>> summary_line(res)
        'OK: 14 passed, 0 failed, 0 errors, 1 skipped'
    """
    counts = results.counts()
    verdict = "OK" if results.ok else ("NO RESULTS" if not results.tasks else "FAILED")
    line = (f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['error']} errors, {counts['skip']} skipped")
    if results.missing_tasks:
        line += f"; tasks without results: {results.missing_tasks}"
    interrupted = [t.task for t in results.tasks if t.interrupted]
    if interrupted:
        line += f"; interrupted tasks: {interrupted}"
    return line


def print_results(results: Results, console: Console | None = None) -> None:
    """The results table, the load table when the load check ran, and the verdict.

    Example::

        >>> print_results(open_run().results())
    """
    console = console or Console()
    if results.checks:
        console.print(results_table(results))
    points = results.load_points()
    if points:
        console.print(load_table(points))
    console.print(summary_line(results))
