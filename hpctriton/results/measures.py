"""The figures of a run worth comparing, as flat :class:`Measure` rows.

A measure is one number with what it is about: the load point's p99, one model's
inference latency, the server's average queue time for a model. Comparisons match
measures of several runs by :attr:`Measure.key`; the HTML report's tables use them too.

Where the numbers come from (the checks' ``details``):

* ``infer``: ``latency_ms`` of the one checked request, per model and protocol;
* ``keepalive``: the mean of ``latencies_ms`` over the calls on one channel;
* ``statistics``: ``delta`` — the server's own averages per request over the run
  (queue, compute input/infer/output, whole request), failures and batching ratio;
  one protocol per model (both protocols read the same counters);
* ``load``: every :class:`~hpctriton.results.load.LoadPoint` (throughput, latency
  percentiles, errors, and the server-side figures of the point).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hpctriton.results.capacity import capacities
from hpctriton.results.load import PERCENTILES, load_points
from hpctriton.results.model import Results, TaskResults, point_label

#: Statistics ``delta`` fields shown, with their labels: the server's time per request.
SERVER_TIMES: tuple[tuple[str, str], ...] = (
    ("queue_avg_ms", "queue"),
    ("compute_input_avg_ms", "compute input"),
    ("compute_infer_avg_ms", "compute infer"),
    ("compute_output_avg_ms", "compute output"),
)

#: Metrics that count things (shown as whole numbers).
COUNT_METRICS = frozenset({"errors", "failures"})

#: Which way is better, per metric (absent: neither).
BETTER: dict[str, str] = {
    "throughput": "higher", "errors": "lower", "failures": "lower",
    **{p: "lower" for p in PERCENTILES}, "mean": "lower", "latency": "lower",
    "request": "lower", **{label: "lower" for _, label in SERVER_TIMES},
    "server queue": "lower", "server compute infer": "lower", "capacity": "higher",
}


@dataclass(frozen=True)
class Measure:
    """One number of a run and what it is about."""

    #: ``capacity``, ``load``, ``infer``, ``keepalive`` or ``server``.
    section: str
    #: The task's sweep point as text (``""`` without a sweep).
    scope: str
    model: str | None
    protocol: str | None
    #: The load level (``"concurrency 4"``), for load measures.
    level: str | None
    metric: str
    unit: str
    value: float

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        """What a measure of another run must share to be compared with this one."""
        return (self.section, self.scope, self.model or "", self.protocol or "",
                self.level or "", self.metric)

    @property
    def better(self) -> str | None:
        """``"lower"``, ``"higher"`` or None (neither, e.g. the batching ratio)."""
        return BETTER.get(self.metric)

    @property
    def subject(self) -> str:
        """``simple grpc, concurrency 4`` — the row label of tables."""
        head = " ".join(x for x in (self.model, self.protocol) if x) or "server"
        parts = [head] + ([self.level] if self.level else [])
        return ", ".join(parts)


def task_scopes(tasks: Iterable[TaskResults]) -> dict[int, str]:
    """Each task's scope: the sweep keys whose value differs between the tasks, as text
    (``server.host=gpu02``); the task number is added where several tasks share it.
    A single task, or tasks that all share one point, have the scope ``""``.

    Example::

        >>> task_scopes(res.tasks)
        {0: 'server.host=gpu01', 1: 'server.host=gpu02'}
    """
    tasks = list(tasks)
    keys = list(dict.fromkeys(k for t in tasks for k in (t.point or {})))

    def value(t: TaskResults, key: str) -> str:
        return json.dumps((t.point or {}).get(key), sort_keys=True, default=str)

    varying = [k for k in keys if len({value(t, k) for t in tasks}) > 1]
    labels = {t.task: point_label({k: v for k, v in (t.point or {}).items() if k in varying})
              for t in tasks}
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    out = {}
    for task, label in labels.items():
        if seen[label] > 1 and len(tasks) > 1:
            out[task] = f"{label} (task {task})" if label else f"task {task}"
        else:
            out[task] = label
    return out


def level_label(mode: str, load: float) -> str:
    """The text of a load level (``concurrency 4``, ``rate 50/s``): how rows of the
    load's and the streaming figures' measures name their level, so they group."""
    value = f"{load:g}"
    return f"concurrency {value}" if mode == "concurrency" else f"rate {value}/s"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def measures(results: Results) -> list[Measure]:
    """Every comparable number of a run, in a stable order.

    Example::

        >>> [(m.subject, m.metric, m.value) for m in measures(res) if m.section == "infer"]
        [('simple http', 'latency', 1.9), ('simple grpc', 'latency', 1.2)]
    """
    scopes = task_scopes(results.tasks)
    out: list[Measure] = []
    for task in results.tasks:
        scope = scopes[task.task]
        server_seen: set[str] = set()
        for c in task.checks:
            d = c.details
            if c.check == "infer" and c.status == "pass":
                value = _num(d.get("latency_ms"))
                if value is not None:
                    out.append(Measure("infer", scope, c.model, c.protocol, None,
                                       "latency", "ms", value))
            elif c.check == "keepalive" and c.status == "pass":
                found = d.get("latencies_ms")
                lat = [v for v in found if _num(v) is not None] if isinstance(found, list) else []
                if lat:
                    out.append(Measure("keepalive", scope, None, c.protocol, None,
                                       "mean", "ms", sum(lat) / len(lat)))
            elif (c.check == "statistics" and isinstance(d.get("delta"), dict)
                  and c.model and c.model not in server_seen):
                server_seen.add(c.model)
                delta = d["delta"]
                for key, label in (*SERVER_TIMES, ("request_avg_ms", "request")):
                    value = _num(delta.get(key))
                    if value is not None:
                        out.append(Measure("server", scope, c.model, None, None, label,
                                           "ms", value))
                for key, label, unit in (("fail", "failures", ""),
                                         ("batching_ratio", "batching ratio", "")):
                    value = _num(delta.get(key))
                    if value is not None:
                        out.append(Measure("server", scope, c.model, None, None, label,
                                           unit, value))
    for cap in capacities(results):  # a capacity search's answer, when it is VALID
        if cap.met and cap.rate_per_s is not None:
            out.append(Measure("capacity", scopes.get(cap.task, ""), cap.model, cap.protocol,
                               cap.objective_text, "capacity", "req/s", cap.rate_per_s))
    for p in load_points(results):
        scope = scopes.get(p.task, "")
        level = level_label(p.mode, p.load)

        def add(metric: str, unit: str, value: float | None, p: Any = p,
                scope: str = scope, level: str = level) -> None:
            if value is not None:
                out.append(Measure("load", scope, p.model, p.protocol, level, metric, unit,
                                   value))

        add("throughput", "req/s", p.throughput_rps)
        for name in PERCENTILES:
            add(name, "ms", p.latency(name))
        add("errors", "", float(p.errors))
        add("server queue", "ms", _num(p.server.get("queue_avg_ms")))
        add("server compute infer", "ms", _num(p.server.get("compute_infer_avg_ms")))
        add("batching ratio", "", _num(p.server.get("batching_ratio")))
    return out
