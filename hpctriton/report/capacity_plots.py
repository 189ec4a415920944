"""The figure of a capacity search: each rate tried against the objective's percentile
there, the bound drawn across, the answer marked.

Drawing only: the figures come from :mod:`hpctriton.results.capacity`. Like
:mod:`hpctriton.report.plots`, matplotlib is imported when a function is called and
figures never touch pyplot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpctriton.report.plots import FIG_WIDTH, new_figure, plot_style, wrap_title

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hpctriton.results.capacity import CapacityResult

PASS_COLOUR = "#3a9e6a"
FAIL_COLOUR = "#c7434f"
INVALID_COLOUR = "#9a7a5b"
BOUND_COLOUR = "#555555"


def capacity_figure(results: Sequence[CapacityResult]) -> Figure:
    """One panel per search: rate (x) against the percentile (y, log scale when it spans
    a decade), each step a marker coloured by its verdict and numbered in the order
    tried, the bound as a dashed line, the answer as a vertical line.

    Example::

        >>> capacity_figure(capacities(res)).savefig("capacity.png")
    """
    with plot_style():
        n = max(1, len(results))
        cols = min(2, n)
        rows = (n + cols - 1) // cols
        fig = new_figure(FIG_WIDTH, 3.4 * rows)
        for i, result in enumerate(results):
            ax = fig.add_subplot(rows, cols, i + 1)
            _draw(ax, result)
        return fig


def _draw(ax: Axes, result: CapacityResult) -> None:
    label = result.objective_text
    bound = result.bound_ms
    colours = {"PASS": PASS_COLOUR, "FAIL": FAIL_COLOUR, "INVALID": INVALID_COLOUR}
    values: list[float] = []
    for verdict, colour in colours.items():
        pts = [(s.rate_per_s, s.percentile_ms) for s in result.steps
               if s.verdict == verdict and s.percentile_ms is not None]
        if pts:
            ax.scatter([x for x, _ in pts], [y for _, y in pts], color=colour, s=28,
                       zorder=3, label=verdict.lower())
            values += [float(y) for _, y in pts if y is not None]
    for k, s in enumerate(result.steps):
        if s.percentile_ms is not None:
            ax.annotate(str(k), (s.rate_per_s, s.percentile_ms), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color="#444444")
    if bound is not None:
        ax.axhline(bound, color=BOUND_COLOUR, linestyle="--", linewidth=1.2,
                   label=f"bound {bound:g} ms")
        values.append(bound)
    if result.rate_per_s is not None:
        ax.axvline(result.rate_per_s, color=PASS_COLOUR if result.valid else INVALID_COLOUR,
                   linestyle=":", linewidth=1.4, label=f"answer {result.rate_per_s:g}/s")
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("request rate (req/s, all tasks)")
    first = next((n for n in ("latency_ms", "ttft_ms", "itl_ms")
                  if result.objective.get(n) is not None), "latency_ms")
    what = {"latency_ms": "latency", "ttft_ms": "TTFT", "itl_ms": "ITL"}[first]
    pct = f"p{float(result.objective.get('percentile', 99)):g}"
    ax.set_ylabel(f"{pct} {what} (ms)")
    ax.set_title(wrap_title(f"{result.model}: {label} ({result.verdict})"), fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
