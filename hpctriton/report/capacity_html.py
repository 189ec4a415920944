"""The capacity part of the HTML report: the sentence of each capacity search
(``load.search``), the figure of its steps and their table. The page leads with it."""

from __future__ import annotations

from collections.abc import Sequence

from hpctriton.report.htmlkit import esc, figure_img, fmt_num, table
from hpctriton.results.capacity import CapacityResult


def capacity_table(result: CapacityResult) -> str:
    """One row per step, in the order tried."""
    headers = ["step", "rate req/s", "percentile ms", "verdict", "requests", "over bound",
               "why"]
    rows = []
    for k, s in enumerate(result.steps):
        verdict = esc(s.verdict) if s.verdict == "PASS" else \
            f'<span class="worse">{esc(s.verdict)}</span>'
        rows.append([str(k), fmt_num(s.rate_per_s), fmt_num(s.percentile_ms), verdict,
                     fmt_num(s.requests), fmt_num(s.over_bound), esc(s.reason)])
    return table(headers, rows, numeric=[0, 1, 2, 4, 5], nowrap=[0, 1, 2, 3, 4, 5])


def capacity_section(results: Sequence[CapacityResult], figures: bool, many: bool) -> str:
    """The section (``id="capacity"``), or "" when no search ran."""
    if not results:
        return ""
    body = "".join(
        f'<p class="lead"><strong>{esc((f"task {c.task}: " if many else "") + c.sentence)}'
        f"</strong></p>" for c in results)
    if figures:
        from hpctriton.report.capacity_plots import capacity_figure

        body += figure_img(capacity_figure(results), "capacity search: the percentile at "
                           "each rate tried, with the bound")
    body += ("<p class=note>Each step ran open-loop Poisson arrivals at its rate (all tasks "
             "together), latency from each request's intended send time. PASS: MLPerf "
             "LoadGen's early-stopping test supports the percentile claim at 99 % "
             "confidence; FAIL: it does not; INVALID: the client could not keep the "
             "schedule (never counted as the server's capacity). Steps are numbered in "
             "the order tried.</p>")
    for c in results:
        body += f"<h3>{esc(c.model)} ({esc(c.objective_text)})</h3>"
        body += f"<p>{esc(c.reason)}</p>" + capacity_table(c)
    return f'<section class="card" id="capacity"><h2>Capacity</h2>{body}</section>'
