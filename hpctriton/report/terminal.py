"""Results and comparisons as terminal tables (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hpctriton.report.compare_text import diff_text, shown_rows, value_text
from hpctriton.results.compare import Comparison
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
    line = (f"{results.verdict}: {counts['pass']} passed, {counts['fail']} failed, "
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


# ------------------------------------------------------------------ comparisons

#: How a difference from the baseline is coloured, by its judgement.
JUDGEMENT_STYLE = {"better": "green", "worse": "red", "same": "dim"}


def compared_runs_table(comparison: Comparison) -> Table:
    """One row per run: label, run id, verdict and counts."""
    table = Table(title="runs compared (the first is the baseline)")
    for name in ("run", "run id", "verdict", "tasks", "pass", "fail", "error", "skip"):
        table.add_column(name, justify="right" if name in ("tasks", "pass", "fail",
                                                           "error", "skip") else "left")
    for s in comparison.sources:
        text = s.results.verdict
        style = {"OK": "green", "FAILED": "red"}.get(text, "yellow")
        counts = s.results.counts()
        table.add_row(s.label, s.results.run_id, f"[{style}]{text}[/{style}]",
                      str(len(s.results.tasks)), *(str(counts[k]) for k in
                                                   ("pass", "fail", "error", "skip")))
    return table


def comparison_table(comparison: Comparison, *, all_metrics: bool = False) -> Table:
    """The numbers: one column per run, then the difference of each run from the
    baseline, green when better and red when worse. Load rows show throughput, p50, p99
    and errors unless ``all_metrics``.

    Example::

        >>> Console().print(comparison_table(compare_runs(["runs/a", "runs/b"])))
    """
    labels = comparison.labels
    table = Table(title=f"differences from {comparison.baseline}")
    table.add_column("what", overflow="fold")
    table.add_column("at", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for label in labels:
        table.add_column(label, justify="right", no_wrap=True)
    for label in labels[1:]:
        table.add_column(f"Δ {label}", justify="right", no_wrap=True)
    rows = shown_rows(comparison, all_metrics)
    for k, row in enumerate(rows):
        first = k == 0 or rows[k - 1].group != row.group
        last = k + 1 == len(rows) or rows[k + 1].group != row.group
        deltas = []
        for i in range(1, len(labels)):
            text = diff_text(row, i)
            style = JUDGEMENT_STYLE.get(row.judgement(i) or "", "")
            deltas.append(f"[{style}]{text}[/{style}]" if style else text)
        table.add_row(f"{row.section}: {row.item}" if first else "",
                      (row.level or "") if first else "", row.metric,
                      *(value_text(v, row) for v in row.values), *deltas, end_section=last)
    return table


def status_changes_table(comparison: Comparison) -> Table | None:
    """Check results whose status differs between runs (None when none does)."""
    changed = [r for r in comparison.statuses if r.changed]
    if not changed:
        return None
    table = Table(title="check results that differ")
    table.add_column("result")
    for label in comparison.labels:
        table.add_column(label)
    for r in changed:
        cells = []
        for status in r.statuses:
            style = STATUS_STYLE.get(status or "", "dim")
            cells.append(f"[{style}]{status or 'absent'}[/{style}]")
        table.add_row(r.name, *cells)
    return table


def print_comparison(comparison: Comparison, console: Console | None = None, *,
                     all_metrics: bool = False) -> None:
    """Print the runs, the numbers with their differences, and changed statuses.

    Example::

        >>> print_comparison(compare_runs(["runs/a", "runs/b"]))
    """
    console = console or Console()
    console.print(compared_runs_table(comparison))
    if comparison.metrics:
        console.print(comparison_table(comparison, all_metrics=all_metrics))
    else:
        console.print("no numbers in common to compare")
    changed = status_changes_table(comparison)
    if changed is not None:
        console.print(changed)
    same = sum(1 for r in comparison.statuses if not r.changed)
    console.print(f"{same} check result(s) with the same status in every run")
