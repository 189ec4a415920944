"""Several runs side by side: the same figures, and their differences from the first.

Seed 004 compares one model served standalone, by plain Triton and by Triton with
priority scheduling; here that is three runs of the same config against three servers::

    >>> cmp = compare_runs([open_run("standalone"), open_run("triton"),
    ...                     open_run("priority")], labels=["standalone", "triton", "prio"])
    >>> cmp.get("p99", model="bert-high", level="concurrency 8").diff(2)
    -41.5
    >>> cmp.write_html("compare.html")

The first run is the baseline: every difference is *run minus baseline* (so a
positive p99 difference means the run is slower). Numbers are matched across runs by
what they are about (:attr:`~hpctriton.results.measures.Measure.key`): the sweep point,
model, protocol, load level and metric; a number one run lacks shows as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctriton.report.htmlkit import (
    ReportInput,
    RunSource,
    badge,
    esc,
    figure_img,
    fmt_num,
    page,
    resolve_source,
    table,
    verdict,
    write_text,
)
from hpctriton.results.measures import COUNT_METRICS, Measure, measures, task_scopes
from hpctriton.results.model import Results

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: A relative change smaller than this (percent) counts as no change.
SAME_PCT = 1.0
#: Load metrics shown by ``Comparison.table()`` unless ``all_metrics=True``.
TABLE_LOAD_METRICS = ("throughput", "p50", "p99", "errors")
SECTION_ORDER = ("load", "infer", "keepalive", "server")


@dataclass(frozen=True)
class MetricRow:
    """One number across runs (``values[i]`` of run ``i``; None where it is missing)."""

    section: str
    scope: str
    model: str | None
    protocol: str | None
    level: str | None
    metric: str
    unit: str
    better: str | None
    values: tuple[float | None, ...]

    @property
    def _head(self) -> str:
        return " ".join(x for x in (self.model, self.protocol) if x) or "server"

    @property
    def item(self) -> str:
        """``simple grpc [server.host=gpu01]``: what the number is about, but the level."""
        return f"{self._head} [{self.scope}]" if self.scope else self._head

    @property
    def subject(self) -> str:
        """``simple grpc, concurrency 4 [server.host=gpu01]``."""
        text = ", ".join([self._head] + ([self.level] if self.level else []))
        return f"{text} [{self.scope}]" if self.scope else text

    def diff(self, i: int) -> float | None:
        """Run ``i`` minus the baseline (run 0); None when either is missing.

        Example::

            >>> row.values, row.diff(1)
            ((3.1, 4.4), 1.3)
        """
        a, b = self.values[0], self.values[i]
        return None if a is None or b is None else b - a

    def relative(self, i: int) -> float | None:
        """The difference in percent of the baseline (None from a zero baseline)."""
        d, a = self.diff(i), self.values[0]
        return None if d is None or not a else d / abs(a) * 100.0

    def judgement(self, i: int) -> str | None:
        """``"better"``, ``"worse"``, ``"same"`` (within 1 %) or None (no direction)."""
        d, rel = self.diff(i), self.relative(i)
        if d is None:
            return None
        if d == 0 or (rel is not None and abs(rel) < SAME_PCT):
            return "same"
        if self.better is None:
            return None
        return "better" if (d < 0) == (self.better == "lower") else "worse"


@dataclass(frozen=True)
class StatusRow:
    """One check result across runs: its status in each (None where absent)."""

    scope: str
    check: str
    protocol: str | None
    model: str | None
    statuses: tuple[str | None, ...]

    @property
    def name(self) -> str:
        text = f"{self.check}[{self.protocol or '-'}]" + (f" {self.model}" if self.model else "")
        return f"{text} [{self.scope}]" if self.scope else text

    @property
    def changed(self) -> bool:
        return len(set(self.statuses)) > 1


class Comparison:
    """Runs side by side: :meth:`table` for a terminal, :meth:`to_json`,
    :meth:`write_html`. Build it with :func:`compare_runs`."""

    def __init__(self, sources: Sequence[RunSource], metrics: list[MetricRow],
                 statuses: list[StatusRow]) -> None:
        self.sources = list(sources)
        self.metrics = metrics
        self.statuses = statuses

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.sources]

    @property
    def results(self) -> list[Results]:
        return [s.results for s in self.sources]

    @property
    def baseline(self) -> str:
        return self.labels[0]

    def __repr__(self) -> str:
        return (f"Comparison({self.labels!r}, {len(self.metrics)} numbers, "
                f"{sum(r.changed for r in self.statuses)} status changes)")

    def get(self, metric: str, *, model: str | None = None, protocol: str | None = None,
            level: str | None = None, section: str | None = None,
            scope: str | None = None) -> MetricRow:
        """The one row matching the arguments given (KeyError: none or several).

        Example::

            >>> cmp.get("p99", model="simple", protocol="grpc", level="concurrency 4").diff(1)
            1.25
        """
        found = [r for r in self.metrics if r.metric == metric
                 and (model is None or r.model == model)
                 and (protocol is None or r.protocol == protocol)
                 and (level is None or r.level == level)
                 and (section is None or r.section == section)
                 and (scope is None or r.scope == scope)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} rows match {metric!r} (model={model!r}, "
                           f"protocol={protocol!r}, level={level!r}, section={section!r}, "
                           f"scope={scope!r}); narrow it down")
        return found[0]

    # --------------------------------------------------------- terminal

    def runs_table(self) -> Table:
        """One row per run: label, run id, verdict and counts."""
        from rich.table import Table

        tab = Table(title="runs compared (the first is the baseline)")
        for name in ("run", "run id", "verdict", "tasks", "pass", "fail", "error", "skip"):
            tab.add_column(name, justify="right" if name in ("tasks", "pass", "fail",
                                                           "error", "skip") else "left")
        for s in self.sources:
            text, _ = verdict(s.results)
            style = {"OK": "green", "FAILED": "red"}.get(text, "yellow")
            counts = s.results.counts()
            tab.add_row(s.label, s.results.run_id, f"[{style}]{text}[/{style}]",
                        str(len(s.results.tasks)), *(str(counts[k]) for k in
                                                     ("pass", "fail", "error", "skip")))
        return tab

    def shown(self, all_metrics: bool = False) -> list[MetricRow]:
        """The rows tables show: all of them, or for load points only throughput, p50,
        p99 and errors."""
        return [r for r in self.metrics if all_metrics or r.section != "load"
                or r.metric in TABLE_LOAD_METRICS]

    def table(self, *, all_metrics: bool = False) -> Table:
        """The numbers as a rich table: one column per run, then the difference of each
        run from the baseline, green when better and red when worse. Load rows show
        throughput, p50, p99 and errors unless ``all_metrics``.

        Example::

            >>> from rich.console import Console
            >>> Console().print(cmp.table())
        """
        from rich.table import Table

        tab = Table(title=f"differences from {self.baseline}")
        tab.add_column("what", overflow="fold")
        tab.add_column("at", no_wrap=True)
        tab.add_column("metric", no_wrap=True)
        for label in self.labels:
            tab.add_column(label, justify="right", no_wrap=True)
        for label in self.labels[1:]:
            tab.add_column(f"Δ {label}", justify="right", no_wrap=True)
        style = {"better": "green", "worse": "red", "same": "dim"}
        rows = self.shown(all_metrics)
        for k, row in enumerate(rows):
            group = (row.section, row.scope, row.model, row.protocol, row.level)
            following = rows[k + 1] if k + 1 < len(rows) else None
            last = following is None or group != (following.section, following.scope,
                                                  following.model, following.protocol,
                                                  following.level)
            previous = rows[k - 1] if k else None
            first = previous is None or group != (previous.section, previous.scope,
                                                  previous.model, previous.protocol,
                                                  previous.level)
            cells = [_value_text(v, row) for v in row.values]
            deltas = []
            for i in range(1, len(self.sources)):
                text = _diff_text(row, i)
                st = style.get(row.judgement(i) or "", "")
                deltas.append(f"[{st}]{text}[/{st}]" if st else text)
            what = f"{row.section}: {row.item}" if first else ""
            tab.add_row(what, (row.level or "") if first else "", row.metric, *cells,
                        *deltas, end_section=last)
        return tab

    def status_table(self) -> Table | None:
        """Check results whose status differs between runs (None when none does)."""
        from rich.table import Table

        changed = [r for r in self.statuses if r.changed]
        if not changed:
            return None
        tab = Table(title="check results that differ")
        tab.add_column("result")
        colours = {"pass": "green", "fail": "red", "error": "red bold", "skip": "yellow"}
        for label in self.labels:
            tab.add_column(label)
        for r in changed:
            tab.add_row(r.name, *(f"[{colours.get(s or '', 'dim')}]{s or 'absent'}"
                                  f"[/{colours.get(s or '', 'dim')}]" for s in r.statuses))
        return tab

    def print(self, console: Console | None = None, *, all_metrics: bool = False) -> None:
        """Print the runs, the numbers with their differences, and changed statuses.

        Example::

            >>> compare_runs(["runs/a", "runs/b"]).print()
        """
        from rich.console import Console

        console = console or Console()
        console.print(self.runs_table())
        if self.metrics:
            console.print(self.table(all_metrics=all_metrics))
        else:
            console.print("no numbers in common to compare")
        changed = self.status_table()
        same = sum(1 for r in self.statuses if not r.changed)
        if changed is not None:
            console.print(changed)
        console.print(f"{same} check result(s) with the same status in every run")

    # ------------------------------------------------------------ json

    def to_json(self) -> dict[str, Any]:
        """Everything as plain data; differences keyed by run label (baseline first).

        Example::

            >>> cmp.to_json()["metrics"][0]["diff"]
            {'triton': 1.3}
        """
        labels = self.labels
        runs = []
        for s in self.sources:
            runs.append({"label": s.label, "run_id": s.results.run_id, "ok": s.results.ok,
                         "counts": s.results.counts(), "tasks": len(s.results.tasks),
                         "missing_tasks": s.results.missing_tasks,
                         "path": str(s.path) if s.path else None})
        metrics = []
        for r in self.metrics:
            metrics.append({
                "section": r.section, "scope": r.scope, "model": r.model,
                "protocol": r.protocol, "level": r.level, "metric": r.metric,
                "unit": r.unit, "better": r.better,
                "values": dict(zip(labels, r.values, strict=True)),
                "diff": {labels[i]: r.diff(i) for i in range(1, len(labels))},
                "relative_pct": {labels[i]: r.relative(i) for i in range(1, len(labels))},
                "judgement": {labels[i]: r.judgement(i) for i in range(1, len(labels))}})
        statuses = [{"scope": r.scope, "check": r.check, "protocol": r.protocol,
                     "model": r.model, "statuses": dict(zip(labels, r.statuses, strict=True)),
                     "changed": r.changed} for r in self.statuses]
        return {"baseline": self.baseline, "runs": runs, "metrics": metrics,
                "statuses": statuses}

    # ------------------------------------------------------------ html

    def html(self, *, title: str | None = None) -> str:
        """The comparison page as text (see :meth:`write_html`)."""
        from hpctriton.report.html import matplotlib_available

        title = title or "hpctriton comparison"
        figures = matplotlib_available()
        parts = [self._html_runs(title)]
        if figures:
            parts.append(self._html_figures())
        else:
            parts.append("<p class=note>Figures left out: matplotlib is not installed "
                         "here (<code>pip install matplotlib</code>).</p>")
        parts.append(self._html_metrics())
        parts.append(self._html_statuses())
        return page(f"{title}: {' vs '.join(self.labels)}", "".join(parts))

    def write_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write the comparison as one self-contained HTML file: the runs, their figures
        side by side (load curves on shared axes with the change from the baseline,
        per-model times, timelines), every number with its difference, and the check
        results whose status changed.

        Example::

            >>> compare_runs(["runs/a", "runs/b"]).write_html("compare.html")
            PosixPath('compare.html')
        """
        out = Path(path)
        write_text(out, self.html(title=title))
        return out

    def _html_runs(self, title: str) -> str:
        rows = []
        for i, s in enumerate(self.sources):
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
                f"{esc(' vs '.join(self.labels))}</div></header>"
                '<nav class="toc"><a href="#runs">Runs</a><a href="#figures">Figures</a>'
                '<a href="#numbers">Numbers</a><a href="#statuses">Check results</a></nav>'
                f'<section class="card" id="runs"><h2>Runs</h2>{tab}'
                "<p class=note>Differences are each run minus the baseline (the first run); "
                "green is better, red worse, grey within 1 %.</p></section>")

    def _html_figures(self) -> str:
        from hpctriton.report import plots

        runs = [(s.label, s.results) for s in self.sources]
        body = ""
        if any(r.load_points() for r in self.results):
            body += "<h3>Load</h3>" + figure_img(plots.compare_load_figure(runs),
                                                 "load curves of every run")
        if any(m.section in ("infer", "server") for r in self.results for m in measures(r)):
            body += "<h3>Per model</h3>" + figure_img(plots.models_figure(runs),
                                                      "per-model times of every run")
        if any(r.tasks for r in self.results):
            body += "<h3>Timelines</h3>" + figure_img(plots.timeline_figure(runs),
                                                      "timelines of every run")
        return f'<section class="card" id="figures"><h2>Figures</h2>{body}</section>'

    def _metrics_table(self, rows_in: list[MetricRow]) -> str:
        labels = self.labels
        headers = ["what", "at", "metric", *map(esc, labels),
                   *(f"Δ {esc(label)}" for label in labels[1:])]
        rows: list[list[str]] = []
        classes: list[str] = []
        previous: tuple[Any, ...] | None = None
        for r in rows_in:
            group = (r.section, r.scope, r.model, r.protocol, r.level)
            first = group != previous
            previous = group
            cells = [_value_text(v, r) for v in r.values]
            deltas = []
            for i in range(1, len(labels)):
                cls = r.judgement(i) or ""
                deltas.append(f'<span class="{cls}">{esc(_diff_text(r, i))}</span>')
            what = f"<b>{esc(r.section)}</b>: {esc(r.item)}" if first else ""
            classes.append("group-start" if first and rows else "")
            rows.append([what, esc(r.level or "") if first else "", esc(r.metric), *cells,
                         *deltas])
        return table(headers, rows, numeric=list(range(3, len(headers))), nowrap=[1, 2],
                     row_classes=classes)

    def _html_metrics(self) -> str:
        if not self.metrics:
            return ('<section class="card" id="numbers"><h2>Numbers</h2>'
                    "<p class=note>The runs have no numbers in common.</p></section>")
        shown = self.shown()
        body = self._metrics_table(shown)
        if len(shown) < len(self.metrics):
            body += (f"<details><summary>all {len(self.metrics)} numbers (every latency "
                     "percentile and the server's figures per load point)</summary>"
                     f"{self._metrics_table(self.metrics)}</details>")
        return f'<section class="card" id="numbers"><h2>Numbers</h2>{body}</section>'

    def _html_statuses(self) -> str:
        changed = [r for r in self.statuses if r.changed]
        same = [r for r in self.statuses if not r.changed]

        def rows(items: list[StatusRow]) -> list[list[str]]:
            return [[esc(r.name), *(badge(s) if s else '<span class="same">absent</span>'
                                    for s in r.statuses)] for r in items]

        headers = ["result", *map(esc, self.labels)]
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


def _signed(value: float, count: bool = False) -> str:
    if count:
        return f"{round(value):+,}"
    if abs(value) >= 100:
        return f"{value:+,.0f}"
    return f"{value:+.1f}" if abs(value) >= 10 else f"{value:+.2f}"


def _value_text(value: float | None, row: MetricRow) -> str:
    if value is None:
        return "–"
    return fmt_num(value, count=row.metric in COUNT_METRICS) + (
        f" {row.unit}" if row.unit else "")


def _diff_text(row: MetricRow, i: int) -> str:
    d, rel = row.diff(i), row.relative(i)
    if d is None:
        return "–"
    text = _signed(d, row.metric in COUNT_METRICS)
    if row.unit:
        text += f" {row.unit}"
    if rel is not None:
        text += f" ({rel:+.1f}%)"
    return text


def _unique_labels(sources: Sequence[RunSource], labels: Sequence[str] | None) -> list[str]:
    names = list(labels) if labels is not None else [s.label for s in sources]
    if len(names) != len(sources):
        raise ValueError(f"{len(names)} labels for {len(sources)} runs")
    out: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate in out:
            candidate, n = f"{name} #{n}", n + 1
        out.append(candidate)
    return out


def compare_runs(runs: Sequence[ReportInput], labels: Sequence[str] | None = None
                 ) -> Comparison:
    """Compare runs: the first is the baseline, every difference is *run − baseline*.

    ``runs``: each :class:`~hpctriton.results.model.Results`, a ``Run``, or the path of a run
    folder, results folder or ``results.json``. ``labels``: names for the tables and
    figures (default: the run ids).

    Example::

        >>> cmp = compare_runs([open_run("20261121-2240"), open_run("20261122-0910")],
        ...                    labels=["plain", "priority"])
        >>> cmp.get("p99", model="simple", level="concurrency 8").diff(1)  # B - A, ms
        -3.2
        >>> cmp.print(); cmp.write_html("compare.html")
    """
    if len(runs) < 2:
        raise ValueError("compare_runs needs at least two runs")
    sources = [resolve_source(r) for r in runs]
    for source, label in zip(sources, _unique_labels(sources, labels), strict=True):
        source.label = label
    n = len(sources)
    # numbers
    table_: dict[tuple[str, ...], list[Measure | None]] = {}
    for i, s in enumerate(sources):
        for m in measures(s.results):
            slot = table_.setdefault(m.key, [None] * n)
            if slot[i] is None:
                slot[i] = m
    section_rank = {name: k for k, name in enumerate(SECTION_ORDER)}
    arrival = {k: i for i, k in enumerate(table_)}
    keys = sorted(table_, key=lambda k: (section_rank.get(k[0], 99), arrival[k]))
    metrics = []
    for key in keys:
        slot = table_[key]
        first = next(m for m in slot if m is not None)
        metrics.append(MetricRow(first.section, first.scope, first.model, first.protocol,
                                 first.level, first.metric, first.unit, first.better,
                                 tuple(m.value if m is not None else None for m in slot)))
    # statuses
    status: dict[tuple[str, str, str, str, int], list[str | None]] = {}
    for i, s in enumerate(sources):
        scopes = task_scopes(s.results.tasks)
        seen: dict[tuple[str, str, str, str], int] = {}
        for c in s.results.checks:
            base = (scopes.get(c.task, ""), c.check, c.protocol or "", c.model or "")
            seen[base] = seen.get(base, 0) + 1
            slot_s = status.setdefault((*base, seen[base]), [None] * n)
            slot_s[i] = c.status
    statuses = [StatusRow(k[0], k[1], k[2] or None, k[3] or None, tuple(v))
                for k, v in status.items()]
    return Comparison(sources, metrics, statuses)
