"""One self-contained HTML file for a run: summary, plots, and every result.

What the page holds, top to bottom:

* the run: verdict, ids, backend, cluster, server, models, versions, times;
* capacity (when a load check searched for it): one sentence per search, the figure of
  its steps (rate against the percentile, the bound drawn) and their table;
* a summary: counts per status, one row per check, and what failed;
* load (when the load check ran): latency percentiles and throughput against
  concurrency or request rate per model, and the table of points;
* per model: the infer check's latency and the server's time per request
  (statistics check), as a figure and a table;
* a timeline of the checks, one row per task;
* for a sweep: a task-by-check status matrix with each task's sweep point, then a
  section per task (its point, host, exit code, load figure and results);
* without a sweep: the results table with each result's details.

Figures are matplotlib PNGs embedded as ``data:`` URIs; styles are inline; there is no
script and no external reference. Without matplotlib the page is written without
figures and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hpctriton.report import plots
from hpctriton.report.capacity_html import capacity_section
from hpctriton.report.htmlkit import (
    badge,
    checks_table,
    count_boxes,
    esc,
    figure_img,
    fmt_duration,
    fmt_level,
    fmt_num,
    matplotlib_available,
    page,
    table,
    verdict,
    write_text,
)
from hpctriton.report.stream_html import stream_block
from hpctriton.results.capacity import capacities
from hpctriton.results.load import PERCENTILES, LoadPoint, load_points
from hpctriton.results.measures import COUNT_METRICS, SERVER_TIMES, task_scopes
from hpctriton.results.model import STATUSES, CheckResult, Results, TaskResults
from hpctriton.results.model_times import model_groups, model_times
from hpctriton.results.source import RunInput, RunSource, resolve_source
from hpctriton.results.streaming import stream_points
from hpctriton.results.summary import check_summaries, task_check
from hpctriton.results.timeline import task_seconds, timeline

#: Sweeps with more tasks with load results than this get no per-task load figure
#: (each costs about half a second to draw); the overview figure still has them all.
MAX_TASK_FIGURES = 24


# ------------------------------------------------------------------ header


def _meta_items(src: RunSource) -> list[tuple[str, str]]:
    res, info = src.results, src.info
    items: list[tuple[str, str]] = []
    if info:
        where = " · ".join(esc(x) for x in (info.get("backend"), info.get("cluster"),
                                            info.get("host")) if x)
        items.append(("backend · cluster · host", where))
        items.append(("created / submitted", esc(info.get("created_at")) + " / "
                      + esc(info.get("submitted_at") or "not submitted")))
        jobs = [str(j.get("job_id")) for j in info.get("jobs", []) if isinstance(j, dict)]
        if jobs:
            items.append(("scheduler jobs", esc(", ".join(jobs[:8])
                                                + (" …" if len(jobs) > 8 else ""))))
    expected = res.expected_tasks
    items.append(("tasks", f"{len(res.tasks)} with results"
                  + (f" of {expected}" if expected is not None else "")))
    servers = []
    for t in res.tasks:
        s = t.run_info.get("server")
        if s:
            ports = ", ".join(f"{name} {port}" for name, port in (
                ("HTTP", s["http_port"]), ("gRPC", s["grpc_port"]),
                ("metrics", s["metrics_port"])) if port)
            text = f"{s['host']} ({ports}{', TLS' if s['tls'] else ''})"
            if text not in servers:
                servers.append(text)
    if servers:
        items.append(("server" if len(servers) == 1 else f"servers ({len(servers)})",
                      esc(", ".join(servers[:4]) + (" …" if len(servers) > 4 else ""))))
    if res.models:
        items.append(("models", esc(", ".join(res.models))))
    keys = list(dict.fromkeys(k for t in res.tasks for k in (t.point or {})))
    if keys:
        items.append(("sweep over", esc(", ".join(keys))))
    starts = [str(t.run_info["started_at"]) for t in res.tasks
              if t.run_info.get("started_at")]
    ends = [str(t.run_info["ended_at"]) for t in res.tasks if t.run_info.get("ended_at")]
    if starts:
        items.append(("probe ran", esc(min(starts)) + " → " + esc(max(ends) if ends else "…")))
    hosts = list(dict.fromkeys(str(t.run_info.get("hostname")) for t in res.tasks
                               if t.run_info.get("hostname")))
    if hosts:
        items.append(("worker nodes", esc(", ".join(hosts[:6])
                                          + (f" … ({len(hosts)})" if len(hosts) > 6 else ""))))
    versions = next((t.run_info.get("versions") for t in res.tasks
                     if t.run_info.get("versions")), None)
    if versions:
        items.append(("probe · python · tritonclient", esc(" · ".join(
            str(versions.get(k) or "?") for k in ("probe", "python", "tritonclient")))))
    return items


def _header(src: RunSource, title: str) -> str:
    text, cls = verdict(src.results)
    meta = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in _meta_items(src))
    return (f'<header class="top"><span class="verdict {cls}">{text}</span>'
            f"<h1>{esc(title)}</h1><div class=sub>{esc(src.results.run_id or src.label)}"
            f'</div><dl class="meta">{meta}</dl></header>')


# ----------------------------------------------------------------- summary


def _per_check_table(results: Results) -> str:
    """One row per check: counts per status, total time, the models it covered."""
    rows = []
    for summary in check_summaries(results):
        counts, models = summary.counts, summary.models
        rows.append([esc(summary.check)] + [
            (f'<span class="st st-{s}">{counts[s]}</span>' if counts[s] and s != "pass"
             else str(counts[s])) for s in STATUSES] + [
            esc(fmt_duration(summary.duration_s)),
            esc(", ".join(models) if len(models) <= 6 else f"{len(models)} models")])
    return table(["check", *STATUSES, "time", "models"], rows, numeric=[1, 2, 3, 4, 5])


def _task_link(task: int, many: bool) -> str:
    return f'<a href="#task-{task}">{task}</a>' if many else esc(task)


def _failures_table(results: Results, many: bool) -> str:
    bad = results.failures
    rows = [[_task_link(c.task, many), esc(c.check), esc(c.protocol or ""),
             esc(c.model or ""), badge(c.status), f'<span class="msg">{esc(c.message)}</span>']
            for c in bad]
    for t in results.tasks:
        if t.problems:  # a crash, an interruption, checks that never ran, damaged files
            rows.append([_task_link(t.task, many), "job", "", "", badge("error"),
                         f'<span class="msg">{esc("; ".join(t.problems))}</span>'])
    for task in results.missing_tasks:
        rows.append([esc(task), "job", "", "", badge("error"),
                     "no results: the task did not run or was not collected"])
    if not rows:
        return ""
    return ("<h3>What failed</h3>" + table(["task", "check", "protocol", "model", "status",
                                            "message"], rows, cls="checks",
                                           nowrap=[0, 1, 2, 3, 4]))


def _summary_section(src: RunSource) -> str:
    res = src.results
    many = len(res.tasks) > 1 or bool(res.missing_tasks)
    body = count_boxes(res)
    if res.checks:
        body += _per_check_table(res)
    body += _failures_table(res, many)
    return f'<section class="card" id="summary"><h2>Summary</h2>{body}</section>'


# -------------------------------------------------------------------- load


def _load_table(points: Sequence[LoadPoint], task_column: bool = False) -> str:
    """The load points: throughput, latency percentiles, errors, stability, server."""
    headers = (["task"] if task_column else []) + [
        "model", "protocol", "mode", "load", "req/s", *[f"{p} ms" for p in PERCENTILES],
        "errors", "stable", "server queue ms", "server compute ms", "batching"]
    rows = []
    for p in points:
        errors = esc(p.errors)
        if p.errors_by_kind and p.errors:
            kinds = ", ".join(f"{k}: {v}" for k, v in p.errors_by_kind.items() if v)
            errors = f'<span class="worse" title="{esc(kinds)}">{p.errors}</span>'
        rows.append(([_task_link(p.task, True)] if task_column else []) + [
            esc(p.model), esc(p.protocol or ""), esc(p.mode.replace("_", " ")),
            fmt_level(p.load), fmt_num(p.throughput_rps),
            *[fmt_num(p.latency(n)) for n in PERCENTILES], errors,
            "–" if p.stable is None else ("yes" if p.stable else
                                           '<span class="worse">no</span>'),
            fmt_num(p.server.get("queue_avg_ms")), fmt_num(p.server.get("compute_infer_avg_ms")),
            fmt_num(p.server.get("batching_ratio"))])
    first = 1 if task_column else 0
    return table(headers, rows, numeric=list(range(first + 3, len(headers))),
                 nowrap=list(range(first + 3)))


def _load_section(src: RunSource, figures: bool) -> str:
    points = src.results.load_points()
    if not points:
        return ""
    many = len({p.task for p in points}) > 1
    body = ""
    if figures:
        labels = task_scopes(src.results.tasks)
        body += figure_img(plots.load_figure(points, labels), "latency percentiles and "
                           "throughput against load, per model")
        body += ("<p class=note>Hollow markers: points that never met the stability rule; "
                 "red crosses: points with errors. Open loop (request rate): the dotted "
                 "diagonal is the offered rate; latency is measured from each request's "
                 "intended send time.</p>")
    body += _load_table(points, task_column=many)
    body += stream_block(stream_points(src.results), figures,
                         task_scopes(src.results.tasks), many)
    return f'<section class="card" id="load"><h2>Load</h2>{body}</section>'


# --------------------------------------------------------------- per model


def _models_table(results: Results) -> str:
    times = [t for t in model_times(results) if t.has_figures]
    if not times:
        return ""
    protocols = sorted({p for t in times for p in t.infer_ms})
    show_scope = any(t.scope for t in times)
    headers = (["sweep point"] if show_scope else []) + ["model"] + [
        f"infer {p}" for p in protocols] + [label for _, label in SERVER_TIMES] + [
        "request", "failures", "batching"]

    def cell(figures: dict[str, float], name: str) -> str:
        value = figures.get(name)
        return "–" if value is None else fmt_num(value, count=name in COUNT_METRICS)

    rows = []
    for t in times:
        rows.append(([esc(t.scope)] if show_scope else []) + [esc(t.model)] + [
            cell(t.infer_ms, p) for p in protocols] + [
            cell(t.server, label) for _, label in SERVER_TIMES] + [
            cell(t.server, "request"), cell(t.server, "failures"),
            cell(t.server, "batching ratio")])
    first = 2 if show_scope else 1
    return table(headers, rows, numeric=list(range(first, len(headers))),
                 nowrap=[first - 1])


def _models_section(src: RunSource, figures: bool) -> str:
    tab = _models_table(src.results)
    if not tab:
        return ""
    body = ""
    if figures:
        body += figure_img(plots.models_figure(model_groups([src.results]), [""]),
                           "infer latency and server-side time per request, per model")
    body += ("<p class=note>All times in ms. infer: the latency of the one request the "
             "infer check sent (the first request to a model may include its warm-up). "
             "queue, compute and request: Triton's own averages per request over the run "
             "(the statistics API difference); failures: requests the server failed; "
             "batching: inferences per model execution.</p>")
    return (f'<section class="card" id="models"><h2>Per model</h2>{body}{tab}</section>')


# ---------------------------------------------------------------- timeline


def _timeline_section(src: RunSource, figures: bool) -> str:
    if not figures or not src.results.tasks:
        return ""
    img = figure_img(plots.timeline_figure(
        [("", timeline(src.results, plots.MAX_TIMELINE_TASKS))]), "timeline of the checks")
    return ('<section class="card" id="timeline"><h2>Timeline</h2>'
            "<p class=note>Each row is a task: the grey bar spans the probe's run, the "
            "coloured blocks are its checks in the order they ran (results record "
            "durations, not start times, so blocks are laid end to end).</p>"
            f"{img}</section>")


# ------------------------------------------------------------------- tasks


def _state_text(t: TaskResults) -> str:
    parts = []
    if t.state is not None and t.state.get("phase"):
        parts.append(str(t.state["phase"]))
    if t.exit_code is not None:
        parts.append(f"exit {t.exit_code}")
    if t.interrupted:
        parts.append("interrupted")
    return ", ".join(parts) or "–"


def _task_matrix(results: Results) -> str:
    """Tasks by checks: each cell the worst status of that check in that task."""
    names = results.check_names
    headers = ["task", "sweep point", "node", "job", "state", "time", *map(esc, names)]
    rows = []
    entries: list[tuple[int, TaskResults | None]] = [(t.task, t) for t in results.tasks]
    entries += [(n, None) for n in results.missing_tasks]
    for number, t in sorted(entries, key=lambda e: e[0]):
        if t is None:
            rows.append([esc(number), "", "", "", badge("missing"), "–"]
                        + ["" for _ in names])
            continue
        cells = []
        for name in names:
            done = task_check(t, name)
            if done is None:
                cells.append('<span class="same">–</span>')
                continue
            cells.append(f'<span class="st st-{done.status}" title="{done.ok} of {done.total} '
                         f'ok">{done.ok}/{done.total}</span>')
        seconds = task_seconds(t)
        rows.append([f'<a href="#task-{t.task}">{t.task}</a>', esc(t.point_label),
                     esc(t.hostname), esc(t.job_id),
                     (badge("pass") if t.ok else badge("fail")) + " " + esc(_state_text(t)),
                     esc(fmt_duration(seconds)) if seconds is not None else "–", *cells])
    return table(headers, rows, numeric=[5], nowrap=[0, 2, 3, 4, 5])


def _task_block(t: TaskResults, figures: bool) -> str:
    run = t.run_info
    facts = [("sweep point", t.point_label or "–"), ("node", run.get("hostname") or "–"),
             ("job", t.job_id or "–"), ("state", _state_text(t)),
             ("started", t.started_at or "–")]
    meta = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    body = f'<dl class="meta">{meta}</dl>'
    points = load_points(t.checks)
    if points and figures:
        body += figure_img(plots.load_figure(points), f"load results of task {t.task}")
    if points:
        body += _load_table(points)
    if t.problems:
        body += "".join(f"<p class=note>{esc(p)}</p>" for p in t.problems)
    if t.checks:
        body += checks_table(t.checks)
    head = (f'<div class="task-head"><h3>Task {t.task}</h3>'
            f"{badge('pass' if t.ok else 'fail')}</div>")
    return f'<section class="card" id="task-{t.task}">{head}{body}</section>'


def _tasks_section(src: RunSource, figures: bool) -> str:
    res = src.results
    with_load = {p.task for p in res.load_points()}
    per_task = figures and len(with_load) <= MAX_TASK_FIGURES
    blocks = "".join(_task_block(t, per_task) for t in res.tasks)
    note = ""
    if figures and not per_task:
        note = (f" {len(with_load)} tasks have load results: more than {MAX_TASK_FIGURES}, "
                "so their figures are only in the Load section, not per task.")
    return (f'<section class="card" id="tasks"><h2>Tasks</h2>'
            "<p class=note>One row per task (sweep point); a cell shows how many results "
            f"of that check were ok, coloured by the worst of them.{note}</p>"
            f"{_task_matrix(res)}</section>{blocks}")


def _checks_section(checks: Sequence[CheckResult]) -> str:
    return (f'<section class="card" id="checks"><h2>Results</h2>{checks_table(checks)}'
            "</section>")


# ------------------------------------------------------------------- page


def html_report(source: RunInput, *, title: str | None = None) -> str:
    """The report page as text (see :func:`write_html_report`).

    Example::

        >>> text = html_report(run.results())
        >>> text.startswith("<!DOCTYPE html>")
        True
    """
    src = resolve_source(source)
    res = src.results
    figures = matplotlib_available()
    title = title or "hpctriton report"
    many = len(res.tasks) > 1 or bool(res.missing_tasks)
    parts = [capacity_section(capacities(res), figures, many), _summary_section(src),
             _load_section(src, figures), _models_section(src, figures),
             _timeline_section(src, figures)]
    if many:
        parts.append(_tasks_section(src, figures))
    elif res.checks:
        parts.append(_checks_section(res.checks))
    toc_names = {"capacity": "Capacity", "summary": "Summary", "load": "Load",
                 "models": "Per model", "timeline": "Timeline", "tasks": "Tasks",
                 "checks": "Results"}
    toc = "".join(f'<a href="#{k}">{v}</a>' for k, v in toc_names.items()
                  if any(f'id="{k}"' in p for p in parts))
    note = ("" if figures else "<p class=note>Figures left out: matplotlib is not "
            "installed here (<code>pip install matplotlib</code>).</p>")
    body = (_header(src, title) + f'<nav class="toc">{toc}</nav>' + note
            + "".join(p for p in parts if p))
    return page(f"{title}: {res.run_id or src.label}", body)


def write_html_report(source: RunInput, path: str | Path, *,
                      title: str | None = None) -> Path:
    """Write one self-contained HTML report of a run (atomically) and return its path.

    ``source``: :class:`~hpctriton.results.model.Results`, a ``Run``, or the path of a run
    folder, a results folder or a ``results.json``. A run (or its folder) adds run.json's
    facts: backend, jobs, every task's sweep point, tasks that left no results.

    Example::

        >>> write_html_report(open_run(), "report.html")
        PosixPath('report.html')
    """
    out = Path(path)
    write_text(out, html_report(source, title=title))
    return out
