"""Several runs side by side: the same figures, and their differences from the first.

Seed 004 compares one model served standalone, by plain Triton and by Triton with
priority scheduling; here that is three runs of the same config against three servers::

    >>> cmp = compare_runs([open_run("standalone"), open_run("triton"),
    ...                     open_run("priority")], labels=["standalone", "triton", "prio"])
    >>> cmp.get("p99", model="bert-high", level="concurrency 8").diff(2)
    -41.5

The first run is the baseline: every difference is *run minus baseline* (so a
positive p99 difference means the run is slower). Numbers are matched across runs by
what they are about (:attr:`~hpctriton.results.measures.Measure.key`): the sweep point,
model, protocol, load level and metric; a number one run lacks shows as missing.

A :class:`Comparison` is data only; ``hpctriton.report`` prints it, writes it as HTML
and as JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hpctriton.results.load import LoadPoint
from hpctriton.results.measures import Measure, measures, task_scopes
from hpctriton.results.model import Results
from hpctriton.results.source import RunInput, RunSource, resolve_source
from hpctriton.results.streaming import stream_measures

#: A relative change smaller than this (percent) counts as no change.
SAME_PCT = 1.0
SECTION_ORDER = ("capacity", "load", "infer", "keepalive", "server")


def relative_change(value: float | None, base: float | None) -> float | None:
    """``value`` against ``base`` in percent (None when either is missing or base is 0).

    Example::

        >>> relative_change(11.4, 19.0)
        -40.0
    """
    if value is None or base is None or base == 0:
        return None
    return (value - base) / base * 100.0


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

    @property
    def group(self) -> tuple[str, str, str | None, str | None, str | None]:
        """What consecutive rows of one subject share (tables show it once)."""
        return (self.section, self.scope, self.model, self.protocol, self.level)

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


@dataclass(frozen=True)
class Comparison:
    """Runs side by side, the first the baseline. Build it with :func:`compare_runs`."""

    sources: list[RunSource]
    metrics: list[MetricRow]
    statuses: list[StatusRow]

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.sources]

    @property
    def results(self) -> list[Results]:
        return [s.results for s in self.sources]

    @property
    def baseline(self) -> str:
        return self.labels[0]

    @property
    def runs(self) -> list[tuple[str, Results]]:
        """``(label, results)`` of every run, as the figures take them."""
        return [(s.label, s.results) for s in self.sources]

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


def _metric_rows(results: Sequence[Results]) -> list[MetricRow]:
    """Every measure of any run, matched by key; sections in ``SECTION_ORDER``."""
    n = len(results)
    slots: dict[tuple[str, ...], list[Measure | None]] = {}
    for i, res in enumerate(results):
        for m in measures(res) + stream_measures(res):
            slot = slots.setdefault(m.key, [None] * n)
            if slot[i] is None:
                slot[i] = m
    section_rank = {name: k for k, name in enumerate(SECTION_ORDER)}
    arrival = {k: i for i, k in enumerate(slots)}
    rows = []
    for key in sorted(slots, key=lambda k: (section_rank.get(k[0], 99), arrival[k])):
        slot = slots[key]
        first = next(m for m in slot if m is not None)
        rows.append(MetricRow(first.section, first.scope, first.model, first.protocol,
                              first.level, first.metric, first.unit, first.better,
                              tuple(m.value if m is not None else None for m in slot)))
    return rows


def _status_rows(results: Sequence[Results]) -> list[StatusRow]:
    """Every check result of any run, matched by scope, check, protocol, model and how
    many such results came before it."""
    n = len(results)
    status: dict[tuple[str, str, str, str, int], list[str | None]] = {}
    for i, res in enumerate(results):
        scopes = task_scopes(res.tasks)
        seen: dict[tuple[str, str, str, str], int] = {}
        for c in res.checks:
            base = (scopes.get(c.task, ""), c.check, c.protocol or "", c.model or "")
            seen[base] = seen.get(base, 0) + 1
            status.setdefault((*base, seen[base]), [None] * n)[i] = c.status
    return [StatusRow(k[0], k[1], k[2] or None, k[3] or None, tuple(v))
            for k, v in status.items()]


def compare_runs(runs: Sequence[RunInput], labels: Sequence[str] | None = None
                 ) -> Comparison:
    """Compare runs: the first is the baseline, every difference is *run − baseline*.

    ``runs``: each :class:`~hpctriton.results.model.Results`, a ``Run``, or the path of a
    run folder, results folder or ``results.json``. ``labels``: names for the tables and
    figures (default: the run ids).

    Example::

        >>> cmp = compare_runs([open_run("20261121-2240"), open_run("20261122-0910")],
        ...                    labels=["plain", "priority"])
        >>> cmp.get("p99", model="simple", level="concurrency 8").diff(1)  # B - A, ms
        -3.2
    """
    if len(runs) < 2:
        raise ValueError("compare_runs needs at least two runs")
    resolved = [resolve_source(r) for r in runs]
    sources = [dataclasses.replace(source, label=label)
               for source, label in zip(resolved, _unique_labels(resolved, labels), strict=True)]
    results = [s.results for s in sources]
    return Comparison(sources, _metric_rows(results), _status_rows(results))


# ------------------------------------------------------------------ load curves


@dataclass(frozen=True)
class LoadCurves:
    """One load series (sweep point, model, protocol, mode) in every run."""

    scope: str
    series: tuple[str, str | None, str]
    #: Per run, its points sorted by load (empty where the run lacks the series).
    points: list[list[LoadPoint]]

    def change(self, run: int, figure: Callable[[LoadPoint], float | None]
               ) -> list[tuple[float, float]]:
        """``(load, percent)``: a run's figure against the baseline's, at the load
        levels both measured (none for the baseline itself).

        Example::

            >>> curves.change(1, lambda p: p.latency("p99"))
            [(1.0, -40.0), (2.0, -38.5)]
        """
        base = {p.load: p for p in self.points[0]}
        if run == 0 or not base:
            return []
        pairs = [(p.load, relative_change(figure(p), figure(base[p.load])))
                 for p in self.points[run] if p.load in base]
        return [(x, y) for x, y in pairs if y is not None]


def compare_load_curves(runs: Sequence[Results]) -> list[LoadCurves]:
    """Every load series of any run, with each run's points of it.

    Example::

        >>> [c.series for c in compare_load_curves([res_a, res_b])]
        [('simple', 'grpc', 'concurrency')]
    """
    keyed: list[dict[tuple[str, str, str | None, str], list[LoadPoint]]] = []
    order: dict[tuple[str, str, str | None, str], None] = {}
    for res in runs:
        scopes = task_scopes(res.tasks)
        mine: dict[tuple[str, str, str | None, str], list[LoadPoint]] = {}
        for p in res.load_points():
            key = (scopes.get(p.task, ""), *p.series)
            mine.setdefault(key, []).append(p)
            order.setdefault(key, None)
        keyed.append(mine)
    return [LoadCurves(key[0], key[1:],
                       [sorted(mine.get(key, []), key=lambda p: p.load) for mine in keyed])
            for key in order]
