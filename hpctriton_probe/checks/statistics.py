"""Statistics: Triton's per-model statistics before and after the other checks.

Declared to run last, with a snapshot taken before the task's first check, so the
difference shows what this run did to the server: successes, failures, and average
queue and compute times per request. A server busy with other clients adds its own
requests to the difference; the totals are recorded too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Tuple, Union

from hpctriton_probe.checks.base import Check, CheckContext, Phase, as_json
from hpctriton_probe.net.answers import normalize_statistics, statistics_delta
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.spec import StatisticsOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry

#: ``ctx.shared`` key of the snapshot: ``{(protocol, model): stats or CallFailure}``.
SNAPSHOT_KEY = "statistics.before"

Snapshot = Dict[Tuple[str, str], Union[Optional[Dict[str, Any]], CallFailure]]


def _fetch(ctx: CheckContext, protocol: str, model: str) -> Optional[Dict[str, Any]]:
    stats = ctx.call(protocol, "get_inference_statistics", model, what="statistics",
                     **as_json(protocol))
    return normalize_statistics(stats, model)


def take_snapshot(ctx: CheckContext) -> None:
    """Statistics of every model before the other checks, into ``ctx.shared``."""
    before: Snapshot = ctx.shared.setdefault(SNAPSHOT_KEY, {})
    for protocol, skip in ctx.protocols():
        if skip:
            continue
        for model in ctx.models:
            try:
                before[(protocol, model)] = _fetch(ctx, protocol, model)
            except CallFailure as failure:
                before[(protocol, model)] = failure


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
    before: Snapshot = ctx.shared.get(SNAPSHOT_KEY, {})
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
            details: Dict[str, Any] = {"after": after}
            prior = before.get((protocol, model))
            if isinstance(prior, dict):
                details["before"] = prior
                details["delta"] = d = statistics_delta(prior, after)
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


CHECK = Check("statistics", StatisticsOptions, run, phase=Phase.LAST,
              before_all=take_snapshot)
