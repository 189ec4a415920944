"""Matplotlib figures of results: load curves, check timelines, per-model times.

Import cost: this module imports nothing of matplotlib at import time; each function
imports it when called (about a second, so commands that draw nothing never pay it).
Figures are ``matplotlib.figure.Figure`` objects with an Agg canvas of their own: they
never touch pyplot or the process's backend, so they neither open windows nor disturb
a notebook's inline backend (where a returned figure displays itself).

Every function takes already-extracted data (:class:`~hpctriton.results.load.LoadPoint`
lists, :class:`~hpctriton.results.model.Results`) and returns a new figure.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hpctriton.results.load import MODE_LABELS, LoadPoint, group_series, series_title
from hpctriton.results.measures import SERVER_TIMES, Measure, measures, task_scopes
from hpctriton.results.model import CheckResult, Results, TaskResults

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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

_RC: dict[str, Any] = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8,
    "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.35, "grid.linewidth": 0.6,
    "axes.edgecolor": "#555555", "axes.titlelocation": "left", "figure.dpi": 100,
    "savefig.dpi": 110,
}


@contextmanager
def _style() -> Iterator[None]:
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


def _wrap(title: str, width: int = 50) -> str:
    """Titles of narrow panels on several lines rather than over their neighbour."""
    import textwrap

    return textwrap.fill(title, width, break_on_hyphens=False)


def _shorten(text: str, limit: int = 42) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------- load


def _load_axis(ax: Axes, points: Sequence[LoadPoint]) -> None:
    """x axis of a load level: base-2 log for a concurrency sweep over a wide range."""
    xs = sorted({p.load for p in points if p.load > 0})
    mode = points[0].mode if points else "concurrency"
    ax.set_xlabel(MODE_LABELS.get(mode, mode))
    if mode == "concurrency" and len(xs) >= 3 and xs[-1] / xs[0] >= 8:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()


def _latency_scale(ax: Axes, values: Sequence[float]) -> None:
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
    _mark_unstable(ax, pts, lambda p: p.throughput_rps, colour)
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
    with _style():
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
                    head += f" [{_shorten(labels[tasks[0]], 40)}]"
                drawn = _draw_latency(ax_l, pts, list(PERCENTILE_STYLE))
                _draw_throughput(ax_t, pts, THROUGHPUT_COLOUR)
                for ax in (ax_l, ax_t):
                    _legend_extras(ax, pts)
            else:
                entries = []
                for i, t in enumerate(tasks):
                    mine = [p for p in pts if p.task == t]
                    colour = PALETTE[i % len(PALETTE)]
                    entries.append((_shorten(labels.get(t) or f"task {t}", 32), colour))
                    drawn += _draw_latency(ax_l, mine, ["p50", "p99"], colour)
                    _draw_throughput(ax_t, mine, colour, "")
                _colour_legend(ax_l, entries, pts, ["p50", "p99"])
                _colour_legend(ax_t, entries, pts)
            _latency_scale(ax_l, drawn)
            for ax in (ax_l, ax_t):
                _load_axis(ax, pts)
            ax_l.set_ylabel("latency (ms)")
            ax_t.set_ylabel("throughput (req/s)")
            ax_t.set_ylim(bottom=0)
            ax_l.set_title(_wrap(f"{head}: latency"))
            ax_t.set_title("throughput")
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return fig


def compare_load_figure(runs: Sequence[tuple[str, Results]]) -> Figure:
    """Several runs' load curves on the same axes, one colour per run: latency p50
    (dashed) and p99 (solid), throughput, and the change against the first run in
    percent (p99 solid, throughput dashed) at the load levels both measured.

    Example::

        >>> compare_load_figure([("triton", res_a), ("priority", res_b)]).savefig("c.png")
    """
    keyed: list[dict[tuple[str, str, str | None, str], list[LoadPoint]]] = []
    order: dict[tuple[str, str, str | None, str], None] = {}
    for _, res in runs:
        scopes = task_scopes(res.tasks)
        mine: dict[tuple[str, str, str | None, str], list[LoadPoint]] = {}
        for p in res.load_points():
            key = (scopes.get(p.task, ""), *p.series)
            mine.setdefault(key, []).append(p)
            order.setdefault(key, None)
        keyed.append(mine)
    if not order:
        raise ValueError("no load points in any run")
    with _style():
        fig = new_figure(FIG_WIDTH, 0.7 + 2.8 * len(order))
        axes = fig.subplots(len(order), 3, squeeze=False)
        for row, key in enumerate(order):
            ax_l, ax_t, ax_d = axes[row]
            scope, series = key[0], key[1:]
            everything: list[LoadPoint] = []
            drawn: list[float] = []
            base = {p.load: p for p in keyed[0].get(key, [])}
            any_diff = False
            entries: list[tuple[str, str]] = []
            _offered(ax_t, [p for k in keyed for p in k.get(key, [])])
            for i, (label, _) in enumerate(runs):
                pts = sorted(keyed[i].get(key, []), key=lambda p: p.load)
                if not pts:
                    continue
                everything += pts
                colour = PALETTE[i % len(PALETTE)]
                name = _shorten(label, 28)
                entries.append((name, colour))
                drawn += _draw_latency(ax_l, pts, ["p50", "p99"], colour)
                _draw_throughput(ax_t, pts, colour, "")
                if i == 0 or not base:
                    continue
                common = [p for p in pts if p.load in base]
                d99 = [(p.load, _pct(p.latency("p99"), base[p.load].latency("p99")))
                       for p in common]
                dtp = [(p.load, _pct(p.throughput_rps, base[p.load].throughput_rps))
                       for p in common]
                for pairs, style in ((d99, "-"), (dtp, "--")):
                    pairs = [(x, y) for x, y in pairs if y is not None]
                    if pairs:
                        any_diff = True
                        ax_d.plot([x for x, _ in pairs], [y for _, y in pairs], style,
                                  marker="o", markersize=3.5, color=colour)
            _latency_scale(ax_l, drawn)
            head = series_title(series) + (f" [{_shorten(scope, 30)}]" if scope else "")
            ax_l.set_title(_wrap(f"{head}: latency", 36))
            ax_t.set_title("throughput")
            ax_l.set_ylabel("latency (ms)")
            ax_t.set_ylabel("throughput (req/s)")
            ax_t.set_ylim(bottom=0)
            for ax in (ax_l, ax_t):
                _load_axis(ax, everything)
            _colour_legend(ax_l, entries, everything, ["p50", "p99"])
            _colour_legend(ax_t, entries, everything)
            if any_diff:
                ax_d.axhline(0, color="#555555", linewidth=0.8)
                _load_axis(ax_d, everything)
                ax_d.set_ylabel(f"change vs {_shorten(runs[0][0], 20)} (%)")
                ax_d.set_title("difference")
                from matplotlib.lines import Line2D

                ax_d.legend([Line2D([], [], color=c) for _, c in entries[1:]]
                            + [Line2D([], [], color="#555555", linestyle="-"),
                               Line2D([], [], color="#555555", linestyle="--")],
                            [n for n, _ in entries[1:]] + ["p99", "throughput"], loc="best")
            else:
                _note(ax_d, f"no load level in common\nwith {_shorten(runs[0][0], 30)}")
    return fig


def _pct(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return (value - base) / base * 100.0


# ------------------------------------------------------------------ timeline


def parse_time(text: Any) -> _dt.datetime | None:
    """An ISO 8601 time of the results (``...Z`` or with an offset), None otherwise.

    Example::

        >>> parse_time("2026-11-21T22:40:33.123Z").year
        2026
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def task_span(task: TaskResults) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    """When the probe of a task started and ended (results.json, else state.json).

    Example::

        >>> start, end = task_span(res.tasks[0])
        >>> (end - start).total_seconds()
        0.373
    """
    state = task.state or {}
    start = parse_time(task.run_info.get("started_at")) or parse_time(state.get("started_at"))
    end = parse_time(task.run_info.get("ended_at")) or parse_time(state.get("finished_at"))
    return start, end


def check_segments(checks: Sequence[CheckResult]) -> list[tuple[str, float, float, str]]:
    """``(check, start_s, duration_s, worst status)`` per run of consecutive results of
    one check, laid end to end from 0.

    Result entries carry durations, not start times, and the probe runs checks one
    after another, so this places them in order; the gaps of the real run (start-up,
    the statistics snapshot) fall at the end instead.

    Example::

        >>> check_segments(res.tasks[0].checks)[:2]
        [('health', 0.0, 0.0021, 'pass'), ('metadata', 0.0021, 0.0088, 'pass')]
    """
    rank = {"pass": 0, "skip": 1, "fail": 2, "error": 3}
    out: list[tuple[str, float, float, str]] = []
    t = 0.0
    for c in checks:
        if out and out[-1][0] == c.check:
            name, start, width, status = out[-1]
            worst = status if rank.get(status, 3) >= rank.get(c.status, 3) else c.status
            out[-1] = (name, start, width + c.duration_s, worst)
        else:
            out.append((c.check, t, c.duration_s, c.status))
        t += c.duration_s
    return out


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


def timeline_figure(runs: Sequence[tuple[str, Results]]) -> Figure:
    """When each check ran: one row per task (its sweep point as label), a grey bar for
    the probe's whole span and a coloured block per check; failed or errored checks
    hatched with a red edge. Several runs: one panel each, sharing the time axis.

    Example::

        >>> timeline_figure([("", res)]).savefig("timeline.png")
    """
    from matplotlib.patches import Patch

    names = list(dict.fromkeys(c.check for _, res in runs for c in res.checks))
    rows = [min(len(res.tasks), MAX_TIMELINE_TASKS) for _, res in runs]
    with _style():
        fig = new_figure(FIG_WIDTH, 0.9 + sum(0.75 + 0.3 * max(r, 1) for r in rows))
        axes = fig.subplots(len(runs), 1, squeeze=False,
                            height_ratios=[0.75 + 0.3 * max(r, 1) for r in rows],
                            sharex=True)[:, 0]
        for ax, (label, res), n in zip(axes, runs, rows, strict=True):
            tasks = res.tasks[:n]
            spans = [task_span(t) for t in tasks]
            starts = [s for s, _ in spans if s is not None]
            t0 = min(starts) if starts else None
            scopes = task_scopes(res.tasks)
            for y, (task, (start, end)) in enumerate(zip(tasks, spans, strict=True)):
                offset = (start - t0).total_seconds() if start and t0 else 0.0
                segments = check_segments(task.checks)
                total = (end - start).total_seconds() if start and end else (
                    segments[-1][1] + segments[-1][2] if segments else 0.0)
                ax.broken_barh([(offset, max(total, 1e-6))], (y - 0.36, 0.72),
                               facecolors="#e6e6e6", edgecolors="none", zorder=1)
                for name, s, w, status in segments:
                    bad = status in ("fail", "error")
                    ax.broken_barh([(offset + s, max(w, 1e-6))], (y - 0.28, 0.56),
                                   facecolors=check_colour(name, names),
                                   edgecolors=BAD_EDGE if bad else "white",
                                   linewidth=1.2 if bad else 0.4,
                                   hatch="////" if bad else None, zorder=2)
                if not task.has_results:
                    ax.text(offset, y, "  no results.json", va="center", fontsize=7,
                            color=BAD_EDGE)
            ticks = [f"task {t.task}" + (f": {_shorten(scopes[t.task], 36)}"
                                         if scopes[t.task] and not
                                         scopes[t.task].startswith("task") else "")
                     for t in tasks]
            ax.set_yticks(range(len(tasks)), ticks)
            ax.set_ylim(len(tasks) - 0.5, -0.5)
            ax.grid(axis="y", visible=False)
            title = f"{label}: " if label else ""
            if t0 is not None:
                title += f"started {t0.strftime('%Y-%m-%d %H:%M:%S')} UTC"
            if len(res.tasks) > n:
                title += f" (first {n} of {len(res.tasks)} tasks)"
            ax.set_title(title or "timeline")
            if not tasks:
                _note(ax, "no tasks with results")
        axes[-1].set_xlabel("seconds since the first task started "
                            "(checks laid end to end within a task)")
        handles = [Patch(facecolor=check_colour(n, names), label=n) for n in names]
        handles += [Patch(facecolor="white", edgecolor=BAD_EDGE, hatch="////",
                          label="failed / error"),
                    Patch(facecolor="#e6e6e6", label="probe running")]
        fig.legend(handles=handles, loc="outside upper center",
                   ncols=min(len(handles), 9))
    return fig


# ---------------------------------------------------------------- per model


def _failed_infers(res: Results) -> set[tuple[str, str, str]]:
    """``(scope, model, protocol)`` of infer results that failed or errored."""
    scopes = task_scopes(res.tasks)
    return {(scopes.get(c.task, ""), c.model or "", c.protocol or "") for c in res.checks
            if c.check == "infer" and c.status in ("fail", "error")}


def models_figure(runs: Sequence[tuple[str, Results]], model: str | None = None) -> Figure:
    """Per model: the infer check's request latency by protocol (left) and the server's
    own time per request from the statistics check, split into queue and compute (right).
    Several runs: bars side by side, one colour (left) or one label (right) per run.
    A failed inference shows as a red "fail" where its bar would be.

    Example::

        >>> models_figure([("standalone", a), ("triton", b)]).savefig("models.png")
    """
    per_run: list[list[Measure]] = []
    failed: list[set[tuple[str, str, str]]] = []
    groups: dict[tuple[str, str], None] = {}
    for _, res in runs:
        ms = [m for m in measures(res) if m.section in ("infer", "server")
              and (model is None or m.model == model)]
        bad = {f for f in _failed_infers(res) if model is None or f[1] == model}
        per_run.append(ms)
        failed.append(bad)
        for m in ms:
            groups.setdefault((m.scope, m.model or ""), None)
        for scope, name, _ in sorted(bad):
            groups.setdefault((scope, name), None)
    if not groups:
        raise ValueError("no infer or statistics results to draw"
                         + (f" for model {model!r}" if model else ""))
    cats = list(groups)[:MAX_MODEL_GROUPS]
    many = len(runs) > 1
    protocols = sorted({m.protocol or "" for ms in per_run for m in ms if m.section == "infer"}
                       | {f[2] for bad in failed for f in bad})
    with _style():
        width = min(FIG_WIDTH, 5 + 1.1 * len(cats) * max(len(runs), 1) * 2)
        fig = new_figure(width, 4.2)
        ax_c, ax_s = fig.subplots(1, 2)
        # client side: one bar per (run, protocol) per model
        bars = [(i, proto) for i in range(len(runs)) for proto in protocols]
        step = 0.8 / max(len(bars), 1)
        drawn = False
        for b, (i, proto) in enumerate(bars):
            xs, ys = [], []
            for c, (scope, name) in enumerate(cats):
                x = c - 0.4 + step * (b + 0.5)
                found = [m.value for m in per_run[i] if m.section == "infer"
                         and (m.scope, m.model or "") == (scope, name) and m.protocol == proto]
                if found:
                    xs.append(x)
                    ys.append(found[0])
                elif (scope, name, proto) in failed[i]:
                    drawn = True
                    ax_c.text(x, 0, "fail", rotation=90, ha="center", va="bottom",
                              color=BAD_EDGE, fontsize=8, fontweight="bold")
            colour = PALETTE[(i if many else protocols.index(proto)) % len(PALETTE)]
            label = f"{_shorten(runs[i][0], 20)} {proto}".strip() if many else proto
            ax_c.bar(xs, ys, width=step * 0.92, color=colour, label=label,
                     alpha=1.0 if protocols.index(proto) % 2 == 0 or not many else 0.6)
            drawn = drawn or bool(xs)
        if drawn:
            ax_c.set_xticks(range(len(cats)), [_cat_label(c) for c in cats])
            ax_c.set_xlim(-0.6, len(cats) - 0.4)
            ax_c.set_ylabel("latency (ms)")
            ax_c.margins(y=0.25)
            ax_c.legend(loc="upper left", ncols=min(len(bars), 4))
        else:
            _note(ax_c, "no infer check results")
        ax_c.set_title("client: one inference (infer check)")
        # server side: stacked per (model, run)
        step = 0.8 / max(len(runs), 1)
        drawn = False
        for i, _ in enumerate(runs):
            for c, (scope, name) in enumerate(cats):
                values = {m.metric: m.value for m in per_run[i] if m.section == "server"
                          and (m.scope, m.model or "") == (scope, name)}
                if not any(label in values for _, label in SERVER_TIMES):
                    continue
                x = c - 0.4 + step * (i + 0.5)
                bottom = 0.0
                for k, (_, label) in enumerate(SERVER_TIMES):
                    v = values.get(label) or 0.0
                    ax_s.bar([x], [v], bottom=bottom, width=step * 0.9,
                             color=SERVER_COLOURS[k], label=label if not drawn else None,
                             edgecolor="white", linewidth=0.5)
                    bottom += v
                drawn = True
                if many:
                    ax_s.annotate(_shorten(runs[i][0], 14), (x, bottom),
                                  textcoords="offset points", xytext=(0, 2), ha="center",
                                  fontsize=7, rotation=90 if len(runs) > 2 else 0,
                                  va="bottom")
        if drawn:
            ax_s.set_xticks(range(len(cats)), [_cat_label(c) for c in cats])
            ax_s.set_xlim(-0.6, len(cats) - 0.4)
            ax_s.set_ylabel("average per request (ms)")
            ax_s.margins(y=0.3)
            ax_s.legend(loc="upper left", ncols=2)
        else:
            _note(ax_s, "no statistics check results")
        ax_s.set_title("server: time per request (statistics check)")
        for ax in (ax_c, ax_s):
            ax.grid(axis="x", visible=False)
            if len(cats) > 6:
                ax.tick_params(axis="x", labelrotation=30)
    return fig


def _cat_label(cat: tuple[str, str]) -> str:
    scope, name = cat
    if not scope:
        return name
    return name + "\n" + "\n".join(_shorten(part, 22) for part in scope.split(", "))
