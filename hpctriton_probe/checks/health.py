"""Health: server live, server ready, each model ready; per protocol.

One entry per protocol for the server (live and ready) and one per model (ready).
A model that is not ready is explained from the repository index when the server
gives one (state and reason, e.g. a failed load).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

from hpctriton_probe.checks.base import Check, CheckContext, as_json
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.spec import HealthOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry


def _why_not_ready(ctx: CheckContext, protocol: str, model: str) -> Optional[Dict[str, str]]:
    """State and reason of ``model`` from the repository index; None if unavailable."""
    try:
        index = ctx.call(protocol, "get_model_repository_index", what="repository index",
                         **as_json(protocol))
    except CallFailure:
        return None
    rows = index.get("models", []) if isinstance(index, dict) else index
    for row in rows or []:
        if row.get("name") == model:
            return {"state": row.get("state") or "", "reason": row.get("reason") or ""}
    return {"state": "UNKNOWN", "reason": "not in the model repository"}


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
    for protocol, skip in ctx.protocols():
        if skip:
            yield ctx.entry(protocol, None, "skip", skip)
            continue
        started = time.monotonic()
        details: Dict[str, Any] = {"url": ctx.server.url(protocol)}
        try:
            t0 = time.monotonic()
            live = bool(ctx.call(protocol, "is_server_live", what="server live"))
            details["live"] = live
            details["live_ms"] = round((time.monotonic() - t0) * 1000, 2)
            t0 = time.monotonic()
            ready = bool(ctx.call(protocol, "is_server_ready", what="server ready"))
            details["ready"] = ready
            details["ready_ms"] = round((time.monotonic() - t0) * 1000, 2)
        except CallFailure as failure:
            yield ctx.failure_entry(protocol, None, failure, started, details)
        else:
            if live and ready:
                yield ctx.entry(protocol, None, "pass", "server live and ready", details,
                                started)
            else:
                yield ctx.entry(protocol, None, "fail", "server {}".format(
                    "live but not ready" if live else "not live"), details, started)
        for model in ctx.models:
            started = time.monotonic()
            details = {}
            try:
                ready = bool(ctx.call(protocol, "is_model_ready", model, what="model ready"))
            except CallFailure as failure:
                yield ctx.failure_entry(protocol, model, failure, started)
                continue
            details["ready"] = ready
            details["ready_ms"] = round((time.monotonic() - started) * 1000, 2)
            if ready:
                yield ctx.entry(protocol, model, "pass", "model ready", details, started)
                continue
            why = _why_not_ready(ctx, protocol, model)
            message = "model not ready"
            if why:
                details.update(why)
                message += ": {}{}".format(why["state"] or "unknown state",
                                           " ({})".format(why["reason"]) if why["reason"] else "")
            yield ctx.entry(protocol, model, "fail", message, details, started)


CHECK = Check("health", HealthOptions, run)
