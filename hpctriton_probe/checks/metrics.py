"""Metrics: scrape Triton's Prometheus endpoint and record ``nv_inference_*`` per model.

Declared to run last, with a scrape taken before the task's first check (as the
statistics check does), so the figures are the run's own: the difference of each
counter between the two scrapes (``details.during_run``). The totals since the server
started stay beside them as context (``details.values``). A server busy with other
clients adds their requests to the difference.

The batching ratio ``nv_inference_count / nv_inference_exec_count`` above 1 shows that
dynamic batching merges requests. Triton serves metrics over plain HTTP on its own
port (so a server reached over TLS gets no headers there: ``Clients.headers_for``,
applied by ``CheckContext.scrape_metrics``, which every scrape goes through);
without ``server.metrics_port`` the check is skipped, with that reason.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Tuple, Union

from hpctriton_probe.checks.base import Check, CheckContext, Phase
from hpctriton_probe.net import prom
from hpctriton_probe.net.answers import (
    batching_ratio,
    counters_delta,
    model_counters,
    model_metrics,
)
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.spec import MetricsOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import MetricsModelDetails, ResultEntry

#: Counters shown in the message, in this order.
HEADLINE = ("nv_inference_request_success", "nv_inference_request_failure",
            "nv_inference_count", "nv_inference_exec_count")

#: ``ctx.shared`` key of the scrape before the other checks: the counters per model,
#: or why there are none (a message).
SNAPSHOT_KEY = "metrics.before"

Snapshot = Union[Dict[str, Dict[str, Any]], str]


def take_snapshot(ctx: CheckContext) -> None:
    """Every model's counters before the other checks, into ``ctx.shared``."""
    if ctx.server.metrics_port is None:
        return
    before: Snapshot
    try:
        families = prom.parse(ctx.scrape_metrics())
        before = {model: model_counters(families, model) for model in ctx.models}
    except CallFailure as failure:
        before = failure.message
    except prom.PromParseError as exc:
        before = f"not Prometheus format: {exc}"
    ctx.shared[SNAPSHOT_KEY] = before


def _counts(values: Dict[str, Any], sign: str = "") -> List[str]:
    return [sign + str(values.get(k, 0)) for k in HEADLINE]


def model_entry(values: Dict[str, Any], counters: Dict[str, Any],
                 before: Any) -> Tuple[str, MetricsModelDetails]:
    """The message and details of one model: the run's difference first, the totals
    since the server started after it."""
    ratio = batching_ratio(values)
    details: MetricsModelDetails = {"values": values, "batching_ratio": ratio}
    totals = "{} ok, {} failed, {} inferences in {} executions".format(*_counts(values))
    if ratio is not None:
        totals += f" (batching ratio {ratio:.2f})"
    delta = counters_delta(before, counters) if isinstance(before, dict) else None
    if delta is None:
        if isinstance(before, str):
            details["before_error"] = before
            why = "no scrape before the run"
        elif isinstance(before, dict):
            details["before_error"] = why = "counters went down: the server restarted"
        else:
            why = "no scrape before the run"
        return f"{totals} since the server started ({why})", details
    run_ratio = batching_ratio(delta)
    details["during_run"] = {"values": delta, "batching_ratio": run_ratio}
    message = "{} ok, {} failed during the run".format(*_counts(delta, "+")[:2])
    if run_ratio is not None:
        message += f", batching ratio {run_ratio:.2f}"
    context = "{} ok, {} failed".format(*_counts(values)[:2])
    if ratio is not None:
        context += f", ratio {ratio:.2f}"
    return f"{message}; since start {context}", details


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
    started = time.monotonic()
    if ctx.server.metrics_port is None:
        yield ctx.entry("http", None, "skip", "no server.metrics_port configured, so there "
                        "are no Prometheus metrics to scrape")
        return
    url, _ = ctx.metrics_where()
    try:
        text = ctx.scrape_metrics()
    except CallFailure as failure:
        yield ctx.failure_entry("http", None, failure, started, {"url": url})
        return
    try:
        families = prom.parse(text)
    except prom.PromParseError as exc:
        yield ctx.entry("http", None, "fail", "the metrics endpoint answered with text that "
                        f"is not Prometheus format: {exc}", {"url": url}, started)
        return
    names = sorted({f.name for f in families})
    nv_families = [n for n in names if n.startswith("nv_")]
    details = {"url": url, "families": len(names), "bytes": len(text),
               "nv_families": nv_families,
               "gpu_metrics": any(n.startswith("nv_gpu_") for n in names)}
    if not nv_families:
        # An empty page, or another program's metrics: not Triton's, whatever the status.
        yield ctx.entry("http", None, "fail", f"no nv_* metric family among the {len(names)} "
                        f"scraped ({len(text)} bytes): is {url} Triton's metrics port, with "
                        "metrics on?", details, started)
    else:
        yield ctx.entry("http", None, "pass", f"{len(names)} metric families scraped "
                        f"({len(nv_families)} nv_*)", details, started)
    snapshot = ctx.shared.get(SNAPSHOT_KEY)
    for model in ctx.models:
        t0 = time.monotonic()
        values = model_metrics(families, model)
        if not values:
            yield ctx.entry("http", model, "fail", f"no nv_inference_* metrics for {model} (not "
                            "loaded, or per-model metrics disabled)", {}, t0)
            continue
        before = snapshot.get(model) if isinstance(snapshot, dict) else snapshot
        message, model_details = model_entry(values, model_counters(families, model), before)
        yield ctx.entry("http", model, "pass", message, dict(model_details), t0)


CHECK = Check("metrics", MetricsOptions, run, phase=Phase.LAST, before_all=take_snapshot,
              endpoints=lambda options: ("metrics",))
