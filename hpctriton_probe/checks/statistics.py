"""Statistics: Triton's per-model statistics before and after the other checks.

The runner calls ``snapshot`` before the first check and ``run`` after the last, so
the difference shows what this run did to the server: successes, failures, and average
queue and compute times per request. A server busy with other clients adds its own
requests to the difference; the totals are recorded too.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Optional

from hpctriton_probe.checks import STAT_KEYS, CheckContext, normalize_statistics
from hpctriton_probe.net.calls import CallFailure

SNAPSHOT_KEY = "statistics.before"


def _fetch(ctx: CheckContext, protocol: str, model: str) -> Optional[dict]:
    stats = ctx.call(protocol, "get_inference_statistics", model, what="statistics",
                     **({"as_json": True} if protocol == "grpc" else {}))
    return normalize_statistics(stats, model)


def snapshot(ctx: CheckContext) -> dict:
    """``{(protocol, model): stats or CallFailure}`` taken before the other checks."""
    before: dict[tuple, Any] = {}
    for protocol, skip in ctx.protocols():
        if skip:
            continue
        for model in ctx.models:
            try:
                before[(protocol, model)] = _fetch(ctx, protocol, model)
            except CallFailure as failure:
                before[(protocol, model)] = failure
    return before


def _ms(ns: int, count: int) -> Optional[float]:
    return round(ns / count / 1e6, 4) if count else None


def delta(before: dict, after: dict) -> dict:
    """What happened between two snapshots, with average times per request in ms."""
    d = {k: after[k] - before.get(k, 0) for k in after
         if isinstance(after[k], int) and k != "last_inference_ms"}
    requests = d.get("success_count", 0)
    out = {"success": requests, "fail": d.get("fail_count", 0),
           "inference_count": d.get("inference_count", 0),
           "execution_count": d.get("execution_count", 0)}
    for key in STAT_KEYS[2:]:
        out[key + "_avg_ms"] = _ms(d.get(key + "_ns", 0), d.get(key + "_count", 0))
    out["request_avg_ms"] = _ms(d.get("success_ns", 0), requests)
    out["batching_ratio"] = (round(out["inference_count"] / out["execution_count"], 4)
                             if out["execution_count"] else None)
    return out


def run(ctx: CheckContext, before: Optional[dict] = None) -> Iterator[dict]:
    before = before if before is not None else ctx.shared.get(SNAPSHOT_KEY, {})
    for protocol, skip in ctx.protocols():
        if skip:
            yield ctx.entry(protocol, None, "skip", skip)
            continue
        for model in ctx.models:
            started = time.monotonic()
            try:
                after = _fetch(ctx, protocol, model)
            except CallFailure as failure:
                yield ctx.failure_entry(protocol, model, failure, started)
                continue
            if after is None:
                yield ctx.entry(protocol, model, "fail", "the server returned no statistics "
                                f"for {model}", {}, started)
                continue
            details: dict[str, Any] = {"after": after}
            prior = before.get((protocol, model))
            if isinstance(prior, dict):
                details["before"] = prior
                details["delta"] = d = delta(prior, after)
                message = "+{} ok, +{} failed during the run".format(d["success"], d["fail"])
                if d["queue_avg_ms"] is not None:
                    message += "; avg queue {:.2f} ms, compute {:.2f} ms".format(
                        d["queue_avg_ms"], d["compute_infer_avg_ms"] or 0.0)
            else:
                if isinstance(prior, CallFailure):
                    details["before_error"] = prior.message
                message = "{} ok, {} failed in total (no snapshot before the run)".format(
                    after["success_count"], after["fail_count"])
            yield ctx.entry(protocol, model, "pass", message, details, started)
