"""Metadata: server name, version and extensions; per model, metadata and config.

An unknown model fails with Triton's own error message (e.g. "Request for unknown
model: 'x' is not found"), so the results say what the server said.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterator

from hpctriton_probe.checks.base import Check, CheckContext, as_json, model_info
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.spec import MetadataOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
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
                meta, config = model_info(ctx, protocol, model)
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


CHECK = Check("metadata", MetadataOptions, run)
