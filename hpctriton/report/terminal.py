"""Results and comparisons as terminal tables (rich).

Every table fits an 80-column terminal without cutting a number
(:mod:`hpctriton.report.fit`): numbers sit in columns that never shrink, text wraps, a
column whose value is the same on every row moves into the title, the widest tables
show their main columns unless ``wide``, and rows that still do not fit side by side
are printed as a vertical list.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hpctriton.report.compare_text import diff_text, shown_rows, value_text
from hpctriton.report.fit import (
    MIN_TEXT_WIDTH,
    RESULT_COLUMNS,
    fitted,
    left_out_note,
    result_layouts,
)
from hpctriton.report.htmlkit import fmt_level
from hpctriton.report.summary import capacity_lines, problem_lines, summary_line
from hpctriton.results.compare import Comparison, MetricRow
from hpctriton.results.load import PERCENTILES, LoadPoint
from hpctriton.results.model import Results

STATUS_STYLE = {"pass": "green", "fail": "red", "error": "red bold", "skip": "yellow"}


def results_table(results: Results, title: str | None = None, *,
                  columns: Sequence[str] = RESULT_COLUMNS,
                  message_width: int = MIN_TEXT_WIDTH) -> Table:
    """One row per check result, with ``columns`` (of :data:`RESULT_COLUMNS`, in their
    order); a task column when there is more than one task. Check and model names never
    wrap (a model column is as wide as its longest name); the message wraps, in a column
    at least ``message_width`` wide (or as wide as the longest message, if shorter).

    Example::

        >>> Console().print(results_table(run.results()))
        >>> Console().print(results_table(run.results(),
        ...                                columns=result_layouts()[-1].columns))
    """
    many = len(results.tasks) > 1
    table = Table(title=title or (f"run {results.run_id}" if results.run_id else None))
    if many:
        table.add_column("task", justify="right", no_wrap=True)
    shown = [name for name in RESULT_COLUMNS if name in columns]
    longest = max((len(line) for c in results.checks for line in c.message.splitlines()),
                  default=0)
    for name in shown:
        table.add_column(name, justify="right" if name == "time" else "left",
                         no_wrap=name != "message", overflow="fold",
                         min_width=min(message_width, longest) if name == "message" else None)
    for c in results.checks:
        style = STATUS_STYLE.get(c.status, "white")
        # what the server or the config said is text, never rich markup
        cells: dict[str, str | Text] = {
            "check": Text(c.check), "protocol": Text(c.protocol or ""),
            "model": Text(c.model or ""), "status": Text(c.status, style=style),
            "time": f"{c.duration_s * 1000:.0f} ms", "message": Text(c.message)}
        table.add_row(*([str(c.task)] if many else []), *(cells[name] for name in shown))
    return table


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"


#: Load-table columns shown unless ``wide`` (the others: p90, p95, max).
LOAD_MAIN_PERCENTILES = ("p50", "p99")
#: How the load column is headed when every point has the same mode.
LOAD_HEADERS = {"concurrency": "concurrency", "request_rate": "req/s asked"}


def load_table(points: list[LoadPoint], title: str | None = "load", *,
               wide: bool = False) -> Table:
    """One row per load point: throughput, latency percentiles, errors, stability.

    A column whose value is the same on every row (the protocol, the mode) is named in
    the title instead; p90, p95 and max are shown when ``wide``.

    Example::

        >>> Console().print(load_table(res.load_points()))
    """
    many = len({p.task for p in points}) > 1
    protocols = {p.protocol or "" for p in points}
    modes = {p.mode for p in points}
    same = [x for x in (next(iter(protocols)) if len(protocols) == 1 else "",
                        next(iter(modes)).replace("_", " ") if len(modes) == 1 else "") if x]
    if title is not None and same:
        title = f"{title} ({', '.join(same)})"
    table = Table(title=title)
    if many:
        table.add_column("task", justify="right", no_wrap=True)
    table.add_column("model", overflow="fold")
    if wide or len(protocols) > 1:
        table.add_column("protocol", no_wrap=True)
    if wide or len(modes) > 1:
        table.add_column("mode", no_wrap=True)
    level_header = LOAD_HEADERS.get(next(iter(modes)), "load") if len(modes) == 1 else "load"
    percentiles = PERCENTILES if wide else [n for n in PERCENTILES
                                            if n in LOAD_MAIN_PERCENTILES]
    for name in (level_header, "req/s", *(f"{n} ms" for n in percentiles), "errors",
                 "stable"):
        table.add_column(name, justify="right", no_wrap=True)
    for p in points:
        errors = f"[red]{p.errors}[/red]" if p.errors else "0"
        stable = "–" if p.stable is None else ("yes" if p.stable else "[yellow]no[/yellow]")
        row: list[str | Text] = [Text(p.model)]
        if wide or len(protocols) > 1:
            row.append(p.protocol or "")
        if wide or len(modes) > 1:
            row.append(p.mode.replace("_", " "))
        row += [fmt_level(p.load), _num(p.throughput_rps, 1),
                *(_num(p.latency(n)) for n in percentiles), errors, stable]
        table.add_row(*([str(p.task)] if many else []), *row)
    return table


def print_results(results: Results, console: Console | None = None, *,
                  wide: bool = False) -> None:
    """The capacity sentences of capacity searches (first), the results table, the load
    table when the load check ran, and the verdict; every column of the results and
    load tables when ``wide`` (else a narrow terminal shows the results without their
    protocol and time). Tables that do not fit the console's width even so are printed
    as vertical lists (:mod:`hpctriton.report.fit`).

    Example::

        >>> print_results(open_run().results())
    """
    console = console or Console()
    for line in capacity_lines(results):  # the answer first: capacity under an objective
        console.print(line, style="bold", markup=False, highlight=False)
    if results.checks:
        # every column when they fit; else without protocol and time (unless wide)
        full, *narrower = [results_table(results, columns=lay.columns,
                                         message_width=lay.message_width)
                           for lay in result_layouts(wide)]
        for table in narrower:
            table.caption = left_out_note(str(c.header) for c in table.columns)
        console.print(fitted(full, console, narrower))
    points = results.load_points()
    if points:
        console.print(fitted(load_table(points, wide=wide), console))
    for line in problem_lines(results):
        console.print(line, style="red", markup=False, highlight=False)
    console.print(summary_line(results), markup=False, highlight=False)


# ------------------------------------------------------------------ comparisons

#: How a difference from the baseline is coloured, by its judgement.
JUDGEMENT_STYLE = {"better": "green", "worse": "red", "same": "dim"}


def short_labels(comparison: Comparison) -> list[str]:
    """Column headings for the runs: their labels when every one is short, else ``A``,
    ``B``, … (the runs table says which run each letter is)."""
    labels = comparison.labels
    if all(len(label) <= SHORT_LABEL for label in labels):
        return list(labels)
    return [chr(ord("A") + i) if i < 26 else f"#{i + 1}" for i in range(len(labels))]


#: The longest run label used as a column heading as it is.
SHORT_LABEL = 12


def _counts_text(counts: dict[str, int]) -> str:
    parts = [f"{counts[k]} {k}" for k in ("pass", "fail", "error", "skip") if counts[k]]
    return ", ".join(parts) or "no checks"


def compared_runs_table(comparison: Comparison, *, wide: bool = False) -> Table:
    """One row per run: its heading in the other tables, label, run id, verdict and
    counts (one column per status when ``wide``)."""
    table = Table(title="runs compared (the first is the baseline)")
    keys = short_labels(comparison)
    lettered = keys != comparison.labels
    if lettered:
        table.add_column("", no_wrap=True)
    table.add_column("run", overflow="fold")
    with_ids = any(s.label != s.results.run_id for s in comparison.sources)
    if with_ids:
        table.add_column("run id", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("tasks", justify="right", no_wrap=True)
    statuses = ("pass", "fail", "error", "skip")
    if wide:
        for name in statuses:
            table.add_column(name, justify="right", no_wrap=True)
    else:
        table.add_column("checks", overflow="fold")
    for key, s in zip(keys, comparison.sources, strict=True):
        text = s.results.verdict
        style = {"OK": "green", "FAILED": "red"}.get(text, "yellow")
        counts = s.results.counts()
        cells: list[str | Text] = [key] if lettered else []
        cells.append(Text(s.label))
        if with_ids:
            cells.append(Text(s.results.run_id))
        cells += [f"[{style}]{text}[/{style}]", str(len(s.results.tasks))]
        cells += [str(counts[k]) for k in statuses] if wide else [_counts_text(counts)]
        table.add_row(*cells)
    return table


def _change_text(row: MetricRow, i: int) -> str:
    """Run ``i`` against the baseline in a few characters: ``+55.8%``; ``=`` when equal;
    the signed difference where the baseline is zero; empty when either lacks it."""
    d, rel = row.diff(i), row.relative(i)
    if d is None:
        return ""
    if d == 0:
        return "="
    return f"{rel:+.1f}%" if rel is not None else diff_text(row, i)


def comparison_table(comparison: Comparison, *, all_metrics: bool = False,
                     wide: bool = False) -> Table:
    """The numbers: one column per run, each later run's value with its change from the
    baseline (green when better, red when worse), under a row naming what they are
    about. ``wide``: the difference of each run in columns of its own, with units, and
    what and where in columns too. Load rows show throughput, p50, p99 and errors
    unless ``all_metrics``.

    Example::

        >>> Console().print(comparison_table(compare_runs(["runs/a", "runs/b"])))
    """
    labels = short_labels(comparison)
    table = Table(title=f"differences from {labels[0]}"
                  + (f" ({comparison.baseline})" if labels[0] != comparison.baseline else ""))
    rows = shown_rows(comparison, all_metrics)
    if wide:
        table.add_column("what", overflow="fold")
        table.add_column("at", overflow="fold")
        table.add_column("metric", overflow="fold")
    else:
        table.add_column("", overflow="fold")
    for label in labels:
        table.add_column(label, justify="right", no_wrap=True)
    if wide:
        for label in labels[1:]:
            table.add_column(f"Δ {label}", justify="right", no_wrap=True)

    def styled(text: str, row: MetricRow, i: int) -> str:
        style = JUDGEMENT_STYLE.get(row.judgement(i) or "", "")
        return f"[{style}]{text}[/{style}]" if style and text else text

    for k, row in enumerate(rows):
        first = k == 0 or rows[k - 1].group != row.group
        last = k + 1 == len(rows) or rows[k + 1].group != row.group
        values = [value_text(v, row) for v in row.values]
        if wide:
            deltas = [styled(diff_text(row, i), row, i) for i in range(1, len(labels))]
            table.add_row(Text(f"{row.section}: {row.item}") if first else "",
                          (row.level or "") if first else "", row.metric,
                          *values, *deltas, end_section=last)
            continue
        if first:
            table.add_row(Text(f"{row.section}: {row.subject}", style="bold"),
                          *("" for _ in labels))
        cells = [values[0]]
        for i in range(1, len(labels)):
            change = _change_text(row, i)
            cells.append(styled(f"{values[i]} ({change})" if change else values[i], row, i))
        table.add_row(f"  {row.metric}", *cells, end_section=last)
    return table


def status_changes_table(comparison: Comparison) -> Table | None:
    """Check results whose status differs between runs (None when none does)."""
    changed = [r for r in comparison.statuses if r.changed]
    if not changed:
        return None
    table = Table(title="check results that differ")
    table.add_column("result", overflow="fold")
    for label in short_labels(comparison):
        table.add_column(label, no_wrap=True)
    for r in changed:
        cells = []
        for status in r.statuses:
            style = STATUS_STYLE.get(status or "", "dim")
            cells.append(f"[{style}]{status or 'absent'}[/{style}]")
        table.add_row(Text(r.name), *cells)
    return table


def print_comparison(comparison: Comparison, console: Console | None = None, *,
                     all_metrics: bool = False, wide: bool = False) -> None:
    """Print the runs, the numbers with their differences, and changed statuses;
    ``wide``: every column and every metric (:func:`comparison_table`). Tables that do
    not fit the console's width are printed as vertical lists.

    Example::

        >>> print_comparison(compare_runs(["runs/a", "runs/b"]))
    """
    console = console or Console()
    console.print(fitted(compared_runs_table(comparison, wide=wide), console))
    if comparison.metrics:
        console.print(fitted(comparison_table(comparison, all_metrics=all_metrics or wide,
                                              wide=wide), console))
    else:
        console.print("no numbers in common to compare")
    changed = status_changes_table(comparison)
    if changed is not None:
        console.print(fitted(changed, console))
    same = sum(1 for r in comparison.statuses if not r.changed)
    console.print(f"{same} check result(s) with the same status in every run")
