"""Metrics: scrape Triton's Prometheus endpoint and record ``nv_inference_*`` per model.

The batching ratio ``nv_inference_count / nv_inference_exec_count`` above 1 shows that
dynamic batching merges requests. Triton serves metrics over plain HTTP on its own
port; without ``server.metrics_port`` the check is skipped, with that reason.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Iterator, Optional

from hpctriton_probe.checks import CheckContext
from hpctriton_probe.net import prom
from hpctriton_probe.net.calls import CallFailure

#: Counters shown in the message, in this order.
HEADLINE = ("nv_inference_request_success", "nv_inference_request_failure",
            "nv_inference_count", "nv_inference_exec_count")


class _HTTPStatus(Exception):
    """The metrics endpoint answered with an HTTP error status."""

    failure_kind = "server"

    def __init__(self, code: int, body: str) -> None:
        super().__init__(f"HTTP {code}: {body.strip()[:200]}")
        self.code = code


def _scrape(url: str, headers: Optional[dict], timeout_s: float) -> str:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise _HTTPStatus(exc.code, exc.read().decode("utf-8", "replace")) from None
    except urllib.error.URLError as exc:
        # urllib wraps the socket error; classify the real one (refused, timeout, DNS).
        if isinstance(exc.reason, BaseException):
            raise exc.reason from None
        raise


def per_model(families: list, model: str) -> dict:
    """``nv_inference_*`` values of ``model`` summed over its versions (histogram buckets
    and summary quantiles left out)."""
    out = {}  # type: dict
    for fam in families:
        if not fam.name.startswith("nv_inference_"):
            continue
        for s in fam.samples:
            if s.labels.get("model") != model or "le" in s.labels or "quantile" in s.labels:
                continue
            out[s.name] = out.get(s.name, 0) + s.value
    return {k: int(v) if float(v).is_integer() else v for k, v in sorted(out.items())}


def batching_ratio(values: dict) -> Optional[float]:
    executions = values.get("nv_inference_exec_count") or 0
    if not executions:
        return None
    return round(values.get("nv_inference_count", 0) / executions, 4)


def run(ctx: CheckContext) -> Iterator[dict]:
    started = time.monotonic()
    if ctx.server.metrics_port is None:
        yield ctx.entry("http", None, "skip", "no server.metrics_port configured, so there "
                        "are no Prometheus metrics to scrape")
        return
    path = ctx.options.path if ctx.options.path.startswith("/") else "/" + ctx.options.path
    url = "http://{}{}".format(ctx.server.url("metrics"), path)
    endpoint = "metrics://{}".format(ctx.server.url("metrics"))
    # Triton's metrics port speaks plain HTTP only: where the server is reached over TLS,
    # its headers (tokens) are not sent there in clear text.
    headers = {} if ctx.server.tls is not None else ctx.clients.headers_for("http")
    try:
        text = ctx.caller.call(endpoint, lambda: _scrape(url, headers, ctx.timeout_s),
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
        values = per_model(families, model)
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
