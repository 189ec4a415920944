"""A history as a terminal table (``hpctriton history``): one row per run, oldest
first, fitted to the terminal like every other table (:mod:`hpctriton.report.fit`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from hpctriton.report.htmlkit import fmt_num

if TYPE_CHECKING:
    from hpctriton.results.history import History, HistoryRun

VERDICT_STYLE = {"ok": "green", "failed": "red", "regressed": "yellow", "missing": "magenta"}


def _when(run: HistoryRun) -> str:
    text = run.when or "-"
    return text[5:16].replace("T", " ") if len(text) >= 16 else text


def _checks(run: HistoryRun) -> str:
    if run.verdict == "missing":
        return "-"
    bad = [name for name, status in run.checks.items() if status in ("fail", "error")]
    return ("fail: " + ", ".join(bad)) if bad else f"{len(run.checks)} ok"


def history_table(history: History, point: str | None = None, *, wide: bool = False) -> Table:
    """Runs with their verdict, checks and one load point's figures (``point``: the
    first point of the history by default; ``wide``: p50 and p90 too, and reasons)."""
    points = history.points
    point = point or (points[0] if points else None)
    table = Table(title=f"{history.title}, oldest first"
                  + (f" (baseline {history.baseline})" if history.baseline else ""))
    table.add_column("run", overflow="fold")
    table.add_column("started", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("checks", overflow="fold")
    metrics = (["p50", "p90"] if wide else []) + ["p99", "throughput"]
    for metric in metrics if point else []:
        table.add_column("req/s" if metric == "throughput" else f"{metric} ms",
                         justify="right", no_wrap=True)
    if any(r.server_version for r in history.runs):
        table.add_column("server", no_wrap=True)
    if wide:
        table.add_column("why", overflow="fold")
    versions = any(r.server_version for r in history.runs)
    for run in history.runs:
        row: list[Text | str] = [Text(run.run_id), _when(run),
                                 Text(run.verdict, style=VERDICT_STYLE.get(run.verdict, ""))]
        row.append(Text(_checks(run)))
        for metric in metrics if point else []:
            value = run.figure(point, metric) if point else None
            row.append("-" if value is None else fmt_num(value))
        if versions:
            row.append(run.server_version or "-")
        if wide:
            row.append(Text("; ".join(run.reasons)))
        table.add_row(*row)
    if point:
        table.caption = f"figures of {point}"
    return table


def history_notes(history: History) -> list[str]:
    """Lines printed under the table: runs waiting, not collected, version changes."""
    lines = []
    for i, old, new in history.version_changes():
        lines.append(f"server version changed {old} -> {new} at {history.runs[i].run_id}")
    if history.waiting:
        lines.append(f"not ended yet: {', '.join(history.waiting)}")
    if history.not_collected:
        lines.append(f"ended, not collected yet: {', '.join(history.not_collected)}")
    return lines
