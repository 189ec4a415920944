"""How a comparison's numbers read, the same in the terminal and on the HTML page: which
rows the tables show, values with their unit, differences with their percentage."""

from __future__ import annotations

from hpctriton.report.htmlkit import fmt_num
from hpctriton.results.compare import Comparison, MetricRow
from hpctriton.results.measures import COUNT_METRICS

#: Load metrics the tables show unless every metric is asked for (decoupled models
#: add their time to first token, inter-token latency and token throughput).
TABLE_LOAD_METRICS = ("throughput", "p50", "p99", "errors", "TTFT p50", "ITL p50",
                      "output tokens/s", "goodput")


def shown_rows(comparison: Comparison, all_metrics: bool = False) -> list[MetricRow]:
    """The rows tables show: all of them, or for load points only throughput, p50,
    p99 and errors (and the streaming figures of ``TABLE_LOAD_METRICS``)."""
    return [r for r in comparison.metrics if all_metrics or r.section != "load"
            or r.metric in TABLE_LOAD_METRICS]


def _signed(value: float, count: bool = False) -> str:
    if count:
        return f"{round(value):+,}"
    if abs(value) >= 100:
        return f"{value:+,.0f}"
    return f"{value:+.1f}" if abs(value) >= 10 else f"{value:+.2f}"


def value_text(value: float | None, row: MetricRow) -> str:
    """``4.40 ms``, ``1,830 req/s``; ``–`` where the run lacks the number."""
    if value is None:
        return "–"
    return fmt_num(value, count=row.metric in COUNT_METRICS) + (
        f" {row.unit}" if row.unit else "")


def diff_text(row: MetricRow, i: int) -> str:
    """Run ``i`` against the baseline: ``-7.60 ms (-40.0%)``; ``–`` when either lacks it."""
    d, rel = row.diff(i), row.relative(i)
    if d is None:
        return "–"
    text = _signed(d, row.metric in COUNT_METRICS)
    if row.unit:
        text += f" {row.unit}"
    if rel is not None:
        text += f" ({rel:+.1f}%)"
    return text
