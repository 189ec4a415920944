"""A history as one HTML page (``hpctriton history --html FILE``): the verdict of each
check over time as a grid, and trend lines of latency percentiles, throughput, TTFT and
the capacity answer (where present), with the server's version changes marked and the
runs that were due and did not happen shown as gaps."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctriton.report.htmlkit import (
    esc,
    figure_img,
    fmt_num,
    matplotlib_available,
    page,
    write_text,
)
from hpctriton.report.htmlkit import table as html_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hpctriton.results.history import History, HistoryRun

VERDICT_COLOUR = {"ok": "#3a9e6a", "failed": "#c7434f", "regressed": "#e0a030",
                  "missing": "#8a63b8"}
STATUS_COLOUR = {"pass": "#3a9e6a", "skip": "#9ecae1", "fail": "#c7434f", "error": "#7f1d1d"}


def _x(run: HistoryRun, index: int) -> Any:
    when = run.when
    if when:
        try:
            return _dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            pass
    return index


def trends_figure(history: History) -> Figure | None:
    """One panel per kind of figure (latency, throughput, TTFT, capacity) over time;
    a missing run breaks each line and is shaded; a version change is a dashed line."""
    from hpctriton.report.plots import PALETTE, PERCENTILE_STYLE, new_figure, panel_title

    runs = history.runs
    if not runs:
        return None
    xs = [_x(r, i) for i, r in enumerate(runs)]
    if len({type(x) for x in xs}) > 1:
        xs = list(range(len(runs)))
    panels: list[tuple[str, str, list[tuple[str, str, str, list[float | None]]]]] = []
    latency, throughput, ttft = [], [], []
    for k, point in enumerate(history.points):
        colour = PALETTE[k % len(PALETTE)]
        for metric in ("p50", "p90", "p99"):
            values = [r.figure(point, metric) for r in runs]
            if any(v is not None for v in values):
                style = PERCENTILE_STYLE[metric][1] if k == 0 else "-"
                latency.append((f"{point} {metric}", PERCENTILE_STYLE[metric][0]
                                if len(history.points) == 1 else colour, style, values))
        values = [r.figure(point, "throughput") for r in runs]
        if any(v is not None for v in values):
            throughput.append((point, colour, "-", values))
        for metric in ("TTFT p50", "TTFT p99"):
            values = [r.figure(point, metric) for r in runs]
            if any(v is not None for v in values):
                ttft.append((f"{point} {metric}", colour, "-" if "50" in metric else "--",
                             values))
    capacity = [r.capacity_rps for r in runs]
    panels.append(("latency percentiles", "ms", latency))
    panels.append(("throughput", "req/s", throughput))
    if ttft:
        panels.append(("time to first token", "ms", ttft))
    if any(v is not None for v in capacity):
        panels.append(("capacity answer", "req/s", [("capacity", "#3b6fb6", "-", capacity)]))
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    fig = new_figure(9.0, 2.6 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    missing = [x for x, r in zip(xs, runs, strict=True) if r.verdict == "missing"]
    changes = history.version_changes()
    for ax, (title, unit, lines) in zip(axes, panels, strict=True):
        for label, colour, style, values in lines:
            ys = [float("nan") if v is None else v for v in values]
            ax.plot(xs, ys, style, color=colour, marker="o", markersize=3, label=label)
        for x in missing:
            ax.axvline(x, color=VERDICT_COLOUR["missing"], alpha=0.35, linewidth=6)
        for i, _old, new in changes:
            ax.axvline(xs[i], color="#555555", linestyle="--", linewidth=1)
            ax.annotate(f"server {new}", (xs[i], 1.0), xycoords=("data", "axes fraction"),
                        fontsize=7, rotation=90, va="top", ha="right")
        for x, run in zip(xs, runs, strict=True):
            if run.verdict in ("failed", "regressed"):
                ax.axvline(x, color=VERDICT_COLOUR[run.verdict], alpha=0.25, linewidth=3)
        ax.set_ylabel(unit)
        panel_title(ax, title)
        if len(lines) > 1 or title == "latency percentiles":
            ax.legend(fontsize=7, loc="upper left")
    return fig


def _verdict_grid(history: History) -> str:
    checks = list(dict.fromkeys(c for r in history.runs for c in r.checks))
    head = "<tr><th>check</th>" + "".join(
        f'<th title="{esc(r.run_id)}">{esc(str(r.seq) if r.seq is not None else i + 1)}</th>'
        for i, r in enumerate(history.runs)) + "</tr>"

    def cell(colour: str, text: str, title: str) -> str:
        return (f'<td title="{esc(title)}" style="background:{colour};color:white;'
                f'text-align:center">{esc(text)}</td>')

    rows = ["<tr><td><b>verdict</b></td>" + "".join(
        cell(VERDICT_COLOUR.get(r.verdict, "#999"), r.verdict[:1].upper(),
             f"{r.run_id}: {r.verdict}") for r in history.runs) + "</tr>"]
    for check in checks:
        cells = []
        for r in history.runs:
            status = r.checks.get(check)
            cells.append(cell(STATUS_COLOUR.get(status or "", "#dddddd"),
                              (status or "-")[:1], f"{r.run_id}: {check} {status or '-'}"))
        rows.append(f"<tr><td>{esc(check)}</td>" + "".join(cells) + "</tr>")
    return f'<table class="grid">{head}{"".join(rows)}</table>'


def history_html(history: History) -> str:
    runs = history.runs
    counts = {v: sum(r.verdict == v for r in runs) for v in VERDICT_COLOUR}
    parts = [f"<h1>{esc(history.title)}</h1>",
             "<p>" + ", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(runs)} "
             "runs, oldest first" + (f"; judged against baseline {esc(history.baseline)}"
                                      if history.baseline else "") + ".</p>"]
    for i, old, new in history.version_changes():
        parts.append(f"<p>Server version changed {esc(old)} &rarr; {esc(new)} at run "
                     f"{esc(runs[i].run_id)}.</p>")
    parts.append("<h2>Verdict of each check over time</h2>")
    parts.append(_verdict_grid(history))
    parts.append("<h2>Trends</h2>")
    if matplotlib_available():
        fig = trends_figure(history)
        parts.append(figure_img(fig, "trends") if fig is not None
                     else "<p>No load figures in these runs.</p>")
    else:
        parts.append("<p>(matplotlib is not installed: no plots)</p>")
    rows = []
    points = history.points
    point = points[0] if points else None
    for r in runs:
        rows.append([esc(r.run_id), esc(r.when or "-"), esc(r.verdict),
                     esc(r.server_version or "-"),
                     esc(fmt_num(r.figure(point, "p99"))) if point and
                     r.figure(point, "p99") is not None else "-",
                     esc(fmt_num(r.figure(point, "throughput"))) if point and
                     r.figure(point, "throughput") is not None else "-",
                     esc("; ".join(r.reasons))])
    parts.append("<h2>Runs</h2>")
    parts.append(html_table(["run", "started (or due)", "verdict", "server",
                             esc(f"p99 ms{' (' + point + ')' if point else ''}"), "req/s",
                             "why"], rows))
    if history.waiting or history.not_collected:
        parts.append("<p>Not shown: " + esc(", ".join(history.waiting + history.not_collected))
                     + " (not ended or not collected yet).</p>")
    return page(history.title, "".join(parts))


def write_history_html(history: History, path: str | Path) -> None:
    write_text(Path(path), history_html(history))
