"""Load-test figures out of results: the one adapter between the ``load`` check's
result entries and every table and plot of them.

Everything that draws or tabulates load results (the notebook's ``plot()``, the HTML
report, ``compare_runs``) reads :class:`LoadPoint` objects made by :func:`load_points`,
never the entries themselves: when the ``load`` check's ``details`` change shape, only
this module changes.

What the probe writes (``hpctriton_probe.load.stats.entries``, the same for the
entries ``hpctriton collect`` merges from several tasks): first an entry with ``model``
null describing the run (``LoadSetupDetails``), then one entry per model and load level
whose ``details`` is that point (``LoadPointDetails``)::

    {"check": "load", "protocol": "grpc", "model": "simple", "status": "pass",
     "details": {"mode": "concurrency", "concurrency": 4,   # or "request_rate": 200.0
                 "throughput_rps": 1830.5, "requests": 3661,
                 "latency_ms": {"p50": 2.1, "p90": 2.9, "p95": 3.2, "p99": 4.4,
                                "max": 9.8, "min": 0.9, "avg": 2.2},
                 "errors": {"timeout": 2},              # in the windows used, by kind
                 "stable": true,
                 "server": {"queue_avg_ms": 0.1, "compute_infer_avg_ms": 1.6, ...},
                 ...}}

A model the check could not prepare gets an entry with a ``model`` and no ``mode``
(a failed metadata call, a skipped sequence model): it has no figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from hpctriton.results.model import CheckResult, Results
    from hpctriton_probe.schema import LoadPointDetails

log = logging.getLogger("hpctriton.results.load")
#: Latency percentiles drawn and tabulated, in this order.
PERCENTILES: tuple[str, ...] = ("p50", "p90", "p95", "p99", "max")


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


def _is_point(details: dict[str, Any]) -> TypeGuard[LoadPointDetails]:
    """Point entries name their mode; the other entries with a model never do."""
    return "mode" in details


def point_of_entry(entry: CheckResult) -> LoadPoint | None:
    """The point of one ``load`` result entry (None for an entry without figures).

    Example::

        >>> point_of_entry(res["load"][1]).latency("p99")
        3.5
    """
    details = entry.details
    if entry.check != "load" or entry.model is None or not _is_point(details):
        return None
    try:
        return _point(entry, details)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # a damaged results.json: the point is left out of figures, never a traceback
        log.warning("task %s: a load entry of model %s is damaged (%s: %s): left out",
                    entry.task, entry.model, type(exc).__name__, exc)
        return None


def _point(entry: CheckResult, details: LoadPointDetails) -> LoadPoint:
    mode = details["mode"]
    if mode not in ("concurrency", "request_rate"):
        raise ValueError(f"unknown mode {mode!r}")
    level = details["request_rate"] if mode == "request_rate" else details["concurrency"]
    throughput = details["throughput_rps"]
    errors = details["errors"]
    return LoadPoint(task=entry.task, model=str(entry.model), protocol=entry.protocol, mode=mode,
                     load=float(level),
                     throughput_rps=None if throughput is None else float(throughput),
                     latency_ms={name: float(value)  # null: nothing was answered
                                 for name, value in details["latency_ms"].items()
                                 if isinstance(value, (int, float))},
                     errors=sum(errors.values()), errors_by_kind=dict(errors),
                     requests=details["requests"], stable=details["stable"],
                     server=dict(details.get("server") or {}), status=entry.status)


def load_points(results: Results | Iterable[CheckResult]) -> list[LoadPoint]:
    """Every load point of a run, sorted by task, model, protocol, mode and load level.

    Example::

        >>> for p in load_points(run.results()):
        ...     print(p.model, p.load, p.throughput_rps, p.latency("p99"))
        simple 1.0 512.3 2.9
    """
    points = [p for p in map(point_of_entry, results) if p is not None]
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
