"""Results in a notebook: the public ``hpctriton.Results``, which shows itself as an HTML
table (``_repr_html_``) and draws its figures (``plot()``).

Why a subclass: the data model (:class:`hpctriton.results.model.Results`) must not
import the reports that read it, yet users expect ``run.results().plot()``. So the
views live here, on a subclass that adds nothing but them; every ``from_*`` reader
builds the class it is called on. Neither matplotlib nor pandas is imported until a
figure or a table is asked for.

Example::

    >>> from hpctriton import Results
    >>> res = Results.from_run_dir("hpctriton-runs/20261121-224033-asgc-slurm-1a2b")
    >>> res                      # the last value of a cell: a verdict and the results table
    >>> res.plot().savefig("load.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from hpctriton.report import plots
from hpctriton.report.htmlkit import STATUS_COLOURS, esc, fmt_duration
from hpctriton.results import model
from hpctriton.results.measures import task_scopes
from hpctriton.results.model_times import model_groups
from hpctriton.results.timeline import timeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The notebook view lists at most this many results.
NOTEBOOK_ROWS = 200


class Results(model.Results):
    """All tasks of a run (or one ``hpctriton check``), with notebook views.

    Iterating gives every :class:`~hpctriton.results.model.CheckResult`;
    ``res["infer"]`` the results of one check, ``res[0]`` the first result. In Jupyter
    it shows a verdict and the results table; :meth:`plot` draws a figure.
    """

    def plot(self, kind: Literal["auto", "load", "timeline", "models"] = "auto",
             *, model: str | None = None) -> Figure:
        """A matplotlib figure of the results.

        ``kind``: ``"load"`` latency percentiles and throughput against concurrency or
        request rate, one row per model; ``"timeline"`` when each check ran, per task;
        ``"models"`` client latency and server-side time per model; ``"auto"`` load when
        there are load results, else the timeline. ``model`` keeps one model.

        Matplotlib is imported here (not before) and draws off-screen (Agg); the
        process's pyplot backend is left alone, so a notebook shows the returned
        figure inline.

        Example::

            >>> fig = res.plot()
            >>> fig.savefig("load.png")
        """
        points = self.load_points()
        if model is not None:
            points = [p for p in points if p.model == model]
        if kind == "auto":
            kind = "load" if points else "timeline"
        for_model = f" for model {model!r}" if model else ""
        if kind == "load":
            if not points:
                raise ValueError(f"no load results to plot{for_model}: run the load check, "
                                 "or plot(kind='timeline')")
            return plots.notebook_ready(plots.load_figure(points, task_scopes(self.tasks)))
        if kind == "timeline":
            return plots.notebook_ready(plots.timeline_figure(
                [("", timeline(self, plots.MAX_TIMELINE_TASKS))]))
        if kind == "models":
            groups = model_groups([self], model)
            if not groups.keys:
                raise ValueError(f"no infer or statistics results to draw{for_model}")
            return plots.notebook_ready(plots.models_figure(groups, [""]))
        raise ValueError(f"unknown plot kind {kind!r}: auto, load, timeline or models")

    def _repr_html_(self) -> str:
        """Jupyter's view: a verdict line and the results table."""
        return notebook_html(self)


def notebook_html(results: model.Results) -> str:
    """A compact view for Jupyter: the verdict, the counts and the results table
    (inline styles only: notebooks may drop ``<style>`` blocks)."""
    text = results.verdict
    colour = {"OK": STATUS_COLOURS["pass"], "FAILED": STATUS_COLOURS["fail"]}.get(text, "#777")
    counts = results.counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in model.STATUSES)
    if results.missing_tasks:
        summary += f", tasks without results: {results.missing_tasks}"
    head = (f'<div style="margin:4px 0"><b style="color:#fff;background:{colour};'
            f'padding:2px 8px;border-radius:4px">{text}</b> '
            f"<b>{esc(results.run_id or 'results')}</b>: {len(results.tasks)} task(s); "
            f"{esc(summary)}</div>")
    many = len(results.tasks) > 1
    base = "padding:2px 8px;vertical-align:top;"
    styles = ([f"{base}text-align:right"] if many else []) + [
        f"{base}text-align:left;white-space:nowrap"] * 4 + [
        f"{base}text-align:right;white-space:nowrap", f"{base}text-align:left"]
    headers = (["task"] if many else []) + ["check", "protocol", "model", "status", "time",
                                            "message"]
    rows = []
    checks = results.checks
    for c in checks[:NOTEBOOK_ROWS]:
        status = (f'<span style="color:{STATUS_COLOURS.get(c.status, "#777")};'
                  f'font-weight:bold">{esc(c.status)}</span>')
        values = ([esc(c.task)] if many else []) + [
            esc(c.check), esc(c.protocol or ""), esc(c.model or ""), status,
            esc(fmt_duration(c.duration_s)), esc(c.message)]
        rows.append("<tr>" + "".join(f'<td style="{st}">{v}</td>'
                                     for st, v in zip(styles, values, strict=True)) + "</tr>")
    more = ""
    if len(checks) > NOTEBOOK_ROWS:
        more = (f"<div>… {len(checks) - NOTEBOOK_ROWS} more results: "
                "<code>to_dataframe()</code> has them all</div>")
    for t in results.tasks:
        if t.problems:  # a crash, checks that never ran, damaged files
            more += (f'<div style="color:{STATUS_COLOURS["error"]}">task {esc(t.task)}: '
                     f"{esc('; '.join(t.problems))}</div>")
    if results.load_points():
        more += ("<div>load results: <code>.plot()</code> draws them, "
                 "<code>.load_dataframe()</code> tabulates them</div>")
    thead = "".join(f'<th style="{st}">{h}</th>' for st, h in zip(styles, headers, strict=True))
    return (f"<div>{head}<table><thead><tr>{thead}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{more}</div>")
