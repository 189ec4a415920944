"""The checks, and what they share: a context with clients, timeouts and result entries.

Each check module has ``run(ctx) -> iterator of result entries``; the runner records
them as they come and rewrites ``results.json`` after every check. A result entry is::

    {"check", "protocol", "model", "status", "duration_s", "message", "details"}

with status ``pass``, ``fail`` (the server answered wrongly or not at all), ``error``
(the probe could not perform the check) or ``skip`` (not applicable; the reason is the
message).
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Callable, Iterator, Optional, Tuple

from hpctriton_probe.net.calls import Caller, CallFailure
from hpctriton_probe.net.clients import Clients
from hpctriton_probe.spec import TaskSpec

CHECK_MODULES = ("health", "metadata", "keepalive", "infer", "statistics", "metrics", "load")


def module(name: str) -> Any:
    """The module of check ``name`` (imported on first use: start-up stays fast)."""
    if name not in CHECK_MODULES:
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")


class CheckContext:
    """What one check needs: its options and timeout, the task, clients, the caller."""

    def __init__(self, name: str, options: Any, task: TaskSpec, clients: Clients,
                 caller: Caller, *, base_dir: str = ".", shared: Optional[dict] = None) -> None:
        self.name = name
        self.options = options
        self.task = task
        self.server = task.server
        self.models = list(task.models)
        self.clients = clients
        self.caller = caller
        self.base_dir = base_dir
        self.timeout_s = float(getattr(options, "timeout_s", None) or task.probe.timeout_s)
        #: Endpoints that did not answer a call within the timeout in this check.
        self.silent = {}  # type: dict
        #: Data shared between checks of one run (the statistics snapshot, say).
        self.shared = shared if shared is not None else {}

    # --------------------------------------------------------------------- entries
    def entry(self, protocol: Optional[str], model: Optional[str], status: str,
              message: str, details: Optional[dict] = None,
              started: Optional[float] = None) -> dict:
        duration = 0.0 if started is None else time.monotonic() - started
        return {"check": self.name, "protocol": protocol, "model": model, "status": status,
                "duration_s": round(duration, 4), "message": message,
                "details": details if details is not None else {}}

    def failure_entry(self, protocol: Optional[str], model: Optional[str],
                      failure: CallFailure, started: float,
                      details: Optional[dict] = None) -> dict:
        merged = dict(details or {})
        merged.update(failure.details())
        return self.entry(protocol, model, failure.status, failure.message, merged, started)

    def protocols(self) -> Iterator[tuple]:
        """``(protocol, skip_reason)`` for each protocol of the check's options; the
        reason is set when the server has no port for that protocol."""
        for protocol in self.options.protocols:
            if self.server.url(protocol) is None:
                yield protocol, f"no server.{protocol}_port configured"
            else:
                yield protocol, None

    # ----------------------------------------------------------------------- calls
    def endpoint(self, protocol: str) -> str:
        return f"{protocol}://{self.server.url(protocol)}"

    def call(self, protocol: str, method: str, *args: Any, what: str,
             track_silence: bool = True, timeout_s: Optional[float] = None,
             **kwargs: Any) -> Any:
        """``client.method(*args, **kwargs)`` with headers, timeout and retries.

        With ``track_silence``, a timeout marks the endpoint silent for the rest of this
        check, so later calls fail at once instead of waiting out the timeout again.
        """
        endpoint = self.endpoint(protocol)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if track_silence and endpoint in self.silent:
            raise CallFailure("timeout", "not tried: " + self.silent[endpoint])
        headers = self.clients.headers_for(protocol)

        def make() -> Callable[[], Any]:
            client = self.clients.get(protocol, timeout)
            bound = getattr(client, method)
            extra = dict(kwargs)
            if headers:
                extra["headers"] = headers
            if protocol == "grpc":
                extra["client_timeout"] = timeout
            return lambda: bound(*args, **extra)

        try:
            fn = make()
        except CallFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - making a client is the probe's side
            raise CallFailure("probe", f"cannot create the {protocol} client: "
                                       f"{type(exc).__name__}: {exc}") from exc
        try:
            return self.caller.call(endpoint, fn, what=what, timeout_s=timeout,
                                    reset=lambda: self.clients.reset(protocol),
                                    fn_factory=make)
        except CallFailure as failure:
            if protocol == "http" and failure.kind in ("timeout", "unreachable", "tls"):
                # A late answer on a pooled connection would be read as the answer to
                # the next request: start over with fresh connections.
                self.clients.reset("http")
            if failure.kind == "timeout" and track_silence:
                self.silent[endpoint] = f"{endpoint} did not answer {what} within {timeout:g} s"
            raise


# ------------------------------------------------------------- normalizing server answers


def as_json(protocol: str) -> dict:
    """Keyword arguments that make a gRPC client answer plain JSON, like the HTTP one."""
    return {"as_json": True} if protocol == "grpc" else {}


def model_info(ctx: CheckContext, protocol: str, model: str) -> Tuple[dict, dict]:
    """A model's normalized metadata and summarized config (``CallFailure`` on error):
    what the infer and load checks need before they build inputs."""
    meta = normalize_metadata(ctx.call(protocol, "get_model_metadata", model,
                                       what="model metadata", **as_json(protocol)))
    config = summarize_config(ctx.call(protocol, "get_model_config", model,
                                       what="model config", **as_json(protocol)))
    return meta, config


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def unwrap_config(config: dict) -> dict:
    """gRPC's JSON wraps the model config in ``{"config": ...}``; HTTP does not."""
    if isinstance(config, dict) and set(config) == {"config"}:
        return config["config"]
    return config


def normalize_metadata(meta: dict) -> dict:
    """Model metadata in one form for both protocols (gRPC's JSON has int64 as strings)."""

    def io(items: Any) -> list:
        return [{"name": t.get("name"), "datatype": t.get("datatype"),
                 "shape": [_int(d, -1) for d in t.get("shape", [])]} for t in items or []]

    return {"name": meta.get("name"), "versions": [str(v) for v in meta.get("versions", [])],
            "platform": meta.get("platform", ""), "inputs": io(meta.get("inputs")),
            "outputs": io(meta.get("outputs"))}


def summarize_config(config: dict) -> dict:
    """The parts of a model config a person checking a server cares about."""
    config = unwrap_config(config)
    policy = (config.get("model_transaction_policy") or {})
    dyn = config.get("dynamic_batching")
    return {
        "backend": config.get("backend") or config.get("platform") or "",
        "max_batch_size": _int(config.get("max_batch_size"), 0),
        "dynamic_batching": dyn is not None,
        "max_queue_delay_us": _int((dyn or {}).get("max_queue_delay_microseconds"), 0)
        if dyn is not None else None,
        "instance_groups": [{"kind": g.get("kind", "KIND_AUTO"), "count": _int(g.get("count"), 1)}
                            for g in config.get("instance_group", [])],
        "decoupled": bool(policy.get("decoupled", False)),
        "sequence_batching": config.get("sequence_batching") is not None,
    }


STAT_KEYS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


def normalize_statistics(stats: dict, model: str) -> Optional[dict]:
    """One model's statistics, summed over its versions; None when the model is absent."""
    rows = [s for s in stats.get("model_stats", []) if s.get("name") == model]
    if not rows:
        return None
    out: dict[str, Any] = {"inference_count": 0, "execution_count": 0, "last_inference_ms": 0,
                           "versions": sorted(str(r.get("version", "")) for r in rows)}
    for key in STAT_KEYS:
        out[key + "_count"] = 0
        out[key + "_ns"] = 0
    for row in rows:
        out["inference_count"] += _int(row.get("inference_count"))
        out["execution_count"] += _int(row.get("execution_count"))
        out["last_inference_ms"] = max(out["last_inference_ms"], _int(row.get("last_inference")))
        inf = row.get("inference_stats") or {}
        for key in STAT_KEYS:
            part = inf.get(key) or {}
            out[key + "_count"] += _int(part.get("count"))
            out[key + "_ns"] += _int(part.get("ns"))
    return out
