"""Results as a terminal table (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..results import Results

STATUS_STYLE = {"pass": "green", "fail": "red", "error": "red bold", "skip": "yellow"}


def results_table(results: Results, title: str | None = None) -> Table:
    """One row per check result; a task column when there is more than one task."""
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


def summary_line(results: Results) -> str:
    counts = results.counts()
    verdict = "OK" if results.ok else ("NO RESULTS" if not results.tasks else "FAILED")
    return (f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['error']} errors, {counts['skip']} skipped")


def print_results(results: Results, console: Console | None = None) -> None:
    console = console or Console()
    if results.checks:
        console.print(results_table(results))
    console.print(summary_line(results))
