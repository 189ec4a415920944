"""What Triton answered, in one form for both protocols, and the figures drawn from it.

gRPC's JSON differs from HTTP's (int64 as strings, the model config wrapped in
``{"config": ...}``); the checks compare and report the normalized form only. Pure
functions of plain data: the checks call the server, these read its answers.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from hpctriton_probe.net.prom import Family

#: Triton's per-model inference statistics, each a count and a total time in ns.
STAT_KEYS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# ------------------------------------------------------------------ metadata, config


def unwrap_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """gRPC's JSON wraps the model config in ``{"config": ...}``; HTTP does not."""
    if isinstance(config, dict) and set(config) == {"config"}:
        inner: Dict[str, Any] = config["config"]
        return inner
    return config


def normalize_metadata(meta: Dict[str, Any]) -> Dict[str, Any]:
    """Model metadata in one form for both protocols (gRPC's JSON has int64 as strings)."""

    def io(items: Any) -> List[Dict[str, Any]]:
        return [{"name": t.get("name"), "datatype": t.get("datatype"),
                 "shape": [_int(d, -1) for d in t.get("shape", [])]} for t in items or []]

    return {"name": meta.get("name"), "versions": [str(v) for v in meta.get("versions", [])],
            "platform": meta.get("platform", ""), "inputs": io(meta.get("inputs")),
            "outputs": io(meta.get("outputs"))}


def summarize_config(config: Dict[str, Any]) -> Dict[str, Any]:
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


# ------------------------------------------------------------------------ statistics


def normalize_statistics(stats: Dict[str, Any], model: str) -> Optional[Dict[str, Any]]:
    """One model's statistics, summed over its versions; None when the model is absent."""
    rows = [s for s in stats.get("model_stats", []) if s.get("name") == model]
    if not rows:
        return None
    out: Dict[str, Any] = {"inference_count": 0, "execution_count": 0, "last_inference_ms": 0,
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


def _avg_ms(ns: int, count: int) -> Optional[float]:
    return round(ns / count / 1e6, 4) if count else None


def statistics_delta(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, Any]:
    """What happened between two normalized statistics of one model, with average times
    per request in ms."""
    d = {k: after[k] - before.get(k, 0) for k in after
         if isinstance(after[k], int) and k != "last_inference_ms"}
    requests = d.get("success_count", 0)
    out: Dict[str, Any] = {"success": requests, "fail": d.get("fail_count", 0),
                           "inference_count": d.get("inference_count", 0),
                           "execution_count": d.get("execution_count", 0)}
    for key in STAT_KEYS[2:]:
        out[key + "_avg_ms"] = _avg_ms(d.get(key + "_ns", 0), d.get(key + "_count", 0))
    out["request_avg_ms"] = _avg_ms(d.get("success_ns", 0), requests)
    out["batching_ratio"] = (round(out["inference_count"] / out["execution_count"], 4)
                             if out["execution_count"] else None)
    return out


# --------------------------------------------------------------------------- metrics


def model_metrics(families: List[Family], model: str) -> Dict[str, Any]:
    """``nv_inference_*`` values of ``model`` summed over its versions (histogram buckets
    and summary quantiles left out)."""
    out: Dict[str, float] = {}
    for fam in families:
        if not fam.name.startswith("nv_inference_"):
            continue
        for s in fam.samples:
            if s.labels.get("model") != model or "le" in s.labels or "quantile" in s.labels:
                continue
            out[s.name] = out.get(s.name, 0) + s.value
    return {k: int(v) if float(v).is_integer() else v for k, v in sorted(out.items())}


def model_counters(families: List[Family], model: str) -> Dict[str, Any]:
    """The counters among :func:`model_metrics` (``# TYPE … counter``): the values that
    only grow while the server runs, so two scrapes' difference is what happened
    between them (gauges such as pending requests are left out)."""
    counters = {s.name for f in families if f.type == "counter" for s in f.samples}
    return {k: v for k, v in model_metrics(families, model).items() if k in counters}


def counters_delta(before: Dict[str, Any], after: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """``after - before`` of every counter both scrapes have; None when one went down
    (the server restarted between the scrapes, so the difference means nothing)."""
    out: Dict[str, Any] = {}
    for key, value in after.items():
        prior = before.get(key)
        if isinstance(value, (int, float)) and isinstance(prior, (int, float)):
            if value < prior:
                return None
            diff = value - prior
            out[key] = int(diff) if float(diff).is_integer() else round(diff, 6)
    return out


def batching_ratio(values: Dict[str, Any]) -> Optional[float]:
    """Inferences per model execution: above 1 when dynamic batching merges requests."""
    executions = values.get("nv_inference_exec_count") or 0
    if not executions:
        return None
    return round(values.get("nv_inference_count", 0) / executions, 4)
