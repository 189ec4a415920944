"""Matplotlib figures of results: load curves, check timelines, per-model times.

Import cost: this module imports nothing of matplotlib at import time; each function
imports it when called (about a second, so commands that draw nothing never pay it).
Figures are ``matplotlib.figure.Figure`` objects with an Agg canvas of their own: they
never touch pyplot or the process's backend, so they neither open windows nor disturb
a notebook's inline backend (where a returned figure displays itself).

Every function takes data already computed by :mod:`hpctriton.results`
(:class:`~hpctriton.results.load.LoadPoint` lists, load curves of runs compared,
:class:`~hpctriton.results.timeline.Timeline`, per-model times) and returns a new
figure: drawing here, figures there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hpctriton.results.compare import LoadCurves
from hpctriton.results.load import LoadPoint, group_series
from hpctriton.results.measures import SERVER_TIMES
from hpctriton.results.model_times import ModelGroups
from hpctriton.results.timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hpctriton.results.streaming import StreamPoint

#: Colours of runs (compare) and tasks (sweeps), in order.
PALETTE = ("#3b6fb6", "#e07b39", "#3a9e6a", "#c7434f", "#8a63b8", "#9a7a5b", "#d271b0",
           "#5f6b73", "#b5a12f", "#2aa3b8")
#: Latency percentiles: one blue ramp, light (p50) to dark (max).
PERCENTILE_STYLE = {"p50": ("#9ecae1", "-"), "p90": ("#6baed6", "-"),
                    "p95": ("#3182bd", "-"), "p99": ("#08519c", "-"),
                    "max": ("#08306b", ":")}
THROUGHPUT_COLOUR = "#e07b39"
CHECK_COLOURS = {"health": "#3a9e6a", "metadata": "#6baed6", "keepalive": "#8a63b8",
                 "infer": "#3b6fb6", "load": "#e07b39", "statistics": "#9a7a5b",
                 "metrics": "#b5a12f"}
SERVER_COLOURS = ("#c6dbef", "#9ecae1", "#3182bd", "#08519c")
BAD_EDGE = "#c7434f"
#: Width of figures in inches: the HTML page shows them at 110 px per inch, so this
#: fills its column.
FIG_WIDTH = 10.4
#: Colour legends name at most this many runs or tasks.
MAX_LEGEND_ENTRIES = 10
#: At most this many tasks per timeline (a note says what was left out).
MAX_TIMELINE_TASKS = 60
#: At most this many models (or sweep point × model) in the per-model figure.
MAX_MODEL_GROUPS = 24
#: Mode names as shown on axes.
MODE_LABELS = {"concurrency": "concurrency", "request_rate": "request rate (req/s)"}

_RC: dict[str, Any] = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8,
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.35, "grid.linewidth": 0.6,
    "axes.edgecolor": "#555555", "axes.titlelocation": "left", "figure.dpi": 100,
    "savefig.dpi": 110,
}


@contextmanager
def plot_style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]  # keys typed as literals
        yield


def new_figure(width: float, height: float) -> Figure:
    """An empty figure with its own Agg canvas (no pyplot, no global backend change).

    Example::

        >>> fig = new_figure(6, 3)
        >>> ax = fig.add_subplot()
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes.

    Example::

        >>> png_bytes(res.plot())[:4]
        b'\\x89PNG'
    """
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def notebook_ready(fig: Figure) -> Figure:
    """Give a figure a ``_repr_png_``, so Jupyter shows it even when pyplot and its
    inline backend were never loaded (our figures do not go through pyplot).

    Example::

        >>> notebook_ready(load_figure(points))  # the last value of a cell: drawn
    """
    setattr(fig, "_repr_png_", lambda: png_bytes(fig))  # noqa: B010 - an instance attribute
    return fig


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color="#777777", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def wrap_title(title: str, width: int = 50) -> str:
    """Titles of narrow panels on several lines rather than over their neighbour."""
    import textwrap

    return textwrap.fill(title, width, break_on_hyphens=False)


#: Inches of a title's bold 10-point character, on average (to wrap titles to their panel).
TITLE_CHAR_IN = 0.085


#: Inches of an 8-point legend or tick character, on average, and of a legend's handle.
SMALL_CHAR_IN, LEGEND_HANDLE_IN = 0.065, 0.5


def _panel_width_in(ax: Axes) -> float:
    """The width of ``ax``'s panel: its figure's width over its grid's columns, less the
    room of the y axis."""
    spec = ax.get_subplotspec()
    columns = spec.get_gridspec().ncols if spec is not None else 1
    size = getattr(ax.get_figure(), "get_size_inches", None)
    return (size()[0] if size is not None else 6.0) / columns - 0.8


def panel_title(ax: Axes, text: str) -> None:
    """Set ``ax``'s title, wrapped to the width of its panel, so a long title is neither
    clipped at the figure's edge nor drawn over its neighbour (and, as a last resort,
    wrapped at the figure's edge when drawn)."""
    chars = max(14, int(_panel_width_in(ax) / TITLE_CHAR_IN))
    ax.set_title(wrap_title(text, chars), wrap=True)


def legend_columns(ax: Axes, wanted: int) -> int:
    """How many of ``wanted`` legend columns fit ``ax``'s panel, for its labels: a legend
    wider than its panel squeezes the plot to nothing (constrained layout gives up)."""
    labels = ax.get_legend_handles_labels()[1]
    per = max((len(label) for label in labels), default=0) * SMALL_CHAR_IN + LEGEND_HANDLE_IN
    return max(1, min(wanted, int(_panel_width_in(ax) / per)))


def _crowded(ax: Axes, labels: Sequence[str]) -> bool:
    """Whether tick labels side by side would run into each other."""
    return sum(len(label) + 2 for label in labels) * SMALL_CHAR_IN > _panel_width_in(ax)


def shorten(text: str, limit: int = 42) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def series_title(series: tuple[str, str | None, str]) -> str:
    """A load series as a title.

    Example::

        >>> series_title(("simple", "grpc", "request_rate"))
        'simple · grpc · request rate'
    """
    model, protocol, mode = series
    return " · ".join(x for x in (model, protocol, mode.replace("_", " ")) if x)


# ---------------------------------------------------------------------- load


def load_axis(ax: Axes, points: Sequence[LoadPoint | StreamPoint]) -> None:
    """x axis of a load level (plain or streaming points): base-2 log for a concurrency
    sweep over a wide range, whole numbers for concurrency."""
    xs = sorted({p.load for p in points if p.load > 0})
    mode = points[0].mode if points else "concurrency"
    ax.set_xlabel(MODE_LABELS.get(mode, mode))
    if mode == "concurrency" and len(xs) >= 3 and xs[-1] / xs[0] >= 8:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()
    elif mode == "concurrency":
        from matplotlib.ticker import MaxNLocator

        # concurrency is a number of requests: never a tick at 1.5
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def latency_scale(ax: Axes, values: Sequence[float]) -> None:
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 30:
        ax.set_yscale("log")


def _mark_unstable(ax: Axes, points: Sequence[LoadPoint], value: Callable[[LoadPoint], Any],
                   colour: str) -> bool:
    bad = [(p.load, value(p)) for p in points if p.stable is False and value(p) is not None]
    if bad:
        ax.plot([x for x, _ in bad], [y for _, y in bad], linestyle="none", marker="o",
                markersize=7, markerfacecolor="white", markeredgecolor=colour, zorder=4)
    return bool(bad)


def _latency_of(name: str) -> Callable[[LoadPoint], float | None]:
    return lambda p: p.latency(name)


def _throughput_of(point: LoadPoint) -> float | None:
    return point.throughput_rps


def _draw_latency(ax: Axes, points: Sequence[LoadPoint], names: Sequence[str],
                  colour: str | None = None, label: str = "") -> list[float]:
    """Lines of latency figures against load; returns the values drawn."""
    drawn: list[float] = []
    for name in names:
        pts = [p for p in points if p.latency(name) is not None]
        if not pts:
            continue
        ys = [float(p.latency(name) or 0.0) for p in pts]
        style_colour, style = PERCENTILE_STYLE.get(name, ("#333333", "-"))
        if colour is not None:
            style = "--" if name == "p50" else ("-" if name == "p99" else ":")
        col = colour or style_colour
        ax.plot([p.load for p in pts], ys, style, marker="o", markersize=3.5, color=col,
                linewidth=1.6 if name in ("p99", "p50") else 1.2,
                label=f"{label} {name}".strip())
        _mark_unstable(ax, pts, _latency_of(name), col)
        drawn += ys
    return drawn


def _draw_throughput(ax: Axes, points: Sequence[LoadPoint], colour: str,
                     label: str = "throughput") -> None:
    pts = [p for p in points if p.throughput_rps is not None]
    if not pts:
        return
    ys = [float(p.throughput_rps or 0.0) for p in pts]
    ax.plot([p.load for p in pts], ys, "-", marker="o", markersize=3.5, color=colour,
            linewidth=1.6, label=label)
    _mark_unstable(ax, pts, _throughput_of, colour)
    for p in pts:
        if p.errors:
            ax.plot([p.load], [p.throughput_rps or 0.0], marker="x", color=BAD_EDGE,
                    markersize=8, markeredgewidth=2, zorder=5)
            ax.annotate(f"{p.errors} err", (p.load, p.throughput_rps or 0.0),
                        textcoords="offset points", xytext=(0, -13), ha="center",
                        color=BAD_EDGE, fontsize=7)


def _offered(ax: Axes, points: Sequence[LoadPoint]) -> None:
    """Open loop: the offered rate as a dotted diagonal (a server that keeps up sits on it)."""
    xs = sorted({p.load for p in points})
    if points and points[0].mode == "request_rate" and xs:
        ax.plot(xs, xs, ":", color="#888888", linewidth=1, label="offered rate")


def _legend_extras(ax: Axes, points: Sequence[LoadPoint]) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    if any(p.stable is False for p in points):
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white",
                              markeredgecolor="#555555"))
        labels.append("not stable")
    if handles:
        ax.legend(handles, labels, loc="best")


def _style_handles(names: Sequence[str]) -> tuple[list[Any], list[str]]:
    """Legend entries for line styles of p50 (dashed) and p99 (solid), in grey."""
    from matplotlib.lines import Line2D

    styles: dict[str, Any] = {"p50": "--", "p99": "-"}
    return ([Line2D([], [], color="#555555", linestyle=styles[n]) for n in names],
            list(names))


def _colour_legend(ax: Axes, entries: Sequence[tuple[str, str]], points: Sequence[LoadPoint],
                   styles: Sequence[str] = ()) -> None:
    """A legend of colours (runs or tasks), then line styles, then 'not stable'."""
    from matplotlib.lines import Line2D

    shown = entries[:MAX_LEGEND_ENTRIES]
    handles: list[Any] = [Line2D([], [], color=c, marker="o", markersize=3.5)
                          for _, c in shown]
    labels = [name for name, _ in shown]
    if len(entries) > len(shown):
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"… {len(entries) - len(shown)} more")
    extra_h, extra_l = _style_handles(styles)
    handles += extra_h
    labels += extra_l
    for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
        if lab == "offered rate":
            handles.append(h)
            labels.append(lab)
    if any(p.stable is False for p in points):
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="white",
                              markeredgecolor="#555555"))
        labels.append("not stable")
    ax.legend(handles, labels, loc="best")


def load_figure(points: Sequence[LoadPoint], task_labels: dict[int, str] | None = None,
                title: str | None = None) -> Figure:
    """Latency percentiles (left) and throughput (right) against concurrency or request
    rate: one row per model, protocol and mode. With several tasks (a sweep), each task
    is a colour, showing p50 (dashed) and p99 (solid). ``task_labels`` name the tasks
    (their sweep points).

    Hollow markers: points that never met the stability rule; red crosses: points with
    errors.

    Example::

        >>> load_figure(res.load_points()).savefig("load.png")
    """
    groups = group_series(points)
    if not groups:
        raise ValueError("no load points to draw")
    labels = task_labels or {}
    with plot_style():
        fig = new_figure(FIG_WIDTH, 0.6 + 3.0 * len(groups))
        axes = fig.subplots(len(groups), 2, squeeze=False)
        for row, (series, pts) in enumerate(groups.items()):
            ax_l, ax_t = axes[row]
            tasks = sorted({p.task for p in pts})
            drawn: list[float] = []
            head = series_title(series)
            _offered(ax_t, pts)
            if len(tasks) == 1:
                if labels.get(tasks[0]):
                    head += f" [{shorten(labels[tasks[0]], 40)}]"
                drawn = _draw_latency(ax_l, pts, list(PERCENTILE_STYLE))
                _draw_throughput(ax_t, pts, THROUGHPUT_COLOUR)
                for ax in (ax_l, ax_t):
                    _legend_extras(ax, pts)
            else:
                entries = []
                for i, t in enumerate(tasks):
                    mine = [p for p in pts if p.task == t]
                    colour = PALETTE[i % len(PALETTE)]
                    entries.append((shorten(labels.get(t) or f"task {t}", 32), colour))
                    drawn += _draw_latency(ax_l, mine, ["p50", "p99"], colour)
                    _draw_throughput(ax_t, mine, colour, "")
                _colour_legend(ax_l, entries, pts, ["p50", "p99"])
                _colour_legend(ax_t, entries, pts)
            latency_scale(ax_l, drawn)
            for ax in (ax_l, ax_t):
                load_axis(ax, pts)
            ax_l.set_ylabel("latency (ms)")
            ax_t.set_ylabel("throughput (req/s)")
            ax_t.set_ylim(bottom=0)
            panel_title(ax_l, f"{head}: latency")
            ax_t.set_title("throughput")
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return fig


def compare_load_figure(curves: Sequence[LoadCurves], labels: Sequence[str]) -> Figure:
    """Several runs' load curves on the same axes, one colour per run (``labels[i]``
    names run ``i``): latency p50 (dashed) and p99 (solid), throughput, and the change
    against the first run in percent (p99 solid, throughput dashed) at the load levels
    both measured.

    Example::

        >>> cmp = compare_runs([res_a, res_b], labels=["triton", "priority"])
        >>> compare_load_figure(compare_load_curves(cmp.results), cmp.labels)
    """
    if not curves:
        raise ValueError("no load points in any run")
    with plot_style():
        fig = new_figure(FIG_WIDTH, 0.7 + 2.8 * len(curves))
        axes = fig.subplots(len(curves), 3, squeeze=False)
        for (ax_l, ax_t, ax_d), curve in zip(axes, curves, strict=True):
            everything = [p for pts in curve.points for p in pts]
            entries = _draw_compared_runs(ax_l, ax_t, curve, labels)
            head = series_title(curve.series) + (
                f" [{shorten(curve.scope, 30)}]" if curve.scope else "")
            panel_title(ax_l, f"{head}: latency")
            ax_t.set_title("throughput")
            ax_l.set_ylabel("latency (ms)")
            ax_t.set_ylabel("throughput (req/s)")
            ax_t.set_ylim(bottom=0)
            for ax in (ax_l, ax_t):
                load_axis(ax, everything)
            _colour_legend(ax_l, entries, everything, ["p50", "p99"])
            _colour_legend(ax_t, entries, everything)
            _draw_changes(ax_d, curve, labels, entries, everything)
    return fig


def _draw_compared_runs(ax_l: Axes, ax_t: Axes, curve: LoadCurves,
                        labels: Sequence[str]) -> list[tuple[str, str]]:
    """Each run's latency and throughput of one series; returns the legend entries."""
    _offered(ax_t, [p for pts in curve.points for p in pts])
    entries: list[tuple[str, str]] = []
    drawn: list[float] = []
    for i, pts in enumerate(curve.points):
        if not pts:
            continue
        colour = PALETTE[i % len(PALETTE)]
        entries.append((shorten(labels[i], 28), colour))
        drawn += _draw_latency(ax_l, pts, ["p50", "p99"], colour)
        _draw_throughput(ax_t, pts, colour, "")
    latency_scale(ax_l, drawn)
    return entries


def _draw_changes(ax: Axes, curve: LoadCurves, labels: Sequence[str],
                  entries: Sequence[tuple[str, str]], everything: Sequence[LoadPoint]) -> None:
    """Each run's p99 and throughput change against the baseline, in percent."""
    from matplotlib.lines import Line2D

    drawn = False
    for i in range(1, len(curve.points)):
        for pairs, style in ((curve.change(i, _latency_of("p99")), "-"),
                             (curve.change(i, _throughput_of), "--")):
            if pairs:
                drawn = True
                ax.plot([x for x, _ in pairs], [y for _, y in pairs], style, marker="o",
                        markersize=3.5, color=PALETTE[i % len(PALETTE)])
    if not drawn:
        _note(ax, f"no load level in common\nwith {shorten(labels[0], 30)}")
        return
    ax.axhline(0, color="#555555", linewidth=0.8)
    load_axis(ax, everything)
    ax.set_ylabel(f"change vs {shorten(labels[0], 20)} (%)")
    ax.set_title("difference")
    # with a change drawn the baseline has the series: the first entry is its own
    ax.legend([Line2D([], [], color=c) for _, c in entries[1:]]
              + [Line2D([], [], color="#555555", linestyle="-"),
                 Line2D([], [], color="#555555", linestyle="--")],
              [n for n, _ in entries[1:]] + ["p99", "throughput"], loc="best")


# ------------------------------------------------------------------ timeline


def check_colour(name: str, names: Sequence[str]) -> str:
    """The colour of a check: fixed for the known checks, the palette for others.

    Example::

        >>> check_colour("infer", ["health", "infer"])
        '#3b6fb6'
    """
    if name in CHECK_COLOURS:
        return CHECK_COLOURS[name]
    others = [n for n in names if n not in CHECK_COLOURS]
    return PALETTE[(others.index(name) if name in others else 0) % len(PALETTE)]


def _row_height(timeline: Timeline) -> float:
    return 0.75 + 0.3 * max(len(timeline.rows), 1)


def timeline_figure(timelines: Sequence[tuple[str, Timeline]]) -> Figure:
    """When each check ran: one row per task (its sweep point as label), a grey bar for
    the probe's whole span and a coloured block per check; failed or errored checks
    hatched with a red edge. Several runs: one panel each, sharing the time axis.

    Example::

        >>> timeline_figure([("", timeline(res, MAX_TIMELINE_TASKS))]).savefig("t.png")
    """
    from matplotlib.patches import Patch

    names = list(dict.fromkeys(name for _, tl in timelines for name in tl.check_names))
    with plot_style():
        fig = new_figure(FIG_WIDTH, 0.9 + sum(_row_height(tl) for _, tl in timelines))
        axes = fig.subplots(len(timelines), 1, squeeze=False,
                            height_ratios=[_row_height(tl) for _, tl in timelines],
                            sharex=True)[:, 0]
        for ax, (label, tl) in zip(axes, timelines, strict=True):
            _draw_timeline(ax, tl, names)
            title = f"{label}: " if label else ""
            if tl.started is not None:
                title += f"started {tl.started.strftime('%Y-%m-%d %H:%M:%S')} UTC"
            if tl.tasks_total > len(tl.rows):
                title += f" (first {len(tl.rows)} of {tl.tasks_total} tasks)"
            ax.set_title(title or "timeline")
        axes[-1].set_xlabel("seconds since the first task started "
                            "(checks laid end to end within a task)")
        handles = [Patch(facecolor=check_colour(n, names), label=n) for n in names]
        handles += [Patch(facecolor="white", edgecolor=BAD_EDGE, hatch="////",
                          label="failed / error"),
                    Patch(facecolor="#e6e6e6", label="probe running")]
        fig.legend(handles=handles, loc="outside upper center",
                   ncols=min(len(handles), 9))
    return fig


def _draw_timeline(ax: Axes, tl: Timeline, names: Sequence[str]) -> None:
    """One run's tasks, one row each."""
    for y, row in enumerate(tl.rows):
        ax.broken_barh([(row.offset_s, max(row.total_s, 1e-6))], (y - 0.36, 0.72),
                       facecolors="#e6e6e6", edgecolors="none", zorder=1)
        for seg in row.segments:
            bad = seg.status in ("fail", "error")
            ax.broken_barh([(row.offset_s + seg.start_s, max(seg.duration_s, 1e-6))],
                           (y - 0.28, 0.56), facecolors=check_colour(seg.check, names),
                           edgecolors=BAD_EDGE if bad else "white",
                           linewidth=1.2 if bad else 0.4, hatch="////" if bad else None,
                           zorder=2)
        if not row.task.has_results:
            ax.text(row.offset_s, y, "  no results.json", va="center", fontsize=7,
                    color=BAD_EDGE)
    ticks = [f"task {row.task.task}" + (f": {shorten(row.scope, 36)}"
                                        if row.scope and not row.scope.startswith("task")
                                        else "")
             for row in tl.rows]
    ax.set_yticks(range(len(tl.rows)), ticks)
    ax.set_ylim(len(tl.rows) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    if not tl.rows:
        _note(ax, "no tasks with results")


# ---------------------------------------------------------------- per model


def models_figure(groups: ModelGroups, labels: Sequence[str]) -> Figure:
    """Per model: the infer check's request latency by protocol (left) and the server's
    own time per request from the statistics check, split into queue and compute (right).
    Several runs (``labels[i]`` names run ``i``): bars side by side, one colour (left)
    or one label (right) per run. A failed inference shows as a red "fail" where its
    bar would be.

    Example::

        >>> models_figure(model_groups([a, b]), ["standalone", "triton"]).savefig("m.png")
    """
    if not groups.keys:
        raise ValueError("no infer or statistics results to draw")
    keys = groups.keys[:MAX_MODEL_GROUPS]
    with plot_style():
        width = min(FIG_WIDTH, 5 + 1.1 * len(keys) * max(len(labels), 1) * 2)
        fig = new_figure(width, 4.2)
        ax_c, ax_s = fig.subplots(1, 2)
        if _draw_client_bars(ax_c, groups, keys, labels):
            _model_axis(ax_c, keys)
            ax_c.set_ylabel("latency (ms)")
            ax_c.margins(y=0.25)
            ax_c.legend(loc="upper left", ncols=legend_columns(
                ax_c, min(len(labels) * len(groups.protocols), 4)))
        else:
            _note(ax_c, "no infer check results")
        panel_title(ax_c, "client: one inference (infer check)")
        if _draw_server_bars(ax_s, groups, keys, labels):
            _model_axis(ax_s, keys)
            ax_s.set_ylabel("average per request (ms)")
            ax_s.margins(y=0.3)
            ax_s.legend(loc="upper left", ncols=legend_columns(ax_s, 2))
        else:
            _note(ax_s, "no statistics check results")
        panel_title(ax_s, "server: time per request (statistics check)")
        for ax in (ax_c, ax_s):
            ax.grid(axis="x", visible=False)
            if len(keys) > 6 or _crowded(ax, [_key_label(k) for k in keys]):
                ax.tick_params(axis="x", labelrotation=30)
    return fig


def _model_axis(ax: Axes, keys: Sequence[tuple[str, str]]) -> None:
    ax.set_xticks(range(len(keys)), [_key_label(k) for k in keys])
    ax.set_xlim(-0.6, len(keys) - 0.4)


def _draw_client_bars(ax: Axes, groups: ModelGroups, keys: Sequence[tuple[str, str]],
                      labels: Sequence[str]) -> bool:
    """One bar per (run, protocol) per model, "fail" where the inference failed;
    returns whether anything was drawn."""
    many = len(labels) > 1
    protocols = groups.protocols
    bars = [(i, proto) for i in range(len(labels)) for proto in protocols]
    step = 0.8 / max(len(bars), 1)
    drawn = False
    for b, (i, proto) in enumerate(bars):
        xs, ys = [], []
        for k, key in enumerate(keys):
            x = k - 0.4 + step * (b + 0.5)
            times = groups.runs[i].get(key)
            if times is not None and proto in times.infer_ms:
                xs.append(x)
                ys.append(times.infer_ms[proto])
            elif times is not None and proto in times.infer_failed:
                drawn = True
                ax.text(x, 0, "fail", rotation=90, ha="center", va="bottom",
                        color=BAD_EDGE, fontsize=8, fontweight="bold")
        colour = PALETTE[(i if many else protocols.index(proto)) % len(PALETTE)]
        label = f"{shorten(labels[i], 20)} {proto}".strip() if many else proto
        ax.bar(xs, ys, width=step * 0.92, color=colour, label=label,
               alpha=1.0 if protocols.index(proto) % 2 == 0 or not many else 0.6)
        drawn = drawn or bool(xs)
    return drawn


def _draw_server_bars(ax: Axes, groups: ModelGroups, keys: Sequence[tuple[str, str]],
                      labels: Sequence[str]) -> bool:
    """The server's queue and compute times stacked, per (model, run); returns whether
    anything was drawn."""
    step = 0.8 / max(len(labels), 1)
    drawn = False
    for i, label in enumerate(labels):
        for k, key in enumerate(keys):
            times = groups.runs[i].get(key)
            if times is None or not any(name in times.server for _, name in SERVER_TIMES):
                continue
            x = k - 0.4 + step * (i + 0.5)
            bottom = 0.0
            for colour, (_, name) in zip(SERVER_COLOURS, SERVER_TIMES, strict=True):
                value = times.server.get(name) or 0.0
                ax.bar([x], [value], bottom=bottom, width=step * 0.9, color=colour,
                       label=name if not drawn else None, edgecolor="white", linewidth=0.5)
                bottom += value
            drawn = True
            if len(labels) > 1:
                ax.annotate(shorten(label, 14), (x, bottom), textcoords="offset points",
                            xytext=(0, 2), ha="center", fontsize=7,
                            rotation=90 if len(labels) > 2 else 0, va="bottom")
    return drawn


def _key_label(key: tuple[str, str]) -> str:
    scope, name = key
    if not scope:
        return name
    return name + "\n" + "\n".join(shorten(part, 22) for part in scope.split(", "))
