"""Load-test figures out of results: the one adapter between the ``load`` check's
result entries and every table and plot of them.

Everything that draws or tabulates load results (``Results.plot``, the HTML report,
``compare_runs``) reads :class:`LoadPoint` objects made by :func:`load_points`, never
the entries themselves: when the ``load`` check's ``details`` change shape, only
:func:`point_from_dict` and :func:`load_points` change.

The shape read here (the check is being written; the hand-made fixtures in
``tests/data/report_*`` follow it)::

    {"check": "load", "protocol": "grpc", "model": "simple", "status": "pass",
     "details": {
        "mode": "concurrency",                  # or "request_rate"
        "points": [
          {"concurrency": 4,                    # or "request_rate": 200.0 (req/s)
           "throughput_rps": 1830.5,            # completed requests per second
           "requests": 3661,
           "latency_ms": {"p50": 2.1, "p90": 2.9, "p95": 3.2, "p99": 4.4, "max": 9.8},
           "errors": {"timeout": 0, "server": 0},   # by kind (a bare count also works)
           "stable": true,                      # false: never met the stability rule
           "server": {"queue_avg_ms": 0.1, "compute_infer_avg_ms": 1.6,
                      "batching_ratio": 1.8}}]}}

Tolerated variations: a ``details`` that is itself one point (no ``points`` list);
``throughput`` or ``throughput_infer_per_s`` for ``throughput_rps``; flat ``p99_ms``
keys for ``latency_ms``; ``rate`` for ``request_rate``; ``errors`` as an integer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpctriton.results.model import CheckResult, Results

#: Latency percentiles drawn and tabulated, in this order.
PERCENTILES: tuple[str, ...] = ("p50", "p90", "p95", "p99", "max")

#: Mode names as shown on axes and in tables.
MODE_LABELS = {"concurrency": "concurrency", "request_rate": "request rate (req/s)"}

_THROUGHPUT_KEYS = ("throughput_rps", "throughput", "throughput_infer_per_s")


@dataclass(frozen=True)
class LoadPoint:
    """One measured load level of one model: client-side figures and the server's.

    ``mode`` is ``"concurrency"`` (closed loop; ``load`` = concurrent requests) or
    ``"request_rate"`` (open loop; ``load`` = the intended requests per second).
    """

    task: int
    model: str
    protocol: str | None
    mode: str
    load: float
    throughput_rps: float | None
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    requests: int | None = None
    stable: bool | None = None
    server: dict[str, Any] = field(default_factory=dict)
    #: The status of the result entry the point came from.
    status: str = "pass"

    @property
    def series(self) -> tuple[str, str | None, str]:
        """What one curve is made of: ``(model, protocol, mode)``."""
        return (self.model, self.protocol, self.mode)

    def latency(self, name: str) -> float | None:
        """A latency figure in ms (``"p99"``), or None when the point has none."""
        return self.latency_ms.get(name)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "protocol": self.protocol,
                "mode": self.mode, "load": self.load, "throughput_rps": self.throughput_rps,
                "latency_ms": dict(self.latency_ms), "errors": self.errors,
                "errors_by_kind": dict(self.errors_by_kind), "requests": self.requests,
                "stable": self.stable, "server": dict(self.server), "status": self.status}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def point_from_dict(raw: Mapping[str, Any], *, task: int, model: str,
                    protocol: str | None, mode: str | None = None,
                    status: str = "pass") -> LoadPoint | None:
    """One point of a ``load`` entry's ``details`` as a :class:`LoadPoint` (None when it
    names no load level).

    Example::

        >>> point_from_dict({"concurrency": 2, "throughput_rps": 900,
        ...                  "latency_ms": {"p99": 3.5}}, task=0, model="simple",
        ...                 protocol="grpc").latency("p99")
        3.5
    """
    if mode is None:
        mode = "request_rate" if ("request_rate" in raw or "rate" in raw) else "concurrency"
    level = _num(raw.get(mode, raw.get("rate") if mode == "request_rate" else None))
    if level is None:
        level = _num(raw.get("load"))
    if level is None:
        return None
    throughput = next((_num(raw[k]) for k in _THROUGHPUT_KEYS if k in raw), None)
    latency: dict[str, float] = {}
    nested = raw.get("latency_ms")
    if isinstance(nested, Mapping):
        latency = {str(k): v for k, v in ((k, _num(v)) for k, v in nested.items())
                   if v is not None}
    for name in (*PERCENTILES, "mean"):
        flat = _num(raw.get(f"{name}_ms"))
        if flat is not None and name not in latency:
            latency[name] = flat
    errors_raw = raw.get("errors", 0)
    by_kind: dict[str, int] = {}
    if isinstance(errors_raw, Mapping):
        by_kind = {str(k): int(_num(v) or 0) for k, v in errors_raw.items()}
        errors = sum(by_kind.values())
    else:
        errors = int(_num(errors_raw) or 0)
    requests = _num(raw.get("requests"))
    stable = raw.get("stable")
    server = raw.get("server")
    return LoadPoint(task=task, model=model, protocol=protocol, mode=mode, load=level,
                     throughput_rps=throughput, latency_ms=latency, errors=errors,
                     errors_by_kind=by_kind,
                     requests=int(requests) if requests is not None else None,
                     stable=stable if isinstance(stable, bool) else None,
                     server=dict(server) if isinstance(server, Mapping) else {},
                     status=status)


def points_of_entry(entry: CheckResult) -> list[LoadPoint]:
    """The points of one ``load`` result entry (none for an entry without figures).

    Example::

        >>> [p.load for p in points_of_entry(res["load"][0])]
        [1.0, 2.0, 4.0]
    """
    details = entry.details or {}
    raw_points = details.get("points")
    if not isinstance(raw_points, list):
        raw_points = [details]
    mode = details.get("mode")
    mode = {"rate": "request_rate"}.get(mode, mode) if isinstance(mode, str) else None
    model = entry.model or str(details.get("model") or "?")
    out = []
    for raw in raw_points:
        if isinstance(raw, Mapping):
            point = point_from_dict(raw, task=entry.task, model=model,
                                    protocol=entry.protocol, mode=mode, status=entry.status)
            if point is not None:
                out.append(point)
    return out


def load_points(results: Results | Iterable[CheckResult]) -> list[LoadPoint]:
    """Every load point of a run, sorted by task, model, protocol, mode and load level.

    This is the only place that knows how the ``load`` check lays out its figures.

    Example::

        >>> for p in load_points(run.results()):
        ...     print(p.model, p.load, p.throughput_rps, p.latency("p99"))
        simple 1.0 512.3 2.9
    """
    points = [p for entry in results if entry.check == "load" for p in points_of_entry(entry)]
    return sorted(points, key=lambda p: (p.task, p.model, p.protocol or "", p.mode, p.load))


def group_series(points: Iterable[LoadPoint]) -> dict[tuple[str, str | None, str],
                                                     list[LoadPoint]]:
    """Points by ``(model, protocol, mode)``, each list sorted by task then load.

    Example::

        >>> list(group_series(res.load_points()))
        [('simple', 'grpc', 'concurrency')]
    """
    groups: dict[tuple[str, str | None, str], list[LoadPoint]] = {}
    for p in sorted(points, key=lambda p: (p.model, p.protocol or "", p.mode, p.task, p.load)):
        groups.setdefault(p.series, []).append(p)
    return groups


def series_title(series: tuple[str, str | None, str]) -> str:
    """A series as a title.

    Example::

        >>> series_title(("simple", "grpc", "request_rate"))
        'simple · grpc · request rate'
    """
    model, protocol, mode = series
    return " · ".join(x for x in (model, protocol, mode.replace("_", " ")) if x)
