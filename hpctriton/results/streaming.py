"""Streaming figures out of results: time to first token, inter-token latency and token
throughput of decoupled (LLM-serving) models under load, for tables, plots and
comparisons.

The probe's load entries of a decoupled model carry, beside the usual figures, the
streaming contract of ``hpctriton_probe.schema.StreamFigures`` (docs/streaming.md, "The
result fields")::

    "details": {"mode": "concurrency", "concurrency": 4, ...,
                "ttft_ms": {"p50": 21.7, "p90": 25.0, "p95": 25.0, "p99": 25.0,
                            "max": 25.0, "mean": 22.4},
                "itl_ms": {...}, "e2e_ms": {...},
                "tokens_per_request": {"mean": 16.0, "p50": 16.0, "max": 16},
                "output_tokens_per_s": 144.0, "requests_per_s": 9.0,
                "token_count": "elements", "token_output": "text_output",
                "slo": {"ttft_ms": 40.0}, "goodput_per_s": 9.0, "goodput_share": 1.0}

:func:`stream_points` turns them into :class:`StreamPoint` objects (one per model and
load level; entries without these figures are left out), and
:func:`compare_stream_curves` lines up several runs' points of one series. Reports
only draw what these return (``hpctriton.report.stream_plots``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpctriton.results.measures import Measure, level_label, task_scopes

if TYPE_CHECKING:
    from hpctriton.results.model import CheckResult, Results

log = logging.getLogger("hpctriton.results.streaming")

#: Percentiles of TTFT and ITL drawn and tabulated, in this order.
STREAM_PERCENTILES: tuple[str, ...] = ("p50", "p90", "p99")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _ms_map(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {k: float(v) for k, v in value.items() if _num(v) is not None}


@dataclass(frozen=True)
class StreamPoint:
    """One load level of one decoupled model: its streaming figures.

    ``mode`` and ``load`` as in :class:`~hpctriton.results.load.LoadPoint`
    (concurrency, or the intended requests per second of an open loop).
    """

    task: int
    model: str
    protocol: str | None
    mode: str
    load: float
    ttft_ms: dict[str, float] = field(default_factory=dict)
    itl_ms: dict[str, float] = field(default_factory=dict)
    e2e_ms: dict[str, float] = field(default_factory=dict)
    tokens_per_request: dict[str, float] = field(default_factory=dict)
    output_tokens_per_s: float | None = None
    requests_per_s: float | None = None
    token_count: str = "elements"
    goodput_per_s: float | None = None
    goodput_share: float | None = None
    stable: bool | None = None
    status: str = "pass"

    @property
    def series(self) -> tuple[str, str | None, str]:
        """What one curve is made of: ``(model, protocol, mode)``."""
        return (self.model, self.protocol, self.mode)

    def ttft(self, name: str) -> float | None:
        """A TTFT figure in ms (``"p99"``), or None."""
        return self.ttft_ms.get(name)

    def itl(self, name: str) -> float | None:
        """An inter-token latency figure in ms (``"p50"``), or None."""
        return self.itl_ms.get(name)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "protocol": self.protocol,
                "mode": self.mode, "load": self.load, "ttft_ms": dict(self.ttft_ms),
                "itl_ms": dict(self.itl_ms), "e2e_ms": dict(self.e2e_ms),
                "tokens_per_request": dict(self.tokens_per_request),
                "output_tokens_per_s": self.output_tokens_per_s,
                "requests_per_s": self.requests_per_s, "token_count": self.token_count,
                "goodput_per_s": self.goodput_per_s, "goodput_share": self.goodput_share,
                "stable": self.stable, "status": self.status}


def stream_point_of_entry(entry: CheckResult) -> StreamPoint | None:
    """The streaming figures of one ``load`` result entry (None for an entry without
    them: a model that is not decoupled, the setup entry, a damaged entry).

    Example::

        >>> stream_point_of_entry(res["load"][1]).ttft("p50")
        21.7
    """
    d = entry.details
    if entry.check != "load" or entry.model is None or "ttft_ms" not in d:
        return None
    try:
        mode = d["mode"]
        if mode not in ("concurrency", "request_rate"):
            raise ValueError(f"unknown mode {mode!r}")
        level = d["request_rate"] if mode == "request_rate" else d["concurrency"]
        return StreamPoint(
            task=entry.task, model=str(entry.model), protocol=entry.protocol, mode=mode,
            load=float(level), ttft_ms=_ms_map(d.get("ttft_ms")),
            itl_ms=_ms_map(d.get("itl_ms")), e2e_ms=_ms_map(d.get("e2e_ms")),
            tokens_per_request=_ms_map(d.get("tokens_per_request")),
            output_tokens_per_s=_num(d.get("output_tokens_per_s")),
            requests_per_s=_num(d.get("requests_per_s")),
            token_count=str(d.get("token_count") or "elements"),
            goodput_per_s=_num(d.get("goodput_per_s")),
            goodput_share=_num(d.get("goodput_share")),
            stable=d.get("stable") if isinstance(d.get("stable"), bool) else None,
            status=entry.status)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("task %s: the streaming figures of model %s are damaged (%s: %s): "
                    "left out", entry.task, entry.model, type(exc).__name__, exc)
        return None


def stream_points(results: Results | Iterable[CheckResult]) -> list[StreamPoint]:
    """Every streaming load point of a run, sorted by task, model, protocol, mode and
    load level.

    Example::

        >>> [(p.load, p.ttft("p50"), p.output_tokens_per_s) for p in stream_points(res)]
        [(1.0, 21.7, 144.0), (2.0, 126.7, 144.0)]
    """
    points = [p for p in map(stream_point_of_entry, results) if p is not None]
    return sorted(points, key=lambda p: (p.task, p.model, p.protocol or "", p.mode, p.load))


def group_stream_series(points: Iterable[StreamPoint]
                        ) -> dict[tuple[str, str | None, str], list[StreamPoint]]:
    """Points by ``(model, protocol, mode)``, each list sorted by task then load."""
    groups: dict[tuple[str, str | None, str], list[StreamPoint]] = {}
    for p in sorted(points, key=lambda p: (p.model, p.protocol or "", p.mode, p.task, p.load)):
        groups.setdefault(p.series, []).append(p)
    return groups


@dataclass(frozen=True)
class StreamCurves:
    """One streaming series (sweep point, model, protocol, mode) in every run."""

    scope: str
    series: tuple[str, str | None, str]
    #: Per run, its points sorted by load (empty where the run lacks the series).
    points: list[list[StreamPoint]]


def compare_stream_curves(runs: Sequence[Results]) -> list[StreamCurves]:
    """Every streaming series of any run, with each run's points of it.

    Example::

        >>> [c.series for c in compare_stream_curves([res_a, res_b])]
        [('token_streamer', 'grpc', 'concurrency')]
    """
    keyed: list[dict[tuple[str, str, str | None, str], list[StreamPoint]]] = []
    order: dict[tuple[str, str, str | None, str], None] = {}
    for res in runs:
        scopes = task_scopes(res.tasks)
        mine: dict[tuple[str, str, str | None, str], list[StreamPoint]] = {}
        for p in stream_points(res):
            key = (scopes.get(p.task, ""), *p.series)
            mine.setdefault(key, []).append(p)
            order.setdefault(key, None)
        keyed.append(mine)
    return [StreamCurves(key[0], key[1:],
                         [sorted(mine.get(key, []), key=lambda p: p.load) for mine in keyed])
            for key in order]


#: The streaming numbers worth comparing: ``(metric, unit, which way is better,
#: how to read it from a point)``; :func:`stream_measures` makes them load measures,
#: so ``compare`` puts them beside the load figures of the same level.
STREAM_METRICS: tuple[tuple[str, str, str | None, Any], ...] = (
    ("TTFT p50", "ms", "lower", lambda p: p.ttft("p50")),
    ("TTFT p99", "ms", "lower", lambda p: p.ttft("p99")),
    ("ITL p50", "ms", "lower", lambda p: p.itl("p50")),
    ("ITL p99", "ms", "lower", lambda p: p.itl("p99")),
    ("output tokens/s", "tok/s", "higher", lambda p: p.output_tokens_per_s),
    ("tokens per request", "", None, lambda p: p.tokens_per_request.get("mean")),
    ("goodput", "req/s", "higher", lambda p: p.goodput_per_s),
)
_BETTER = {name: better for name, _, better, _ in STREAM_METRICS}


@dataclass(frozen=True)
class StreamMeasure(Measure):
    """A streaming figure as a comparable measure (its direction from
    :data:`STREAM_METRICS`)."""

    @property
    def better(self) -> str | None:
        return _BETTER.get(self.metric)


def stream_measures(results: Results) -> list[Measure]:
    """The streaming figures of a run as load measures (``TTFT p50``, ``ITL p99``,
    ``output tokens/s`` …), matched across runs like the others.

    Example::

        >>> [(m.level, m.metric, m.value) for m in stream_measures(res)][:2]
        [('concurrency 1', 'TTFT p50', 21.7), ('concurrency 1', 'TTFT p99', 25.0)]
    """
    scopes = task_scopes(results.tasks)
    out: list[Measure] = []
    for p in stream_points(results):
        for metric, unit, _, read in STREAM_METRICS:
            value = read(p)
            if value is not None:
                out.append(StreamMeasure("load", scopes.get(p.task, ""), p.model, p.protocol,
                                         level_label(p.mode, p.load), metric, unit, float(value)))
    return out
