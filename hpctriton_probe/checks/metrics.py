"""Metrics: scrape Triton's Prometheus endpoint and record ``nv_inference_*`` per model.

The batching ratio ``nv_inference_count / nv_inference_exec_count`` above 1 shows that
dynamic batching merges requests. Triton serves metrics over plain HTTP on its own
port (so a server reached over TLS gets no headers there: ``Clients.headers_for``);
without ``server.metrics_port`` the check is skipped, with that reason.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterator

from hpctriton_probe.checks.base import Check, CheckContext
from hpctriton_probe.net import prom
from hpctriton_probe.net.answers import batching_ratio, model_metrics
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.spec import MetricsOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry

#: Counters shown in the message, in this order.
HEADLINE = ("nv_inference_request_success", "nv_inference_request_failure",
            "nv_inference_count", "nv_inference_exec_count")


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
    started = time.monotonic()
    if ctx.server.metrics_port is None:
        yield ctx.entry("http", None, "skip", "no server.metrics_port configured, so there "
                        "are no Prometheus metrics to scrape")
        return
    path = ctx.options.path if ctx.options.path.startswith("/") else "/" + ctx.options.path
    url = "http://{}{}".format(ctx.server.url("metrics"), path)
    endpoint = "metrics://{}".format(ctx.server.url("metrics"))
    headers = ctx.clients.headers_for("metrics")
    try:
        text = ctx.caller.call(endpoint, lambda: prom.fetch(url, headers, ctx.timeout_s),
                               what="metrics scrape", timeout_s=ctx.timeout_s)
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
    details = {"url": url, "families": len(names), "bytes": len(text),
               "nv_families": [n for n in names if n.startswith("nv_")],
               "gpu_metrics": any(n.startswith("nv_gpu_") for n in names)}
    yield ctx.entry("http", None, "pass", f"{len(names)} metric families scraped",
                    details, started)
    for model in ctx.models:
        t0 = time.monotonic()
        values = model_metrics(families, model)
        if not values:
            yield ctx.entry("http", model, "fail", f"no nv_inference_* metrics for {model} (not "
                            "loaded, or per-model metrics disabled)", {}, t0)
            continue
        ratio = batching_ratio(values)
        message = "{} ok, {} failed, {} inferences in {} executions".format(
            *(values.get(k, 0) for k in HEADLINE))
        if ratio is not None:
            message += f" (batching ratio {ratio:.2f})"
        yield ctx.entry("http", model, "pass", message,
                        {"values": values, "batching_ratio": ratio}, t0)


CHECK = Check("metrics", MetricsOptions, run)
