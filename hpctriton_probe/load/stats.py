"""Load figures from measurement windows: the stability rule, point summaries, merging
the files of several tasks, and a perf_analyzer-like CSV.

Why one module for the probe and for ``hpctriton collect``: a job with ``tasks: 1``
reports its figures itself, a job with ``tasks: N`` has them merged after collect, and
both must apply the very same rule to the very same window data. So every task writes
its raw windows (counts and latency histograms, see :mod:`hpctriton_probe.load.hist`) to
``load/rank-<r>.json``; :func:`summarize_run` turns one such document, or the merge
of several made by :func:`merge_rank_docs`, into figures.

A rank document (``format: hpctriton-load-rank-1``; one per task of the job)::

    {"format": ..., "rank": 0, "ranks": 3, "host": ..., "run_id": ..., "task": 0,
     "loads": [{                               # one per load check, in spec order
        "load_index": 0, "protocol": "grpc", "streaming": false,
        "mode": "concurrency", "schedule": "constant", "batch_size": 1,
        "warmup_s": 1.0, "window_s": 2.0, "stability": {"windows": 3, ...},
        "aligned": true, "models": ["simple"], "interrupted": false,
        "points": [{
           "index": 0, "value": 4, "windows_run": 10, "stopped_early": false,
           "late_s": 0.0,
           "client": {"cpu_s": 0.8, "wall_s": 23.1, "connections": 4},
           "server": {"simple": {...statistics delta..., "metrics": {...}}},  # rank 0
           "models": {"simple": {
               "inferences_per_request": 1,
               "windows": [{"ok": 812, "errors": {}, "hist": {...}}, ...],
               "sent": 9000, "ok": 9000, "errors": {}, "error_codes": {},
               "error_examples": {}, "unanswered": 0,
               "lag": {...histogram of send lag, open loop...}}}}]}]}

A load with decoupled models also has ``"streams": {model: {"token_count",
"token_output"}}`` (and ``"slo"``), and each window of such a model adds the histograms
``ttft`` and ``itl`` (microseconds) and ``tokens`` (per request), and the counts
``out_tokens`` and ``good`` (requests within the SLO); they merge like the rest and
give the figures of :func:`stream_figures`.

Standard library only (the probe runs it on Python 3.8).
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

from hpctriton_probe.load.hist import Histogram
from hpctriton_probe.load.search import step_text

if TYPE_CHECKING:
    from hpctriton_probe.schema import (
        LatencyMs,
        LoadFigures,
        LoadPointDetails,
        ResultEntry,
        Status,
        StreamFigures,
        StreamMs,
        WindowFigures,
    )

RANK_FORMAT = "hpctriton-load-rank-1"
MERGED_FORMAT = "hpctriton-load-merged-1"
#: A worker process that needs more than this share of a core for a point may be what
#: limits the load (an event loop near a full core answers late): the self-check warns.
CLIENT_CORE_LIMIT = 0.7


# ------------------------------------------------------------------- self-check


def self_check(mode: str, value: float, workers: int,
               warmups: List[Optional[Dict[str, Any]]],
               point_cpu: Optional[Tuple[float, float, int]] = None) -> Dict[str, Any]:
    """The client's own cost at one point, from the warm-up of each worker process
    (``{"cpu_s", "wall_s", "answered"}``), or from the whole point (``point_cpu``:
    CPU seconds, wall seconds, answers) when there was no warm-up.

    ``core_share``: the part of one core each worker needs. Open loop: the asked rate
    per worker times the CPU per request. Closed loop (no rate asked: as fast as the
    server answers): the CPU each worker used per second of the warm-up. Above
    ``CLIENT_CORE_LIMIT`` the point is ``client_bound`` and carries a warning."""
    measured = [w for w in warmups if w and w.get("wall_s")]
    source = "warm-up"
    if measured:
        cpu = sum(float(w["cpu_s"]) for w in measured)
        answered = sum(int(w["answered"]) for w in measured)
        utils = [float(w["cpu_s"]) / float(w["wall_s"]) for w in measured]
    elif point_cpu is not None and point_cpu[1] > 0:
        source = "point"
        cpu, wall, answered = point_cpu
        utils = [cpu / (wall * max(1, workers))]
    else:
        return {"measured": False, "note": "no warm-up and no point figures to measure"}
    out: Dict[str, Any] = {"measured": bool(answered), "source": source, "workers": workers,
                           "limit": CLIENT_CORE_LIMIT}
    if not answered:
        out["note"] = f"nothing was answered in the {source}"
        return out
    per_request = cpu / answered
    if mode == "request_rate":
        share = float(value) / max(1, workers) * per_request
        basis = "asked rate per worker x CPU per request"
    else:
        share = max(utils)
        basis = "CPU per second of each worker (closed loop)"
    out.update(cpu_us_per_request=round(per_request * 1e6, 2), core_share=round(share, 3),
               basis=basis, client_bound=share > CLIENT_CORE_LIMIT)
    if out["client_bound"]:
        out["warning"] = (
            f"the client needs {100 * share:.0f} % of a core per worker here "
            f"({per_request * 1e6:.0f} us of CPU per request, measured in the {source}); "
            f"above {100 * CLIENT_CORE_LIMIT:.0f} % the client, not the server, may limit "
            "the load: raise workers")
    return out


def client_bound(client: Dict[str, Any]) -> bool:
    """Whether a point's client figures (``details["client"]``) say the client may
    have been the limit (the self-check's rule; merged points: any rank)."""
    check = client.get("self_check") or {}
    if check.get("client_bound"):
        return True
    return any(bool(((c or {}).get("self_check") or {}).get("client_bound"))
               for c in (client.get("ranks") or {}).values())


# ----------------------------------------------------------------------- stability


def _parse_windows(windows: List[dict]) -> List[Tuple[int, Histogram, dict]]:
    """``(answers, latency histogram, errors)`` of each window of a document."""
    return [(int(w.get("ok", 0)),
             w["_h"] if "_h" in w else
             Histogram.from_json(w["hist"]) if w.get("hist") else Histogram(),
             w.get("errors") or {}) for w in windows]


def is_stable(windows: List[Tuple[int, Optional[float]]], percent: float) -> bool:
    """perf_analyzer's rule on ``(answers, mean latency)`` of consecutive windows of one
    length: every window's throughput and mean latency within ``percent`` % of their
    average. Windows without a single answer count as stable only if all are so (a
    model that fails every request settles at zero; it must not run all trials)."""
    if not windows:
        return False
    empty = [ok == 0 for ok, _ in windows]
    if all(empty):
        return True
    if any(empty):
        return False
    limit = percent / 100.0
    for values in ([float(ok) for ok, _ in windows], [float(m or 0.0) for _, m in windows]):
        mean = sum(values) / len(values)
        if mean == 0:
            continue
        if any(abs(v - mean) > limit * mean for v in values):
            return False
    return True


def choose_windows(per_model: Dict[str, List[Tuple[int, Optional[float]]]], n: int,
                   percent: float) -> Tuple[int, int, bool]:
    """``(first, end, stable)``: the first run of ``n`` consecutive windows in which every
    model is stable (what an early stop picks), else the last ``n`` windows and False."""
    count = min((len(w) for w in per_model.values()), default=0)
    for end in range(n, count + 1):
        if all(is_stable(w[end - n:end], percent) for w in per_model.values()):
            return end - n, end, True
    return max(0, count - n), count, False


# ---------------------------------------------------------------------- figures


def _ms(us: Optional[float], digits: int = 3) -> Optional[float]:
    return None if us is None else round(us / 1000.0, digits)


# ------------------------------------------------------------- streamed answers

#: Histograms of a window of a decoupled model (microseconds; tokens per request).
STREAM_HISTS = ("ttft", "itl", "tokens")
#: Counts of such a window: output tokens, requests within the SLO.
STREAM_COUNTS = ("out_tokens", "good")
#: The ``details`` keys of a decoupled model's load entry (the contract; README).
STREAM_KEYS = ("ttft_ms", "itl_ms", "e2e_ms", "tokens_per_request", "output_tokens_per_s",
               "requests_per_s", "token_count", "token_output", "slo", "goodput_per_s",
               "goodput_share")


def stream_ms(hist: Histogram) -> StreamMs:
    """p50/p90/p95/p99/max/mean in milliseconds (None when nothing was recorded)."""
    p50, p90, p95, p99 = hist.quantiles([0.5, 0.9, 0.95, 0.99])
    return {"p50": _ms(p50), "p90": _ms(p90), "p95": _ms(p95), "p99": _ms(p99),
            "max": _ms(hist.max), "mean": _ms(hist.mean())}


def _window_hist(w: Dict[str, Any], key: str) -> Histogram:
    if "_" + key in w:
        return w["_" + key]
    return Histogram.from_json(w[key]) if w.get(key) else Histogram()


def stream_figures(windows: List[Dict[str, Any]], seconds: float,
                   settings: Dict[str, Any], slo: Optional[Dict[str, Any]]) -> StreamFigures:
    """The streaming figures of a decoupled model over ``windows`` (those a point's
    figures come from, ``seconds`` long together): TTFT, ITL and end-to-end
    percentiles, tokens per request, output tokens and requests per second, the token
    rule, and with an ``slo`` the goodput."""
    ttft, itl, e2e, tokens = Histogram(), Histogram(), Histogram(), Histogram()
    ok = out_tokens = good = 0
    for w in windows:
        ok += int(w.get("ok", 0))
        e2e.merge(w["_h"] if "_h" in w else
                  Histogram.from_json(w["hist"]) if w.get("hist") else Histogram())
        ttft.merge(_window_hist(w, "ttft"))
        itl.merge(_window_hist(w, "itl"))
        tokens.merge(_window_hist(w, "tokens"))
        out_tokens += int(w.get("out_tokens") or 0)
        good += int(w.get("good") or 0)
    out: StreamFigures = {
        "ttft_ms": stream_ms(ttft), "itl_ms": stream_ms(itl), "e2e_ms": stream_ms(e2e),
        "tokens_per_request": {
            "mean": None if tokens.mean() is None else round(float(tokens.mean() or 0), 3),
            "p50": tokens.quantile(0.5), "max": tokens.max},
        "output_tokens_per_s": round(out_tokens / seconds, 3) if seconds else None,
        "requests_per_s": round(ok / seconds, 3) if seconds else None,
        "token_count": str(settings.get("token_count") or "elements"),
        "token_output": settings.get("token_output")}
    if slo:
        out["slo"] = {"ttft_ms": slo.get("ttft_ms"), "itl_ms": slo.get("itl_ms"),
                      "e2e_ms": slo.get("e2e_ms")}
        out["goodput_per_s"] = round(good / seconds, 3) if seconds else None
        out["goodput_share"] = round(good / ok, 4) if ok else None
    return out


def latency_figures(hist: Histogram) -> LatencyMs:
    """p50/p90/p95/p99/max/min/avg in milliseconds (None when nothing was answered)."""
    p50, p90, p95, p99 = hist.quantiles([0.5, 0.9, 0.95, 0.99])
    return {"p50": _ms(p50), "p90": _ms(p90), "p95": _ms(p95), "p99": _ms(p99),
            "max": _ms(hist.max), "min": _ms(hist.min), "avg": _ms(hist.mean())}


def _add_counts(into: Dict[str, int], more: Optional[dict]) -> Dict[str, int]:
    for k, v in (more or {}).items():
        into[k] = into.get(k, 0) + int(v)
    return into


def point_summary(load: Dict[str, Any], point: Dict[str, Any]) -> Dict[str, Any]:
    """Figures of one point of one load document (one rank, or merged ranks); those of
    each model are ``schema.LoadFigures``."""
    stability = load.get("stability") or {}
    n = int(stability.get("windows", 3))
    percent = float(stability.get("percent", 10.0))
    window_s = float(load["window_s"])
    models = point.get("models") or {}
    parsed = {m: _parse_windows(d.get("windows") or []) for m, d in models.items()}
    per_model = {m: [(ok, h.mean()) for ok, h, _ in ws] for m, ws in parsed.items()}
    if point.get("search"):
        # a capacity search's step: a fixed number of windows, every one measured (the
        # search decides on them all; stability is not its question)
        count = max((len(w) for w in per_model.values()), default=0)
        first, end, all_stable = 0, count, True
        n = count
    else:
        first, end, all_stable = choose_windows(per_model, n, percent)
    used = list(range(first, end))
    figures: Dict[str, LoadFigures] = {}
    server_all = point.get("server") or {}
    for model, data in models.items():
        windows = parsed[model][first:end]
        hist = Histogram()
        errors: Dict[str, int] = {}
        ok = 0
        for w_ok, w_hist, w_errors in windows:
            hist.merge(w_hist)
            ok += w_ok
            _add_counts(errors, w_errors)
        seconds = window_s * len(windows)
        per_request = int(data.get("inferences_per_request") or 1)
        rps = ok / seconds if seconds else None
        stable = bool(windows) and (bool(point.get("search"))
                                    or is_stable(per_model[model][first:end], percent))
        totals_errors = dict(data.get("errors") or {})
        per_window: List[WindowFigures] = [{"rps": round(w_ok / window_s, 3),
                       "avg_ms": _ms(w_hist.mean())} for w_ok, w_hist, _ in parsed[model]]
        fig: LoadFigures = {
            "throughput_rps": round(rps, 3) if rps is not None else None,
            "throughput_infer_s": round(rps * per_request, 3) if rps is not None else None,
            "requests": ok,
            "duration_s": round(seconds, 3),
            "latency_ms": latency_figures(hist),
            "errors": errors,
            "stable": stable and len(windows) >= n,
            "windows": {"run": len(data.get("windows") or []), "used": used,
                        "window_s": window_s, "figures": per_window},
            "totals": {"sent": int(data.get("sent", 0)), "ok": int(data.get("ok", 0)),
                       "errors": sum(totals_errors.values()),
                       "unanswered": int(data.get("unanswered", 0))},
            "errors_total": totals_errors,
            "error_codes": dict(data.get("error_codes") or {}),
            "error_examples": dict(data.get("error_examples") or {}),
            "inferences_per_request": per_request,
        }
        if data.get("lag"):
            lag = Histogram.from_json(data["lag"])
            fig["send_lag_ms"] = {"p50": _ms(lag.quantile(0.5)), "p99": _ms(lag.quantile(0.99)),
                                  "max": _ms(lag.max)}
        streamed = (load.get("streams") or {}).get(model)
        if streamed is not None:
            fig.update(stream_figures((data.get("windows") or [])[first:end], seconds,
                                      streamed, load.get("slo")))
        server = server_all.get(model)
        if isinstance(server, dict):
            fig["server"] = server
            success = server.get("success")
            if isinstance(success, int):
                fig["counts_match"] = server_count(server, streamed is not None) == \
                    client_count(fig["totals"]["ok"], totals_errors, streamed is not None)
        figures[model] = fig
    client = dict(point.get("client") or {})
    answered = sum(int(d.get("ok", 0)) + sum((d.get("errors") or {}).values())
                   for d in models.values())
    if client.get("cpu_s") is not None and answered:
        client["cpu_us_per_request"] = round(client["cpu_s"] / answered * 1e6, 2)
    if client.get("cpu_s") is not None and client.get("wall_s"):
        # the CPU of every process (ranks, each with its workers) over the wall time of
        # one: the mean share of a core per load-generating process
        ranks = client.get("ranks") or {}
        shares = sum(max(1, int((c or {}).get("workers") or 1)) for c in ranks.values()) \
            if ranks else max(1, int(client.get("workers") or 1))
        client["cpu_util"] = round(client["cpu_s"] / (client["wall_s"] * shares), 3)
    if "self_check" not in client and client.get("ranks"):
        checks: List[Dict[str, Any]] = [
            c["self_check"] for c in client["ranks"].values()
            if isinstance(c, dict) and isinstance(c.get("self_check"), dict)
            and c["self_check"].get("measured")]
        if checks:
            worst = max(checks, key=lambda c: float(c.get("core_share") or 0.0))
            client["self_check"] = dict(worst, client_bound=any(c.get("client_bound")
                                                                for c in checks))
    return {"index": point.get("index"), "value": point.get("value"),
            "stable": all_stable, "windows_used": used, "late_s": point.get("late_s"),
            "windows_run": max((len(d.get("windows") or []) for d in models.values()),
                               default=0),
            "client": client, "models": figures}


def server_count(server: Dict[str, Any], decoupled: bool) -> Optional[int]:
    """The requests the server counted for a point: its successes; for a decoupled
    model its successes and failures (a model that sends an error response mid-stream
    may still count the request a success: Triton's Python backend does)."""
    success = server.get("success")
    if not isinstance(success, int):
        return None
    if decoupled:
        fail = server.get("fail")
        return success + (fail if isinstance(fail, int) else 0)
    return success


def client_count(ok: int, errors: Dict[str, int], decoupled: bool) -> int:
    """What :func:`server_count` is compared with: the answers; for a decoupled model
    also the requests the server ended with an error (kind ``server``)."""
    return ok + (int(errors.get("server", 0)) if decoupled else 0)


def summarize_load(load: Dict[str, Any]) -> Dict[str, Any]:
    """A load document's settings and the figures of each of its points."""
    keys = ("load_index", "protocol", "streaming", "mode", "schedule", "batch_size",
            "warmup_s", "window_s", "stability", "aligned", "models", "ranks",
            "interrupted", "streams", "slo")
    out = {k: load.get(k) for k in keys}
    out["points"] = [point_summary(load, p) for p in load.get("points") or []]
    return out


# ------------------------------------------------------------------------ merging


def _merge_windows(into: List[dict], more: List[dict]) -> None:
    for i, w in enumerate(more):
        if i >= len(into):
            into.append({"ok": 0, "errors": {}, "_h": Histogram()})
        target = into[i]
        target["ok"] += int(w.get("ok", 0))
        _add_counts(target["errors"], w.get("errors"))
        target["_h"].merge(Histogram.from_json(w["hist"]) if w.get("hist") else Histogram())
        if "over" in w:  # a capacity search's exact count over the objective's bounds
            target["over"] = target.get("over", 0) + int(w.get("over") or 0)
        if "ttft" in w:  # a decoupled model's streamed answers
            for key in STREAM_HISTS:
                more_h = Histogram.from_json(w[key]) if w.get(key) else Histogram()
                if "_" + key in target:
                    target["_" + key].merge(more_h)
                else:
                    target["_" + key] = more_h
            for key in STREAM_COUNTS:
                target[key] = target.get(key, 0) + int(w.get(key) or 0)


def merge_rank_docs(docs: Iterable[dict]) -> dict:
    """One document for the whole job from the rank documents of one task: window by
    window, answers and errors are added and histograms merged. Windows of every rank
    cover the same wall-clock interval (the ranks follow one schedule), so the sum is
    the server's load in that interval. Server figures come from rank 0."""
    docs = sorted(docs, key=lambda d: int(d.get("rank", 0)))
    if not docs:
        raise ValueError("no rank documents to merge")
    for d in docs:
        if d.get("format") != RANK_FORMAT:
            raise ValueError(f"not a load rank document: format {d.get('format')!r}")
    head = docs[0]
    merged: Dict[str, Any] = {
        "format": MERGED_FORMAT, "run_id": head.get("run_id"), "task": head.get("task"),
        "ranks": max(int(d.get("ranks", 1)) for d in docs),
        "ranks_found": [int(d.get("rank", 0)) for d in docs],
        "hosts": sorted({str(d.get("host")) for d in docs}),
        "rlimit_nofile": {str(d.get("rank", 0)): d.get("rlimit_nofile") for d in docs},
        "loads": []}
    by_index: Dict[int, List[Tuple[int, Dict[str, Any]]]] = {}
    for d in docs:
        for load in d.get("loads") or []:
            by_index.setdefault(int(load.get("load_index", 0)), []).append(
                (int(d.get("rank", 0)), load))
    for index in sorted(by_index):
        parts = by_index[index]
        base = dict(parts[0][1])
        base["ranks_found"] = [r for r, _ in parts]
        base["interrupted"] = any(p.get("interrupted") for _, p in parts)
        points: Dict[int, Dict[str, Any]] = {}
        for rank, load in parts:
            for p in load.get("points") or []:
                k = int(p.get("index", 0))
                target = points.get(k)
                if target is None:
                    target = points[k] = {"index": k, "value": p.get("value"),
                                          "windows_run": 0, "client": {"cpu_s": 0.0,
                                                                       "wall_s": 0.0,
                                                                       "connections": 0,
                                                                       "ranks": {}},
                                          "server": {}, "models": {}, "late_s": {}}
                target["windows_run"] = max(target["windows_run"], int(p.get("windows_run", 0)))
                if p.get("search") and (rank == 0 or "search" not in target):
                    target["search"] = p["search"]  # a capacity search's step (rank 0's)
                target["late_s"][str(rank)] = p.get("late_s", 0.0)
                c = p.get("client") or {}
                tc = target["client"]
                tc["cpu_s"] = round(tc["cpu_s"] + float(c.get("cpu_s") or 0.0), 6)
                tc["wall_s"] = max(tc["wall_s"], float(c.get("wall_s") or 0.0))
                tc["connections"] += int(c.get("connections") or 0)
                tc["ranks"][str(rank)] = c
                if p.get("server"):
                    target["server"] = p["server"]
                for model, data in (p.get("models") or {}).items():
                    tm = target["models"].get(model)
                    if tm is None:
                        tm = target["models"][model] = {
                            "inferences_per_request": data.get("inferences_per_request", 1),
                            "windows": [], "sent": 0, "ok": 0, "errors": {},
                            "error_codes": {}, "error_examples": {}, "unanswered": 0}
                    _merge_windows(tm["windows"], data.get("windows") or [])
                    for key in ("sent", "ok", "unanswered"):
                        tm[key] += int(data.get(key, 0))
                    _add_counts(tm["errors"], data.get("errors"))
                    _add_counts(tm["error_codes"], data.get("error_codes"))
                    for kind, text in (data.get("error_examples") or {}).items():
                        tm["error_examples"].setdefault(kind, text)
                    if data.get("lag"):
                        lag = Histogram.from_json(data["lag"])
                        if tm.get("lag"):
                            lag.merge(Histogram.from_json(tm["lag"]))
                        tm["lag"] = lag.to_json()
        for p in points.values():
            for data in p["models"].values():
                for w in data["windows"]:
                    w["hist"] = w.pop("_h").to_json()
                    for key in STREAM_HISTS:
                        if "_" + key in w:
                            w[key] = w.pop("_" + key).to_json()
        base["points"] = [points[k] for k in sorted(points)]
        base["ranks"] = merged["ranks"]
        merged["loads"].append(base)
    return merged


def summarize_run(doc: dict) -> dict:
    """Figures for a rank document or a merged one: ``{"loads": [summaries]}`` plus the
    identity of the run."""
    out = {k: doc.get(k) for k in ("format", "run_id", "task", "ranks", "ranks_found",
                                   "hosts", "rank")
           if k in doc}
    out["loads"] = [summarize_load(load) for load in doc.get("loads") or []]
    return out


# -------------------------------------------------------------------- result entries


def _fmt_ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def verdict(mode: str, value: Any, fig: LoadFigures, note: str = "") -> Tuple[Status, str]:
    """``(status, message)`` of one model at one point: ``fail`` when a request failed,
    stayed unanswered or none was answered; "NOT STABLE" never fails a point."""
    totals = fig["totals"]
    lat = fig["latency_ms"]
    label = f"concurrency {value}" if mode == "concurrency" else \
        f"rate {float(value):g}/s"
    text = "{}: {} req/s".format(label, "-" if fig["throughput_rps"] is None
                                 else "{:.1f}".format(fig["throughput_rps"]))
    if fig.get("inferences_per_request", 1) > 1 and fig["throughput_infer_s"] is not None:
        text += " ({:.1f} infer/s)".format(fig["throughput_infer_s"])
    text += ", p50 {}, p99 {}".format(_fmt_ms(lat.get("p50")), _fmt_ms(lat.get("p99")))
    if "ttft_ms" in fig:
        tokens_s = fig.get("output_tokens_per_s")
        text += "; TTFT p50 {}, ITL p50 {}, {} output tokens/s ({})".format(
            _fmt_ms(fig["ttft_ms"]["p50"]), _fmt_ms(fig["itl_ms"]["p50"]),
            "-" if tokens_s is None else f"{tokens_s:.1f}", fig.get("token_count"))
        goodput = fig.get("goodput_per_s")
        if goodput is not None:
            text += ", goodput {:.1f}/s ({:.0f} %)".format(
                goodput, 100 * float(fig.get("goodput_share") or 0))
    if not fig["stable"]:
        text += ", NOT STABLE after {} windows".format(fig["windows"]["run"])
    if note:
        text += " " + note
    problems = []
    if totals["errors"]:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(fig["errors_total"].items()))
        example = next(iter(fig["error_examples"].values()), "")
        problems.append("{} of {} requests failed ({}){}".format(
            totals["errors"], totals["sent"], kinds, ": " + example if example else ""))
    if totals["unanswered"]:
        problems.append("{} requests unanswered at the end".format(totals["unanswered"]))
    if not totals["ok"] and not problems:
        problems.append("no request was answered")
    per_request = fig.get("tokens_per_request")
    if "ttft_ms" in fig and fig["requests"] and per_request and not per_request["max"]:
        problems.append("no token: every request ended without a response carrying its "
                        f"token output ({fig.get('token_count')})")
    if problems:
        return "fail", text + "; " + "; ".join(problems)
    if fig.get("counts_match") is False:
        text += "; the server counted {} successes, the client {} (another client?)".format(
            (fig.get("server") or {}).get("success"), totals["ok"])

    return "pass", text


def entries(load: Dict[str, Any], point: Dict[str, Any], *, rank: Optional[int] = 0,
            ranks: int = 1) -> List[ResultEntry]:
    """``results.json`` entries (one per model) for one point of a load document, their
    ``details`` a ``schema.LoadPointDetails``. ``rank`` None: figures merged over
    ``ranks`` tasks."""
    summary = point_summary(load, point)
    mode = load.get("mode") or "concurrency"
    value = point["value"]
    if ranks > 1:
        note = f"(task {rank} of {ranks})" if rank is not None else \
            f"({ranks} tasks merged)"
    else:
        note = ""
    out: List[ResultEntry] = []
    for model in load.get("models") or sorted(summary["models"]):
        fig: Optional[LoadFigures] = summary["models"].get(model)
        if fig is None:
            continue
        details: LoadPointDetails = {
            "mode": mode,
            "schedule": load.get("schedule") if mode == "request_rate" else None,
            "batch_size": load["batch_size"], "protocol": load["protocol"],
            "streaming": load["streaming"], "load_index": load["load_index"],
            "point_index": point["index"], "tasks": ranks, "rank": rank,
            "throughput_rps": fig["throughput_rps"],
            "throughput_infer_s": fig["throughput_infer_s"], "requests": fig["requests"],
            "duration_s": fig["duration_s"], "latency_ms": fig["latency_ms"],
            "errors": fig["errors"], "stable": fig["stable"], "windows": fig["windows"],
            "totals": fig["totals"], "errors_total": fig["errors_total"],
            "error_codes": fig["error_codes"], "error_examples": fig["error_examples"],
            "inferences_per_request": fig["inferences_per_request"],
            "client": summary["client"]}
        if mode == "request_rate":
            details["request_rate"] = value
        else:
            details["concurrency"] = value
        if "send_lag_ms" in fig:
            details["send_lag_ms"] = fig["send_lag_ms"]
        for key in STREAM_KEYS:
            if key in fig:
                details[key] = fig[key]  # type: ignore[literal-required]
        if "server" in fig:
            details["server"] = fig["server"]
        if rank is not None and ranks > 1:
            # the server saw every task's requests, this task sent only its own
            fig.pop("counts_match", None)
        elif "counts_match" in fig:
            details["counts_match"] = fig["counts_match"]
        if summary.get("late_s"):
            details["late_s"] = summary["late_s"]
        status, message = verdict(mode, value, fig, note)
        check = summary["client"].get("self_check") or {}
        if check.get("client_bound"):
            message += "; CLIENT-BOUND: {:.0f} % of a core per worker".format(
                100 * float(check.get("core_share") or 0))
        step = ((point.get("search") or {}).get("models") or {}).get(model)
        if step is not None:
            # A capacity search's step: one over the objective is how the search finds
            # the bound (an overloaded server's errors included); the capacity entry
            # passes or fails the check. A step fails only when it could not be
            # measured (INVALID: the client could not keep the schedule).
            details["search_step"] = step
            status = "fail" if step.get("verdict") == "INVALID" else "pass"
            objective = (load.get("search") or {}).get("objective") or {}
            message = f"{step_text(step, objective)}; {message}"
        out.append({"check": "load", "protocol": load.get("protocol"), "model": model,
                    "status": status,
                    "duration_s": round(float((point.get("client") or {}).get("wall_s") or 0), 4),
                    "message": message, "details": dict(details)})
    return out


# ---------------------------------------------------------------------------- CSV

#: perf_analyzer's ``-f`` columns (times in microseconds), then ours.
CSV_COLUMNS = ("Inferences/Second", "Client Send", "Network+Server Send/Recv",
               "Server Queue", "Server Compute Input", "Server Compute Infer",
               "Server Compute Output", "Client Recv", "p50 latency", "p90 latency",
               "p95 latency", "p99 latency", "Avg latency", "request/response",
               "response wait")
EXTRA_COLUMNS = ("Model", "Protocol", "Requests/Second", "Max latency", "Requests", "Errors",
                 "Stable", "Tasks", "Server Success", "Batching Ratio")


def _us(ms: Optional[float]) -> str:
    return "" if ms is None else str(int(round(ms * 1000)))


def csv_text(summary: Dict[str, Any]) -> str:
    """A perf_analyzer-like CSV of one load summary (``summarize_load``): the first
    column is ``Concurrency`` or ``Request Rate``, then perf_analyzer's columns (times
    in microseconds; the client's send/receive times are not measured separately and
    stay empty), then one column per extra figure. One row per point and model."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    first = "Request Rate" if summary.get("mode") == "request_rate" else "Concurrency"
    writer.writerow((first,) + CSV_COLUMNS + EXTRA_COLUMNS)
    ranks = summary.get("ranks") or 1
    for point in summary.get("points") or []:
        for model, fig in sorted(point["models"].items()):
            lat = fig["latency_ms"]
            server = fig.get("server") or {}
            parts = [server.get(k) for k in ("queue_avg_ms", "compute_input_avg_ms",
                                             "compute_infer_avg_ms", "compute_output_avg_ms")]
            network: Optional[float] = None
            known = [p for p in parts if p is not None]
            if lat.get("avg") is not None and len(known) == len(parts):
                network = max(0.0, lat["avg"] - sum(known))
            row = [point["value"], fig["throughput_infer_s"] if fig["throughput_infer_s"]
                   is not None else "", "", _us(network)] + [_us(p) for p in parts] + [
                "", _us(lat.get("p50")), _us(lat.get("p90")), _us(lat.get("p95")),
                _us(lat.get("p99")), _us(lat.get("avg")), "", "",
                model, summary.get("protocol") or "",
                fig["throughput_rps"] if fig["throughput_rps"] is not None else "",
                _us(lat.get("max")), fig["requests"], sum(fig["errors"].values()),
                "yes" if fig["stable"] else "no", ranks,
                server.get("success", ""),
                server.get("batching_ratio") if server.get("batching_ratio") is not None
                else ""]
            writer.writerow(row)
    return buffer.getvalue()
