"""A comparison as one self-contained HTML page (``hpctriton compare --html``): the runs,
their figures side by side, every number with its difference from the baseline, and
the check results whose status changed.

Example::

    >>> write_comparison_html(compare_runs(["runs/a", "runs/b"]), "compare.html")
    PosixPath('compare.html')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpctriton.report import plots
from hpctriton.report.compare_text import diff_text, shown_rows, value_text
from hpctriton.report.htmlkit import (
    badge,
    esc,
    figure_img,
    matplotlib_available,
    page,
    table,
    verdict,
    write_text,
)
from hpctriton.report.stream_plots import compare_stream_figure
from hpctriton.results.compare import Comparison, MetricRow, StatusRow, compare_load_curves
from hpctriton.results.model_times import model_groups
from hpctriton.results.streaming import compare_stream_curves
from hpctriton.results.timeline import timeline


def comparison_html(comparison: Comparison, *, title: str | None = None) -> str:
    """The comparison page as text (see :func:`write_comparison_html`).

    Example::

        >>> comparison_html(cmp).startswith("<!DOCTYPE html>")
        True
    """
    title = title or "hpctriton comparison"
    if matplotlib_available():
        figures = _figures(comparison)
    else:
        figures = ("<p class=note>Figures left out: matplotlib is not installed "
                   "here (<code>pip install matplotlib</code>).</p>")
    body = (_runs(comparison, title) + figures + _metrics(comparison)
            + _statuses(comparison))
    return page(f"{title}: {' vs '.join(comparison.labels)}", body)


def write_comparison_html(comparison: Comparison, path: str | Path, *,
                          title: str | None = None) -> Path:
    """Write the comparison as one self-contained HTML file: the runs, their figures
    side by side (load curves on shared axes with the change from the baseline,
    per-model times, timelines), every number with its difference, and the check
    results whose status changed.

    Example::

        >>> write_comparison_html(compare_runs(["runs/a", "runs/b"]), "compare.html")
        PosixPath('compare.html')
    """
    out = Path(path)
    write_text(out, comparison_html(comparison, title=title))
    return out


def _runs(comparison: Comparison, title: str) -> str:
    rows = []
    for i, s in enumerate(comparison.sources):
        text, cls = verdict(s.results)
        counts = s.results.counts()
        info = s.info
        where = " · ".join(str(x) for x in (info.get("backend"), info.get("cluster"),
                                            info.get("host")) if x)
        rows.append([esc(s.label) + (" <span class=same>(baseline)</span>" if i == 0
                                     else ""),
                     f"<code>{esc(s.results.run_id)}</code>",
                     f'<span class="st {cls}">{text}</span>', esc(where),
                     esc(info.get("created_at") or ""), esc(len(s.results.tasks)),
                     *(esc(counts[k]) for k in ("pass", "fail", "error", "skip"))])
    tab = table(["run", "run id", "verdict", "backend · cluster · host", "created",
                 "tasks", "pass", "fail", "error", "skip"], rows,
                numeric=[5, 6, 7, 8, 9])
    return (f'<header class="top"><h1>{esc(title)}</h1><div class=sub>'
            f"{esc(' vs '.join(comparison.labels))}</div></header>"
            '<nav class="toc"><a href="#runs">Runs</a><a href="#figures">Figures</a>'
            '<a href="#numbers">Numbers</a><a href="#statuses">Check results</a></nav>'
            f'<section class="card" id="runs"><h2>Runs</h2>{tab}'
            "<p class=note>Differences are each run minus the baseline (the first run); "
            "green is better, red worse, grey within 1 %.</p></section>")


def _figures(comparison: Comparison) -> str:
    labels, results = comparison.labels, comparison.results
    body = ""
    curves = compare_load_curves(results)
    if curves:
        body += "<h3>Load</h3>" + figure_img(plots.compare_load_figure(curves, labels),
                                             "load curves of every run")
    streams = compare_stream_curves(results)
    if streams:
        body += "<h3>Streaming (decoupled models)</h3>" + figure_img(
            compare_stream_figure(streams, labels), "time to first token, inter-token "
            "latency and token throughput of every run")
    groups = model_groups(results)
    if any(t.has_figures for mine in groups.runs for t in mine.values()):
        body += "<h3>Per model</h3>" + figure_img(plots.models_figure(groups, labels),
                                                  "per-model times of every run")
    if any(r.tasks for r in results):
        timelines = [(label, timeline(res, plots.MAX_TIMELINE_TASKS))
                     for label, res in comparison.runs]
        body += "<h3>Timelines</h3>" + figure_img(plots.timeline_figure(timelines),
                                                  "timelines of every run")
    return f'<section class="card" id="figures"><h2>Figures</h2>{body}</section>'


def _metrics_table(comparison: Comparison, rows_in: list[MetricRow]) -> str:
    labels = comparison.labels
    headers = ["what", "at", "metric", *map(esc, labels),
               *(f"Δ {esc(label)}" for label in labels[1:])]
    rows: list[list[str]] = []
    classes: list[str] = []
    previous: tuple[Any, ...] | None = None
    for r in rows_in:
        first = r.group != previous
        previous = r.group
        cells = [value_text(v, r) for v in r.values]
        deltas = [f'<span class="{r.judgement(i) or ""}">{esc(diff_text(r, i))}</span>'
                  for i in range(1, len(labels))]
        what = f"<b>{esc(r.section)}</b>: {esc(r.item)}" if first else ""
        classes.append("group-start" if first and rows else "")
        rows.append([what, esc(r.level or "") if first else "", esc(r.metric), *cells,
                     *deltas])
    return table(headers, rows, numeric=list(range(3, len(headers))), nowrap=[1, 2],
                 row_classes=classes)


def _metrics(comparison: Comparison) -> str:
    if not comparison.metrics:
        return ('<section class="card" id="numbers"><h2>Numbers</h2>'
                "<p class=note>The runs have no numbers in common.</p></section>")
    shown = shown_rows(comparison)
    body = _metrics_table(comparison, shown)
    if len(shown) < len(comparison.metrics):
        body += (f"<details><summary>all {len(comparison.metrics)} numbers (every latency "
                 "percentile and the server's figures per load point)</summary>"
                 f"{_metrics_table(comparison, comparison.metrics)}</details>")
    return f'<section class="card" id="numbers"><h2>Numbers</h2>{body}</section>'


def _statuses(comparison: Comparison) -> str:
    changed = [r for r in comparison.statuses if r.changed]
    same = [r for r in comparison.statuses if not r.changed]

    def rows(items: list[StatusRow]) -> list[list[str]]:
        return [[esc(r.name), *(badge(s) if s else '<span class="same">absent</span>'
                                for s in r.statuses)] for r in items]

    headers = ["result", *map(esc, comparison.labels)]
    body = ""
    if changed:
        body += "<h3>Status differs</h3>" + table(headers, rows(changed), cls="checks")
    else:
        body += "<p class=note>Every check result has the same status in every run.</p>"
    if same:
        body += (f"<details><summary>{len(same)} result(s) with the same status "
                 f"everywhere</summary>{table(headers, rows(same), cls='checks')}"
                 "</details>")
    return (f'<section class="card" id="statuses"><h2>Check results</h2>{body}'
            "</section>")
