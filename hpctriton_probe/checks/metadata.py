"""Metadata: server name, version and extensions; per model, metadata and config.

An unknown model fails with Triton's own error message (e.g. "Request for unknown
model: 'x' is not found"), so the results say what the server said.
"""

from __future__ import annotations

import time
from typing import Iterator

from hpctriton_probe.checks import CheckContext, as_json, normalize_metadata, summarize_config
from hpctriton_probe.net.calls import CallFailure


def run(ctx: CheckContext) -> Iterator[dict]:
    for protocol, skip in ctx.protocols():
        if skip:
            yield ctx.entry(protocol, None, "skip", skip)
            continue
        started = time.monotonic()
        try:
            meta = ctx.call(protocol, "get_server_metadata", what="server metadata",
                            **as_json(protocol))
        except CallFailure as failure:
            yield ctx.failure_entry(protocol, None, failure, started)
        else:
            details = {"name": meta.get("name"), "version": meta.get("version"),
                       "extensions": list(meta.get("extensions", []))}
            yield ctx.entry(protocol, None, "pass", "{} {} ({} extensions)".format(
                details["name"], details["version"], len(details["extensions"])),
                details, started)
        for model in ctx.models:
            started = time.monotonic()
            try:
                meta = normalize_metadata(ctx.call(
                    protocol, "get_model_metadata", model, what="model metadata",
                    **as_json(protocol)))
                config = summarize_config(ctx.call(
                    protocol, "get_model_config", model, what="model config",
                    **as_json(protocol)))
            except CallFailure as failure:
                yield ctx.failure_entry(protocol, model, failure, started)
                continue
            details = dict(meta)
            details["config"] = config
            message = "{} input(s), {} output(s), backend {}, max_batch_size {}{}".format(
                len(meta["inputs"]), len(meta["outputs"]), config["backend"] or "?",
                config["max_batch_size"],
                ", dynamic batching" if config["dynamic_batching"] else "")
            yield ctx.entry(protocol, model, "pass", message, details, started)
