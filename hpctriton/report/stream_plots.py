"""Figures of decoupled (LLM-serving) models under load: time to first token and
inter-token latency percentiles, and output-token throughput, against concurrency or
request rate; and the same for several runs side by side (``compare``).

Drawing only: the figures come from :mod:`hpctriton.results.streaming`. Like
:mod:`hpctriton.report.plots`, matplotlib is imported when a function is called and
figures never touch pyplot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hpctriton.report.plots import (
    FIG_WIDTH,
    PALETTE,
    PERCENTILE_STYLE,
    THROUGHPUT_COLOUR,
    latency_scale,
    load_axis,
    new_figure,
    plot_style,
    series_title,
    shorten,
    wrap_title,
)
from hpctriton.results.streaming import (
    STREAM_PERCENTILES,
    StreamCurves,
    StreamPoint,
    group_stream_series,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GOODPUT_COLOUR = "#3a9e6a"


def _lines(ax: Axes, points: Sequence[StreamPoint],
           read: Callable[[StreamPoint, str], float | None], names: Sequence[str],
           colour: str | None = None, label: str = "") -> list[float]:
    """One line per percentile of ``read`` against load; returns the values drawn."""
    drawn: list[float] = []
    for name in names:
        pts = [(p.load, read(p, name)) for p in points if read(p, name) is not None]
        if not pts:
            continue
        style_colour, style = PERCENTILE_STYLE.get(name, ("#333333", "-"))
        if colour is not None:
            style = "--" if name == "p50" else ("-" if name == "p99" else ":")
        ys = [float(y or 0.0) for _, y in pts]
        ax.plot([x for x, _ in pts], ys, style, marker="o", markersize=3.5,
                color=colour or style_colour, linewidth=1.6 if name in ("p50", "p99") else 1.2,
                label=f"{label} {name}".strip())
        drawn += ys
    return drawn


def _ttft(p: StreamPoint, name: str) -> float | None:
    return p.ttft(name)


def _itl(p: StreamPoint, name: str) -> float | None:
    return p.itl(name)


def _tokens(ax: Axes, points: Sequence[StreamPoint], colour: str, label: str) -> None:
    pts = [p for p in points if p.output_tokens_per_s is not None]
    if pts:
        ax.plot([p.load for p in pts], [p.output_tokens_per_s or 0.0 for p in pts], "-",
                marker="o", markersize=3.5, color=colour, linewidth=1.6, label=label)


def _goodput(ax: Axes, points: Sequence[StreamPoint]) -> None:
    """Goodput (requests/s within the SLO) on the right axis, beside requests/s."""
    pts = [p for p in points if p.goodput_per_s is not None]
    if not pts:
        return
    right = ax.twinx()
    right.plot([p.load for p in pts], [p.requests_per_s or 0.0 for p in pts], ":",
               marker="o", markersize=3, color="#777777", label="requests/s")
    right.plot([p.load for p in pts], [p.goodput_per_s or 0.0 for p in pts], "--",
               marker="o", markersize=3.5, color=GOODPUT_COLOUR, label="goodput (SLO met)")
    right.set_ylabel("requests/s")
    right.set_ylim(bottom=0)
    right.grid(False)
    right.legend(loc="lower right")


def stream_figure(points: Sequence[StreamPoint], task_labels: dict[int, str] | None = None,
                  title: str | None = None) -> Figure:
    """Per decoupled model (and protocol and mode) one row: TTFT percentiles, ITL
    percentiles and output tokens per second against concurrency or request rate
    (with an SLO, goodput and requests per second on the right axis). Several tasks
    (a sweep): one colour per task, p50 dashed and p99 solid.

    Example::

        >>> stream_figure(stream_points(res)).savefig("tokens.png")
    """
    groups = group_stream_series(points)
    if not groups:
        raise ValueError("no streaming load points to draw")
    labels = task_labels or {}
    with plot_style():
        fig = new_figure(FIG_WIDTH, 0.6 + 2.9 * len(groups))
        axes = fig.subplots(len(groups), 3, squeeze=False)
        for row, (series, pts) in enumerate(groups.items()):
            ax_f, ax_i, ax_t = axes[row]
            tasks = sorted({p.task for p in pts})
            head = series_title(series)
            first: list[float] = []
            gaps: list[float] = []
            if len(tasks) == 1:
                if labels.get(tasks[0]):
                    head += f" [{shorten(labels[tasks[0]], 30)}]"
                first = _lines(ax_f, pts, _ttft, STREAM_PERCENTILES)
                gaps = _lines(ax_i, pts, _itl, STREAM_PERCENTILES)
                _tokens(ax_t, pts, THROUGHPUT_COLOUR, "output tokens/s")
                _goodput(ax_t, pts)
            else:
                for i, t in enumerate(tasks):
                    mine = [p for p in pts if p.task == t]
                    _series((ax_f, ax_i, ax_t), mine, PALETTE[i % len(PALETTE)],
                            shorten(labels.get(t) or f"task {t}", 24), first, gaps)
            _finish_axes((ax_f, ax_i, ax_t), pts, first, gaps)
            ax_f.set_ylabel("time to first token (ms)")
            ax_i.set_ylabel("inter-token latency (ms)")
            ax_t.set_ylabel("output tokens/s")
            ax_t.set_ylim(bottom=0)
            rule = pts[0].token_count
            ax_f.set_title(wrap_title(f"{head}: TTFT", 34))
            ax_i.set_title("ITL")
            ax_t.set_title(f"token throughput ({rule})")
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return fig


def _series(axes: tuple[Axes, Axes, Axes], pts: Sequence[StreamPoint], colour: str,
            name: str, first: list[float], gaps: list[float]) -> None:
    """One task's or run's TTFT, ITL (p50 dashed, p99 solid) and token throughput;
    the latencies drawn are added to ``first`` and ``gaps`` (for the axes' scale)."""
    ax_f, ax_i, ax_t = axes
    first += _lines(ax_f, pts, _ttft, ["p50", "p99"], colour, name)
    gaps += _lines(ax_i, pts, _itl, ["p50", "p99"], colour, name)
    _tokens(ax_t, pts, colour, name)


def _finish_axes(axes: tuple[Axes, Axes, Axes], pts: Sequence[StreamPoint],
                 first: list[float], gaps: list[float]) -> None:
    """Latency scales, the load axis and legends of one row of streaming plots."""
    latency_scale(axes[0], first)
    latency_scale(axes[1], gaps)
    for ax in axes:
        load_axis(ax, pts)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")


def compare_stream_figure(curves: Sequence[StreamCurves], labels: Sequence[str]) -> Figure:
    """Several runs' streaming curves on shared axes, one colour per run: TTFT and ITL
    (p50 dashed, p99 solid) and output tokens per second.

    Example::

        >>> compare_stream_figure(compare_stream_curves(cmp.results), cmp.labels)
    """
    if not curves:
        raise ValueError("no streaming load points in any run")
    with plot_style():
        fig = new_figure(FIG_WIDTH, 0.7 + 2.8 * len(curves))
        axes = fig.subplots(len(curves), 3, squeeze=False)
        for (ax_f, ax_i, ax_t), curve in zip(axes, curves, strict=True):
            everything = [p for pts in curve.points for p in pts]
            first: list[float] = []
            gaps: list[float] = []
            for i, pts in enumerate(curve.points):
                if not pts:
                    continue
                _series((ax_f, ax_i, ax_t), pts, PALETTE[i % len(PALETTE)],
                        shorten(labels[i], 24), first, gaps)
            _finish_axes((ax_f, ax_i, ax_t), everything, first, gaps)
            head = series_title(curve.series) + (
                f" [{shorten(curve.scope, 24)}]" if curve.scope else "")
            ax_f.set_title(wrap_title(f"{head}: TTFT", 34))
            ax_i.set_title("ITL")
            ax_t.set_title("output tokens/s")
            ax_f.set_ylabel("time to first token (ms)")
            ax_i.set_ylabel("inter-token latency (ms)")
            ax_t.set_ylabel("output tokens/s")
            ax_t.set_ylim(bottom=0)
    return fig
